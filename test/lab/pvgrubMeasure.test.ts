/**
 * A lab guest booted through pv-grub has its vTPM's PCR 4 and 5 extended at `xl create` as
 * pv-grub does (issue 16.4): from the kernel, command line and initrd its menu.lst names on its
 * own disk. The expected PCR values are computed here, step by step with node:crypto, from the
 * bytes this test put on the disk, never with provider/tpm/pvgrub.ts, so a bug there shows.
 * The PCRs are read from the real swtpm: TPM_PCRRead for TPM 1.2, tpm2_pcrread for TPM 2.0.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { labStatus } from "../../lab/lab";
import { pcrRead12, Tpm12 } from "../../lab/xl/tpm12";
import { renderXlConfig } from "../../provider/xl/config";
import { PVGRUB_KERNEL, renderGuestConfig } from "../../provider/xl/domains";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(180_000);

let lab: TestLab;
const A = "dom0-a";
const WORK = "/var/lib/xen/pvgrub-test";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  await lab.check(
    A,
    `mkdir -p /var/lib/xen/vtpm ${WORK} && dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=16M count=1 status=none`,
  );
  await lab.writeFile(A, "/etc/xen/vtpmmgr.cfg", cfg.manager());
  expect((await lab.xl(A, "create", "/etc/xen/vtpmmgr.cfg")).exitCode).toBe(0);
});

afterAll(async () => lab?.stop());

// ---- what the PCRs must hold, computed independently -------------------------------------

type Bank = "sha1" | "sha256";
const hash = (bank: Bank, bytes: Buffer) => createHash(bank).update(bytes).digest();
const zeros = (bank: Bank) => Buffer.alloc(bank === "sha1" ? 20 : 32);
/** PCR value after extending `measured` (each hashed first) one after the other from zero. */
function chain(bank: Bank, ...measured: Buffer[]): Buffer {
  return measured.reduce((pcr, m) => hash(bank, Buffer.concat([pcr, hash(bank, m)])), zeros(bank));
}

interface Boot {
  /** The kernel as it runs (what pv-grub measures); stored gzip-compressed when `gzip`. */
  kernel: Buffer;
  gzip: boolean;
  cmdline: string;
  initrd: Buffer;
}

/** PCR 4 and 5 after pv-grub booted `boot` `times` times on one vTPM. */
function expected(bank: Bank, boot: Boot, times = 1): { 4: Buffer; 5: Buffer } {
  const pcr5: Buffer[] = [];
  for (let i = 0; i < times; i++) pcr5.push(Buffer.from(boot.cmdline, "utf8"), boot.initrd);
  return { 4: chain(bank, ...Array<Buffer>(times).fill(boot.kernel)), 5: chain(bank, ...pcr5) };
}

// ---- the guest's boot disk: a real ext4 with /boot/grub/menu.lst, as a Debian template --------

