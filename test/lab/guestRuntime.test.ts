/**
 * The lab does what a guest would (issue 13.3): a fresh TPM 1.2 vTPM has an EK from its first
 * start, as vtpm-stubdom's does, and a new one after its image is wiped; each guest has a xenbus
 * (the xenstore wire protocol on a socket) that lets it touch only its own data/; and a guest
 * with a vTPM and a NoCloud seed holding tvd-agent runs it, which reports to dom0 through
 * xenstore. Real swtpm, real sshd, the real agent binary (agent/bin/tvd-agent, `bash agent/build`).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { labStatus, labUp } from "../../lab/lab";
import { alive } from "../../lab/proc";
import { hasOwner, permanentFlags, readPubek, Tpm12 } from "../../lab/xl/tpm12";
import { buildSeedImage } from "../../provider/cloudinit/image";
import { renderSeedFiles } from "../../provider/cloudinit/render";
import { cfg, startTestLab, type TestLab } from "../support/lab";
import { XenbusClient } from "../support/xenbus";

jest.setTimeout(180_000);

let lab: TestLab;
const A = "dom0-a";
const AGENT_BIN = path.join(__dirname, "..", "..", "agent", "bin", "tvd-agent");
/** How long a guest's agent may take from xl create to its boot report (TPM 1.2: two RSA keys). */
const REPORT_WITHIN_MS = 30_000;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  await lab.check(
    A,
    "mkdir -p /var/lib/xen/vtpm && dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=16M count=1 status=none",
  );
  await lab.writeFile(A, "/etc/xen/vtpmmgr.cfg", cfg.manager());
  expect((await lab.xl(A, "create", "/etc/xen/vtpmmgr.cfg")).exitCode).toBe(0);
});

afterAll(async () => lab?.stop());

const status = () => labStatus(lab.stateDir).find((h) => h.name === A)!;
const domid = async (name: string) => (await lab.check(A, 'xl domid "$1"', name)).trim();
const dom0Read = (p: string) => lab.sh(A, 'xenstore-read "$1"', p);

/** A vTPM domain on `image`, made blank first when `wipe` (rm and dd, as an operator would). */
async function startVtpm(name: string, opts: { wipe?: boolean; tpm2?: boolean } = {}) {
  const image = `/var/lib/xen/vtpm/${name}.img`;
  if (opts.wipe) await lab.check(A, 'rm -f "$1" && dd if=/dev/zero of="$1" bs=8M count=1 status=none', image);
  await lab.writeFile(
    A,
    `/etc/xen/${name}.cfg`,
    cfg.vtpm(name, randomUUID(), { image, extra: opts.tpm2 ? "tpm2=1" : undefined }),
  );
  const r = await lab.xl(A, "create", `/etc/xen/${name}.cfg`);
  expect(r.stderr).not.toContain("lab:");
  expect(r.exitCode).toBe(0);
}

/** A TPM 1.2 conversation with a vTPM through the server socket `lab status` names. */
async function withTpm12<T>(vtpm: string, fn: (tpm: Tpm12) => Promise<T>): Promise<T> {
  const v = status().vtpms.find((x) => x.domain === vtpm);
  expect(v?.tpm).toBe("1.2");
  const tpm = await Tpm12.connect(v!.server);
  try {
    return await fn(tpm);
  } finally {
    tpm.close();
  }
}

describe("a fresh TPM 1.2 vTPM is like vtpm-stubdom's", () => {
  it("is enabled, activated and unowned with an EK from its first start; a wiped image gives a new EK", async () => {
    await startVtpm("ek1", { wipe: true });
    const first = await withTpm12("ek1", async (tpm) => {
      expect(await permanentFlags(tpm)).toEqual({ disable: false, ownership: true, deactivated: false });
      expect(await hasOwner(tpm)).toBe(false);
      return readPubek(tpm);
    });
    // TPM_PUBKEY of an RSA 2048 key: 12 bytes of key parms, 12 of RSA parms, 4 + 256 of modulus.
    expect(first.length).toBe(284);
    expect(first.readUInt32BE(0)).toBe(1); // TPM_ALG_RSA

    // The state is the image's: a restart keeps the EK.
    expect((await lab.xl(A, "destroy", "ek1")).exitCode).toBe(0);
    await startVtpm("ek1");
    expect((await withTpm12("ek1", readPubek)).equals(first)).toBe(true);

    // A wiped image is a new TPM, with an EK of its own: how dom0 tells a reset vTPM.
    expect((await lab.xl(A, "destroy", "ek1")).exitCode).toBe(0);
    await startVtpm("ek1", { wipe: true });
    const second = await withTpm12("ek1", readPubek);
    expect(second.length).toBe(284);
    expect(second.equals(first)).toBe(false);
    expect((await lab.xl(A, "destroy", "ek1")).exitCode).toBe(0);
  });
});

