/**
 * Every running vtpm-stubdom of the lab is a real swtpm whose state lives in its image:
 * tpm2-tools reach a TPM 2.0 vTPM, a TPM 1.2 vTPM answers, state survives a restart of the
 * domain and is gone when the image is recreated, and the image keeps its size throughout.
 */
import { randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { labStatus } from "../../lab/lab";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";
const IMAGE = "/var/lib/xen/vtpm/t2.img";
const NV_INDEX = "0x1500016";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  await lab.sh(
    A,
    "mkdir -p /var/lib/xen/vtpm && dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=16M count=1 status=none",
  );
  await lab.writeFile(A, "/etc/xen/vtpmmgr.cfg", cfg.manager());
  expect((await lab.xl(A, "create", "/etc/xen/vtpmmgr.cfg")).exitCode).toBe(0);
});

afterAll(async () => lab?.stop());

/** tpm2-tools on the dom0, through the socket `lab status` names. */
async function tpm2(domain: string, ...argv: string[]) {
  const sock = `/var/lib/tvd-lab/vtpm/${domain}/tpm.sock`;
  return lab.sh(
    A,
    'TPM2TOOLS_TCTI="swtpm:path=$1" && export TPM2TOOLS_TCTI && shift && exec "$@"',
    sock,
    ...argv,
  );
}

async function startVtpm(name: string, opts: { extra?: string; image?: string } = {}) {
  await lab.writeFile(A, `/etc/xen/${name}.cfg`, cfg.vtpm(name, randomUUID(), opts));
  const r = await lab.xl(A, "create", `/etc/xen/${name}.cfg`);
  expect(r.exitCode).toBe(0);
}

async function imageSize(image: string): Promise<number> {
  return Number((await lab.sh(A, 'stat -c %s "$1"', image)).stdout.trim());
}

describe('a TPM 2.0 vTPM (extra="tpm2=1")', () => {
  beforeAll(async () => {
    await lab.sh(A, 'dd if=/dev/zero of="$1" bs=8M count=1 status=none', IMAGE);
    await startVtpm("t2", { image: IMAGE, extra: "tpm2=1" });
  });

  it("answers tpm2_pcrread through the socket lab status names", async () => {
    const status = labStatus(lab.stateDir)[0].vtpms.find((v) => v.domain === "t2");
    expect(status?.tpm).toBe("2.0");
    // The socket is reachable from this machine too, through the host's state dir.
    const outside = spawnSync("tpm2_pcrread", ["sha256:0"], {
      env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${status!.server}` },
      encoding: "utf8",
    });
    expect(outside.status).toBe(0);
    expect(outside.stdout).toMatch(/0 : 0x0{64}/);
    const extend = await tpm2("t2", "tpm2_pcrextend", `4:sha256=${"0".repeat(63)}1`);
    expect(extend.exitCode).toBe(0);
    const read = await tpm2("t2", "tpm2_pcrread", "sha256:4");
    expect(read.stdout).toContain("4 : 0x90F4B39548DF55AD6187A1D20D731ECEE78C545B94AFD16F42EF7592D99CD365");
  });

  it("keeps its state in the image across a restart, and the image keeps its size", async () => {
    const define = await tpm2(
      "t2",
      "tpm2_nvdefine",
      NV_INDEX,
      "-C",
      "o",
      "-s",
      "5",
      "-a",
      "ownerread|ownerwrite|authread|authwrite",
    );
    expect(define.exitCode).toBe(0);
    const write = await lab.sh(
      A,
      'printf hello | TPM2TOOLS_TCTI="swtpm:path=$1" tpm2_nvwrite "$2" -C o -i -',
      "/var/lib/tvd-lab/vtpm/t2/tpm.sock",
      NV_INDEX,
    );
    expect(write.exitCode).toBe(0);
    expect(await imageSize(IMAGE)).toBe(8 * 1024 * 1024);
    expect((await lab.xl(A, "destroy", "t2")).exitCode).toBe(0);
    expect(await imageSize(IMAGE)).toBe(8 * 1024 * 1024);
    await startVtpm("t2", { image: IMAGE, extra: "tpm2=1" });
    const read = await tpm2("t2", "tpm2_nvread", NV_INDEX, "-C", "o", "-s", "5");
    expect(read.exitCode).toBe(0);
    expect(read.stdout).toBe("hello");
  });

  it("loses its state when the image is recreated", async () => {
    expect((await lab.xl(A, "destroy", "t2")).exitCode).toBe(0);
    await lab.sh(A, 'rm "$1" && dd if=/dev/zero of="$1" bs=8M count=1 status=none', IMAGE);
    await startVtpm("t2", { image: IMAGE, extra: "tpm2=1" });
    const read = await tpm2("t2", "tpm2_nvread", NV_INDEX, "-C", "o", "-s", "5");
    expect(read.exitCode).not.toBe(0);
    expect(read.stderr).toMatch(/0x18b|handle/i);
    expect(await imageSize(IMAGE)).toBe(8 * 1024 * 1024);
  });
});

describe("a TPM 1.2 vTPM (Xen's default)", () => {
  it("answers TPM 1.2 commands", async () => {
    await lab.sh(A, "dd if=/dev/zero of=/var/lib/xen/vtpm/t1.img bs=8M count=1 status=none");
    await startVtpm("t1");
    const status = labStatus(lab.stateDir)[0].vtpms.find((v) => v.domain === "t1");
    expect(status?.tpm).toBe("1.2");
    // ContinueSelfTest only succeeds on a started TPM 1.2.
    const r = await lab.sh(A, "swtpm_bios --unix /var/lib/tvd-lab/vtpm/t1/tpm.sock -n -cs");
    expect(r.exitCode).toBe(0);
    const info = await lab.sh(A, "swtpm_ioctl --unix /var/lib/tvd-lab/vtpm/t1/tpm.sock.ctrl --info 1");
    expect(info.stdout).toContain('"family":"1.2"');
  });

  it("stops its swtpm and releases the image when the domain is destroyed", async () => {
    expect((await lab.xl(A, "destroy", "t1")).exitCode).toBe(0);
    const loops = await lab.sh(A, "losetup -j /var/lib/xen/vtpm/t1.img");
    expect(loops.stdout).toBe("");
    expect(labStatus(lab.stateDir)[0].vtpms.find((v) => v.domain === "t1")).toBeUndefined();
  });
});