/** A DOS partition table with one Linux partition from sector 2048 on, `sectors` long. */
function mbr(sectors: number): Buffer {
  const b = Buffer.alloc(512);
  b[446 + 4] = 0x83;
  b.writeUInt32LE(2048, 446 + 8);
  b.writeUInt32LE(sectors, 446 + 12);
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

/**
 * A base image holding `boot` (and its menu.lst, whose default entry is the second one) and a
 * qcow2 overlay on it, as the Guest resource makes; with `partitioned`, the filesystem is the
 * first partition of an MBR disk, (hd0,0), else the whole disk, (hd0). Returns the overlay.
 */
async function bootDisk(name: string, boot: Boot, partitioned: boolean): Promise<string> {
  const dir = `${WORK}/${name}`;
  const drive = partitioned ? "(hd0,0)" : "(hd0)";
  const menu = [
    "# menu.lst as update-grub writes it (GRUB legacy)",
    "default 1",
    "timeout 5",
    "",
    "title rescue (not the default)",
    `root ${drive}`,
    "kernel /boot/rescue quiet",
    "",
    `title Debian GNU/Linux, ${name}`,
    `\troot\t${drive}`,
    `kernel /boot/vmlinuz ${boot.cmdline}`,
    "initrd /boot/initrd.img",
    "",
  ].join("\n");
  await lab.writeFile(A, `${dir}/root/boot/grub/menu.lst`, menu);
  await lab.writeFile(A, `${dir}/root/boot/vmlinuz`, boot.gzip ? gzipSync(boot.kernel) : boot.kernel);
  await lab.writeFile(A, `${dir}/root/boot/initrd.img`, boot.initrd);
  await lab.writeFile(A, `${dir}/root/boot/rescue`, randomBytes(4096));
  const fsMiB = 16;
  await lab.writeFile(A, `${dir}/mbr`, mbr(fsMiB * 2048));
  await lab.check(
    A,
    [
      'cd "$1"',
      `mkfs.ext4 -q -F -d root fs.img ${fsMiB}M`,
      'if [ "$2" = yes ]; then dd if=mbr of=base.raw status=none && dd if=fs.img of=base.raw bs=1M seek=1 status=none; else mv fs.img base.raw; fi',
      'qemu-img create -q -f qcow2 -F raw -b "$1/base.raw" overlay.qcow2',
    ].join(" && "),
    dir,
    partitioned ? "yes" : "no",
  );
  return `${dir}/overlay.qcow2`;
}

/** The guest's config exactly as the library renders a pv-grub guest. */
function pvGrubGuest(name: string, overlay: string, vtpm: string | undefined, menuLst: string): string {
  return renderXlConfig(
    renderGuestConfig({
      name,
      memoryMiB: 128,
      vcpus: 1,
      boot: { kind: "pvgrub", kernel: PVGRUB_KERNEL, extra: menuLst },
      disks: [{ target: overlay, format: "qcow2", vdev: "xvda", access: "rw" }],
      vifs: [],
      vtpmBackend: vtpm,
    }),
  );
}

// ---- the lab ----------------------------------------------------------------------------

/** A vTPM domain on an image of its own, made blank the first time. */
async function startVtpm(name: string, tpm2: boolean) {
  const image = `/var/lib/xen/vtpm/${name}.img`;
  await lab.check(A, 'test -e "$1" || dd if=/dev/zero of="$1" bs=8M count=1 status=none', image);
  await lab.writeFile(
    A,
    `/etc/xen/${name}.cfg`,
    cfg.vtpm(name, randomUUID(), { extra: tpm2 ? "tpm2=1" : undefined }),
  );
  const r = await lab.xl(A, "create", `/etc/xen/${name}.cfg`);
  expect(r.stderr).not.toContain("lab:");
  expect(r.exitCode).toBe(0);
}

async function createGuest(name: string, config: string) {
  await lab.writeFile(A, `/etc/xen/${name}.cfg`, config);
  const r = await lab.xl(A, "create", `/etc/xen/${name}.cfg`);
  expect(r.exitCode).toBe(0);
  return r;
}

const destroy = async (name: string) => expect((await lab.xl(A, "destroy", name)).exitCode).toBe(0);
const consoleOf = async (name: string) =>
  (await lab.sh(A, 'cat "/var/log/xen/console/guest-$1.log"', name)).stdout;
const server = (vtpm: string) => labStatus(lab.stateDir)[0].vtpms.find((v) => v.domain === vtpm)!.server;

/** PCR 4 and 5 of a TPM 1.2 vTPM, by TPM_PCRRead on its swtpm socket. */
async function pcrs12(vtpm: string): Promise<{ 4: Buffer; 5: Buffer }> {
  const tpm = await Tpm12.connect(server(vtpm));
  try {
    return { 4: await pcrRead12(tpm, 4), 5: await pcrRead12(tpm, 5) };
  } finally {
    tpm.close();
  }
}

/** PCR 4 and 5 of one bank of a TPM 2.0 vTPM, by tpm2-tools' tpm2_pcrread on its swtpm socket. */
function pcrs20(vtpm: string, bank: Bank | "sha384"): { 4: Buffer; 5: Buffer } {
  const r = spawnSync("tpm2_pcrread", [`${bank}:4,5`], {
    env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${server(vtpm)}` },
    encoding: "utf8",
  });
  expect(r.stderr).toBe("");
  const value = (pcr: number) => {
    const m = new RegExp(`^\\s*${pcr}\\s*:\\s*0x([0-9A-F]+)$`, "m").exec(r.stdout);
    if (!m) throw new Error(`no PCR ${pcr} in tpm2_pcrread's output: ${r.stdout}`);
    return Buffer.from(m[1], "hex");
  };
  return { 4: value(4), 5: value(5) };
}

const hex = (p: { 4: Buffer; 5: Buffer }) => ({ 4: p[4].toString("hex"), 5: p[5].toString("hex") });

const boot12: Boot = {
  kernel: Buffer.concat([Buffer.from("\x7fELF lab kernel one "), randomBytes(200_000)]),
  gzip: true,
  cmdline: "root=/dev/xvda1 ro console=hvc0",
  initrd: randomBytes(70_000),
};
const boot20: Boot = {
  kernel: Buffer.concat([Buffer.from("\x7fELF lab kernel two "), randomBytes(150_000)]),
  gzip: false,
  cmdline: "root=/dev/xvda ro quiet",
  initrd: randomBytes(30_000),
};

describe("a pv-grub guest with a TPM 1.2 vTPM", () => {
  let overlay: string;
  beforeAll(async () => {
    overlay = await bootDisk("pg12", boot12, true);
    await startVtpm("v12", false);
  });

  it("extends PCR 4 with the decompressed gzip kernel and PCR 5 with cmdline and initrd, before its kernel runs", async () => {
    expect(hex(await pcrs12("v12"))).toEqual(hex({ 4: zeros("sha1"), 5: zeros("sha1") }));
    await createGuest("pg12", pvGrubGuest("pg12", overlay, "v12", "(hd0,0)/boot/grub/menu.lst"));
    expect(hex(await pcrs12("v12"))).toEqual(hex(expected("sha1", boot12)));
    // Not the stored (compressed) bytes.
    expect((await pcrs12("v12"))[4].equals(chain("sha1", gzipSync(boot12.kernel)))).toBe(false);
    const console = await consoleOf("pg12");
    expect(console).toContain("Booting 'Debian GNU/Linux, pg12'");
    // pv-grub's extends come before the kernel's first line.
    expect(console.indexOf("PCR 5 (initrd)")).toBeGreaterThan(0);
    expect(console.indexOf("PCR 5 (initrd)")).toBeLessThan(console.indexOf("Linux version"));
    expect(await lab.domainNames(A)).toContain("pg12");
  });

  it("extends again on top when the guest restarts under the same running vTPM; a restarted vTPM starts from zero", async () => {
    await destroy("pg12");
    await createGuest("pg12", pvGrubGuest("pg12", overlay, "v12", "(hd0,0)/boot/grub/menu.lst"));
    expect(hex(await pcrs12("v12"))).toEqual(hex(expected("sha1", boot12, 2)));

    await destroy("pg12");
    await destroy("v12");
    await startVtpm("v12", false);
    expect(hex(await pcrs12("v12"))).toEqual(hex({ 4: zeros("sha1"), 5: zeros("sha1") }));
    await createGuest("pg12", pvGrubGuest("pg12", overlay, "v12", "(hd0,0)/boot/grub/menu.lst"));
    expect(hex(await pcrs12("v12"))).toEqual(hex(expected("sha1", boot12)));
  });
});

describe("a pv-grub guest with a TPM 2.0 vTPM", () => {
  beforeAll(async () => {
    const overlay = await bootDisk("pg20", boot20, false);
    await startVtpm("v20", true);
    await createGuest("pg20", pvGrubGuest("pg20", overlay, "v20", "(hd0)/boot/grub/menu.lst"));
  });

  it("extends the sha1 and sha256 banks with the same events, a plain kernel measured as stored", () => {
    expect(hex(pcrs20("v20", "sha1"))).toEqual(hex(expected("sha1", boot20)));
    expect(hex(pcrs20("v20", "sha256"))).toEqual(hex(expected("sha256", boot20)));
    // pvgrub.ts has no convention for the other banks libtpms allocates: they stay zero.
    expect(hex(pcrs20("v20", "sha384"))).toEqual(hex({ 4: Buffer.alloc(48), 5: Buffer.alloc(48) }));
  });

  it("gives another kernel another PCR 4", () => {
    expect(pcrs20("v20", "sha1")[4].equals(expected("sha1", boot12)[4])).toBe(false);
  });
});

describe("guests pv-grub does not measure", () => {
  it("a guest booted directly (kernel= from dom0) leaves PCR 4 and 5 of its vTPM zero", async () => {
    await startVtpm("vd", false);
    await createGuest("direct", cfg.guest("direct", { vtpm: "vd" }));
    expect(await lab.domainNames(A)).toContain("direct");
    expect(hex(await pcrs12("vd"))).toEqual(hex({ 4: zeros("sha1"), 5: zeros("sha1") }));
    expect(await consoleOf("direct")).not.toContain("pv-grub");
  });

  it("a pv-grub guest whose disk holds no menu.lst stays at pv-grub's prompt: running, no kernel, PCRs zero", async () => {
    await startVtpm("vn", false);
    const config = pvGrubGuest(
      "nomenu",
      "/var/lib/xen/images/debian-base.raw",
      "vn",
      "(hd0)/boot/grub/menu.lst",
    )
      // The lab's default base image is raw.
      .replace("format=qcow2", "format=raw");
    await createGuest("nomenu", config);
    expect(await lab.domainNames(A)).toContain("nomenu");
    const console = await consoleOf("nomenu");
    expect(console).toContain("Error 15: File not found (/boot/grub/menu.lst)");
    expect(console).not.toContain("Linux version");
    expect(hex(await pcrs12("vn"))).toEqual(hex({ 4: zeros("sha1"), 5: zeros("sha1") }));
  });
});

describe("a pv-grub guest whose vTPM does not answer", () => {
  it("does not boot: pv-grub's ASSERT crashes the domain, as on Xen, and the console says why", async () => {
    const overlay = await bootDisk("pgdead", boot20, false);
    await startVtpm("vdead", false);
    const state = JSON.parse(await lab.check(A, "cat /var/lib/tvd-lab/domains.json")) as {
      domains: { name: string; swtpm?: { pid: number } }[];
    };
    const swtpm = state.domains.find((d) => d.name === "vdead")!.swtpm!.pid;
    process.kill(swtpm, "SIGKILL");

    // Real xl create returns once the domain is unpaused; pv-grub crashes it afterwards.
    await createGuest("pgdead", pvGrubGuest("pgdead", overlay, "vdead", "(hd0)/boot/grub/menu.lst"));
    expect(await lab.domainNames(A)).not.toContain("pgdead");
    const console = await consoleOf("pgdead");
    expect(console).toContain("tvd-lab: pv-grub cannot extend PCRs 4 and 5 of vTPM vdead");
    expect(console).toContain("ASSERTION FAILED: rv == 0 && resp->status == 0");
    expect(console).not.toContain("Linux version");
    const xlLog = (await lab.sh(A, "cat /var/log/xen/xl-pgdead.log")).stdout;
    expect(xlLog).toContain("has shut down, reason code 3");
    // The name is free again, as after xl's monitor destroyed the crashed domain.
    await destroy("vdead");
    await startVtpm("vdead", false);
    await createGuest("pgdead", pvGrubGuest("pgdead", overlay, "vdead", "(hd0)/boot/grub/menu.lst"));
    expect(await lab.domainNames(A)).toContain("pgdead");
    expect(hex(await pcrs12("vdead"))).toEqual(hex(expected("sha1", boot20)));
  });
});