describe("a guest's xenbus", () => {
  let id: string;
  let other: string;
  let xb: XenbusClient;

  beforeAll(async () => {
    for (const g of ["xb1", "xb2"]) {
      await lab.writeFile(A, `/etc/xen/${g}.cfg`, cfg.guest(g));
      expect((await lab.xl(A, "create", `/etc/xen/${g}.cfg`)).exitCode).toBe(0);
    }
    id = await domid("xb1");
    other = await domid("xb2");
    const s = status().guests.find((g) => g.domain === "xb1");
    expect(s?.domid).toBe(Number(id));
    xb = await XenbusClient.connect(s!.xenbus);
  });

  afterAll(() => xb?.close());

  it("carries what the guest writes to dom0, and what dom0 writes to the guest's watch", async () => {
    expect((await xb.write("data/tvd/report", '{"hello":1}')).text).toBe("OK\0");
    expect((await dom0Read(`/local/domain/${id}/data/tvd/report`)).stdout).toBe('{"hello":1}\n');
    expect((await xb.read(`/local/domain/${id}/data/tvd/report`)).text).toBe('{"hello":1}');
    expect((await xb.directory("data/tvd")).text).toBe("report\0");

    // A new watch fires once at once, with the path as given, as xenstored does.
    expect((await xb.watch("data/tvd/request", "req")).text).toBe("OK\0");
    await xb.waitForEvent((e) => e.token === "req");
    expect(xb.events).toEqual([{ path: "data/tvd/request", token: "req" }]);
    await lab.check(A, 'xenstore-write "$1" t-1', `/local/domain/${id}/data/tvd/request`);
    await xb.waitForEvent(() => xb.events.filter((x) => x.token === "req").length >= 2);
    expect(xb.events[1]).toEqual({ path: "data/tvd/request", token: "req" });
    expect((await xb.read("data/tvd/request")).text).toBe("t-1");

    // An absolute watch gets absolute paths; a write below the watched node fires it too.
    expect((await xb.watch(`/local/domain/${id}/data/tvd`, "abs")).errno).toBeUndefined();
    await xb.waitForEvent((e) => e.token === "abs");
    await lab.check(A, 'xenstore-write "$1" x', `/local/domain/${id}/data/tvd/challenge`);
    await xb.waitForEvent((e) => e.path === `/local/domain/${id}/data/tvd/challenge` && e.token === "abs");
    // Unwatched, it stays quiet.
    expect((await xb.unwatch("data/tvd/request", "req")).errno).toBeUndefined();
    const before = xb.events.filter((e) => e.token === "req").length;
    await lab.check(A, 'xenstore-write "$1" t-2', `/local/domain/${id}/data/tvd/request`);
    await new Promise((r) => setTimeout(r, 500));
    expect(xb.events.filter((e) => e.token === "req").length).toBe(before);

    expect((await xb.rm("data/tvd/challenge")).text).toBe("OK\0");
    expect((await dom0Read(`/local/domain/${id}/data/tvd/challenge`)).exitCode).toBe(1);
    expect((await xb.read("data/none")).errno).toBe("ENOENT");
  });

  it("lets the guest read, write and watch only its own data/", async () => {
    await lab.check(A, 'xenstore-write "$1" secret', `/local/domain/${other}/data/key`);
    const outside = [
      "name",
      "device/vtpm/0/state",
      `/local/domain/${id}/name`,
      `/local/domain/${id}/datax`,
      `/local/domain/${other}/data/key`,
      `/local/domain/${other}/data`,
      "/local/domain/0/data",
      "/vm",
      "/",
    ];
    for (const p of outside) {
      expect([p, (await xb.read(p)).errno]).toEqual([p, "EACCES"]);
      expect([p, (await xb.write(p, "x")).errno]).toEqual([p, "EACCES"]);
      expect([p, (await xb.directory(p)).errno]).toEqual([p, "EACCES"]);
      expect([p, (await xb.rm(p)).errno]).toEqual([p, "EACCES"]);
      expect([p, (await xb.watch(p, "w")).errno]).toEqual([p, "EACCES"]);
    }
    // `..` does not walk out: '.' is no character of a xenstore path, so xenstored (and the
    // lab) refuse such a path before looking at it.
    const tricks = [
      "data/../name",
      "data/..",
      `/local/domain/${id}/data/../../${other}/data/key`,
      `data/../../${other}/data/key`,
      "data//x",
      "data/x/",
    ];
    for (const p of tricks) {
      expect([p, (await xb.read(p)).errno]).toEqual([p, "EINVAL"]);
      expect([p, (await xb.write(p, "x")).errno]).toEqual([p, "EINVAL"]);
      expect([p, (await xb.rm(p)).errno]).toEqual([p, "EINVAL"]);
    }
    // Nothing of the above reached the tree.
    expect((await dom0Read(`/local/domain/${other}/data/key`)).stdout).toBe("secret\n");
    expect((await dom0Read(`/local/domain/${id}/name`)).stdout).toBe("xb1\n");
    expect((await lab.sh(A, 'xenstore-list "$1"', `/local/domain/${other}/data`)).stdout).toBe("key\n");
    expect((await lab.sh(A, "xenstore-list /local/domain/0 2>/dev/null")).stdout).toBe("");
  });

  it("runs from xl create to destroy, and outlives an sshd restart", async () => {
    const s = status().guests.find((g) => g.domain === "xb2")!;
    const pidOf = async () =>
      JSON.parse(readFileSync(`${lab.host(A).dir}/root/var/lib/tvd-lab/domains.json`, "utf8")).domains.find(
        (d: { name: string }) => d.name === "xb2",
      )?.xenbus?.pid as number | undefined;
    const pid = await pidOf();
    expect(alive(pid)).toBe(true);

    // sshd stops (its sessions with it); `up` starts what stopped, as after a crash of sshd.
    const sshdPid = Number(readFileSync(`${lab.host(A).dir}/sshd.pid`, "utf8"));
    process.kill(sshdPid, "SIGTERM");
    while (alive(sshdPid)) await new Promise((r) => setTimeout(r, 50));
    await labUp(lab.stateDir, { hosts: 1 });
    expect(alive(pid)).toBe(true);
    const c = await XenbusClient.connect(s.xenbus);
    expect((await c.read(`/local/domain/${other}/data/key`)).text).toBe("secret");
    c.close();
    // The first guest's connection from before the restart still works.
    expect((await xb.read("data/tvd/request")).text).toBe("t-2");

    expect((await lab.xl(A, "destroy", "xb2")).exitCode).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(s.xenbus)).toBe(false);
    expect(status().guests.map((g) => g.domain)).toEqual(["xb1"]);
  });
});

describe("a guest with a vTPM and a seed runs tvd-agent", () => {
  const agentConfig = () =>
    JSON.stringify({
      version: 1,
      ownerAuth: randomBytes(32).toString("hex"),
      srkAuth: randomBytes(32).toString("hex"),
    });

  /** A NoCloud seed as the provider builds it: agent.json by write_files (0600), the binary as a file. */
  async function seedImage(name: string): Promise<Buffer> {
    if (!existsSync(AGENT_BIN)) throw new Error(`${AGENT_BIN} is missing: run bash agent/build`);
    const files = renderSeedFiles({
      instanceId: `${name}-1`,
      hostname: name,
      network: { kind: "dhcp" },
      sshAuthorizedKeys: [],
      sshCaPublicKeys: [],
      extraFiles: [{ path: "/etc/tvd/agent.json", content: agentConfig(), permissions: "0600" }],
    });
    const bin = readFileSync(AGENT_BIN);
    const sizeKiB = Math.ceil((bin.length * 1.2) / 1024 / 1024) * 1024 + 1024;
    return buildSeedImage({ ...files, "tvd-agent": bin }, sizeKiB);
  }

  async function startMember(name: string, vtpm: string, seed: Buffer) {
    const seedPath = `/var/lib/xen/images/${name}-seed.img`;
    const r = await (await lab.session(A)).run(["sh", "-c", 'cat > "$1"', "sh", seedPath], { stdin: seed });
    expect(r.exitCode).toBe(0);
    // The seed is a second raw disk, as the provider's Guest attaches it (extraDisks).
    const config = cfg
      .guest(name, { vtpm })
      .replace(/^disk=\[(.*)\]$/m, `disk=[$1, "format=raw, vdev=xvdb, access=ro, target=${seedPath}"]`);
    expect(config).toContain(seedPath);
    await lab.writeFile(A, `/etc/xen/${name}.cfg`, config);
    const created = await lab.xl(A, "create", `/etc/xen/${name}.cfg`);
    expect(created.exitCode).toBe(0);
    return domid(name);
  }

  interface Report {
    version: number;
    request: string;
    tpm: string;
    ek?: string;
    srk?: string;
    ak?: string;
    error?: string;
  }

  /** Polls dom0's xenstore-read until the report answers `request`; the report and how long it took. */
  async function awaitReport(
    name: string,
    id: string,
    request: string,
    started: number,
  ): Promise<{ report: Report; ms: number }> {
    for (;;) {
      const r = await dom0Read(`/local/domain/${id}/data/tvd/report`);
      if (r.exitCode === 0) {
        const report = JSON.parse(r.stdout) as Report;
        if (report.request === request) return { report, ms: Date.now() - started };
      }
      if (Date.now() - started > REPORT_WITHIN_MS) {
        const log = await lab.sh(A, 'cat "/var/log/xen/console/guest-$1.log"', name);
        throw new Error(`no report for ${request} within ${REPORT_WITHIN_MS} ms; console: ${log.stdout}`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  for (const tpm of ["1.2", "2.0"] as const) {
    it(`reports its TPM ${tpm}'s keys to dom0 through xenstore, and follows its vTPM's restart`, async () => {
      const name = tpm === "1.2" ? "m12" : "m20";
      const vtpm = `${name}-vtpm`;
      await startVtpm(vtpm, { wipe: true, tpm2: tpm === "2.0" });
      const ekBefore = tpm === "1.2" ? await withTpm12(vtpm, readPubek) : undefined;
      const seed = await seedImage(name);

      const started = Date.now();
      const id = await startMember(name, vtpm, seed);
      const { report, ms } = await awaitReport(name, id, "boot", started);
      console.log(`TPM ${tpm}: boot report ${ms} ms after xl create`);
      expect(report.error).toBeUndefined();
      expect(report.tpm).toBe(tpm);
      for (const k of [report.ek, report.srk, report.ak])
        expect(Buffer.from(k!, "base64").length).toBeGreaterThan(256);
      if (ekBefore) expect(Buffer.from(report.ek!, "base64").equals(ekBefore)).toBe(true);

      // What the lab extracted, as cloud-init would have written it.
      const g = status().guests.find((x) => x.domain === name)!;
      expect(alive(g.agentPid)).toBe(true);
      const config = path.join(lab.host(A).dir, "root/var/lib/tvd-lab/guest", name, "run/agent.json");
      expect(statSync(config).mode & 0o777).toBe(0o600);
      // The agent runs in the guest's own network namespace, not dom0's.
      const agentNet = (await lab.check(A, 'readlink "/proc/$1/ns/net"', String(g.agentPid))).trim();
      const dom0Net = (await lab.check(A, "readlink /proc/self/ns/net")).trim();
      expect(agentNet).not.toBe(dom0Net);
      const console_ = await lab.check(A, 'cat "/var/log/xen/console/guest-$1.log"', name);
      expect(console_).toContain("tvd-agent");
      expect(console_).not.toContain(JSON.parse(readFileSync(config, "utf8")).ownerAuth);

      // The vTPM restarts (same image): the agent reaches the new swtpm on its next request.
      expect((await lab.xl(A, "destroy", vtpm)).exitCode).toBe(0);
      await startVtpm(vtpm, { tpm2: tpm === "2.0" });
      const asked = Date.now();
      await lab.check(A, 'xenstore-write "$1" after-restart', `/local/domain/${id}/data/tvd/request`);
      const again = await awaitReport(name, id, "after-restart", asked);
      expect(again.report.error).toBeUndefined();
      expect(again.report.ek).toBe(report.ek);
      expect(again.report.ak).toBe(report.ak);

      // Stopped with the domain; started again with it, on the state it kept (the same AK).
      expect((await lab.xl(A, "destroy", name)).exitCode).toBe(0);
      expect(alive(g.agentPid)).toBe(false);
      const restarted = Date.now();
      const id2 = await startMember(name, vtpm, seed);
      const third = await awaitReport(name, id2, "boot", restarted);
      expect(third.report.error).toBeUndefined();
      expect(third.report.ak).toBe(report.ak);

      // The state is on the guest's own disk: another seed (a rotation) keeps it, as cloud-init
      // wipes no disk for a new instance; a root disk made again (another guest) starts empty.
      const stateDir = path.join(lab.host(A).dir, "root/var/lib/tvd-lab/guest", name, "agent-state");
      expect(existsSync(path.join(stateDir, "marker"))).toBe(false);
      writeFileSync(path.join(stateDir, "marker"), "");
      expect((await lab.xl(A, "destroy", name)).exitCode).toBe(0);
      await startMember(name, vtpm, await seedImage(name));
      expect(existsSync(path.join(stateDir, "marker"))).toBe(true);
      expect((await lab.xl(A, "destroy", name)).exitCode).toBe(0);
      const rootDisk = /target=([^,"\]]+)/.exec(cfg.guest(name, { vtpm }))?.[1]?.trim();
      expect(rootDisk).toBeTruthy();
      await lab.check(A, 'cp -- "$1" "$1.new" && mv -f -- "$1.new" "$1"', rootDisk!);
      await startMember(name, vtpm, await seedImage(name));
      expect(existsSync(path.join(stateDir, "marker"))).toBe(false);
      expect((await lab.xl(A, "destroy", name)).exitCode).toBe(0);
      expect((await lab.xl(A, "destroy", vtpm)).exitCode).toBe(0);
    });
  }
});
