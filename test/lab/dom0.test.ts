/** Dom0 operations against a lab host: nothing overwritten, nothing half-written, locks hold. */
import { clearFaults, fillDisk } from "../../lab/faults";
import { ArtifactExistsError, ArtifactMissingError, Dom0, withLock } from "../../provider/dom0/dom0";
import { connectionSchema } from "../../provider/transport/connection";
import { HOSTILE } from "../support/hostile";
import { startTestLab, type TestLab } from "../support/lab";
import { readFileSync } from "node:fs";

jest.setTimeout(120_000);

let lab: TestLab;
let dom0: Dom0;
const A = "dom0-a";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1, diskMiB: 256 });
  const h = lab.host(A);
  dom0 = await Dom0.connect(
    connectionSchema.parse({
      host: h.host,
      port: h.port,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
    }),
  );
});

afterAll(async () => lab?.stop());

const sh = (script: string, ...args: string[]) => lab.sh(A, script, ...args);
const leftovers = async (dir: string) => (await sh('ls -A "$1" | grep partial || true', dir)).stdout;

describe("createRawImage", () => {
  it("makes a zero-filled image of the asked size, creating its directory", async () => {
    await dom0.createRawImage("/var/lib/xen/vtpm/new/a.img", 8);
    expect((await sh("stat -c %s /var/lib/xen/vtpm/new/a.img")).stdout.trim()).toBe(String(8 * 1024 * 1024));
    expect((await sh("cmp -n 8388608 /var/lib/xen/vtpm/new/a.img /dev/zero && echo zero")).stdout).toBe(
      "zero\n",
    );
  });

  it("never overwrites an existing image, and leaves it untouched", async () => {
    await sh("printf KEYS | dd of=/var/lib/xen/vtpm/new/a.img conv=notrunc status=none");
    await expect(dom0.createRawImage("/var/lib/xen/vtpm/new/a.img", 8)).rejects.toThrow(ArtifactExistsError);
    expect((await sh("head -c 4 /var/lib/xen/vtpm/new/a.img")).stdout).toBe("KEYS");
    expect(await leftovers("/var/lib/xen/vtpm/new")).toBe("");
  });

  it("leaves nothing behind when the disk is full", async () => {
    await fillDisk(lab.host(A));
    try {
      await expect(dom0.createRawImage("/var/lib/xen/vtpm/new/full.img", 16)).rejects.toThrow(
        /No space left on device/,
      );
      expect((await sh("test -e /var/lib/xen/vtpm/new/full.img")).exitCode).toBe(1);
      expect(await leftovers("/var/lib/xen/vtpm/new")).toBe("");
    } finally {
      await clearFaults(lab.host(A));
    }
  });
});

describe("writeFileAtomic", () => {
  it("writes content literally with the asked mode", async () => {
    const content = HOSTILE.join("\n") + "\n";
    await dom0.writeFileAtomic("/etc/xen/hostile.cfg", content, "0600");
    expect((await sh("cat /etc/xen/hostile.cfg")).stdout).toBe(content);
    expect((await sh("stat -c %a /etc/xen/hostile.cfg")).stdout.trim()).toBe("600");
    expect((await sh("test -e /tmp/pwned")).exitCode).toBe(1);
  });

  it("keeps the old file whole when the new one cannot be written", async () => {
    await dom0.writeFileAtomic("/var/lib/xen/keep.cfg", 'name="old"\n');
    await fillDisk(lab.host(A));
    try {
      await expect(
        dom0.writeFileAtomic("/var/lib/xen/keep.cfg", "x".repeat(4 * 1024 * 1024)),
      ).rejects.toThrow();
      expect((await sh("cat /var/lib/xen/keep.cfg")).stdout).toBe('name="old"\n');
      expect(await leftovers("/var/lib/xen")).toBe("");
    } finally {
      await clearFaults(lab.host(A));
    }
  });
});

describe("createOverlay", () => {
  const base = "/var/lib/xen/images/debian-base.raw";

  it("makes a qcow2 overlay backed by the base, without copying it", async () => {
    await dom0.createOverlay(base, "raw", "/var/lib/xen/images/g1.qcow2");
    const info = JSON.parse((await sh("qemu-img info --output=json /var/lib/xen/images/g1.qcow2")).stdout);
    expect(info).toMatchObject({
      format: "qcow2",
      "backing-filename": base,
      "backing-filename-format": "raw",
    });
    expect(info["actual-size"]).toBeLessThan(1024 * 1024);
  });

  it("refuses a missing base and an existing overlay", async () => {
    await expect(
      dom0.createOverlay("/var/lib/xen/images/nope.raw", "raw", "/var/lib/xen/images/g2.qcow2"),
    ).rejects.toThrow(ArtifactMissingError);
    await expect(dom0.createOverlay(base, "raw", "/var/lib/xen/images/g1.qcow2")).rejects.toThrow(
      ArtifactExistsError,
    );
  });
});

describe("withLock", () => {
  it("serializes two commands holding the same lock", async () => {
    const s = await lab.session(A);
    const stamp = ["sh", "-c", "date +%s%N; sleep 0.4; date +%s%N"];
    const [a, b] = await Promise.all([s.run(withLock("vtpm1", stamp)), s.run(withLock("vtpm1", stamp))]);
    const [a0, a1] = a.stdout.trim().split("\n").map(BigInt);
    const [b0, b1] = b.stdout.trim().split("\n").map(BigInt);
    // One ran entirely before the other.
    expect(a1 <= b0 || b1 <= a0).toBe(true);
  });

  it("lets shared holders run side by side (vTPMs starting on one manager), never beside an exclusive one", async () => {
    const s = await lab.session(A);
    const stamp = ["sh", "-c", "date +%s%N; sleep 0.6; date +%s%N"];
    const span = (r: { stdout: string }) => r.stdout.trim().split("\n").map(BigInt);
    const overlap = (x: bigint[], y: bigint[]) => x[0] < y[1] && y[0] < x[1];
    const [a, b] = await Promise.all([
      s.run(withLock("mgr1", stamp, { shared: true })),
      s.run(withLock("mgr1", stamp, { shared: true })),
    ]);
    expect(overlap(span(a), span(b))).toBe(true);
    const [x, y] = await Promise.all([
      s.run(withLock("mgr1", stamp)),
      s.run(withLock("mgr1", stamp, { shared: true })),
    ]);
    expect(overlap(span(x), span(y))).toBe(false);
  });

  it("refuses a lock name that is not an artifact name", () => {
    expect(() => withLock("../etc/passwd", ["true"])).toThrow(/invalid lock name/);
  });
});

describe("inspect", () => {
  it("reports a running vTPM domain, its config, image and overlay in one round trip", async () => {
    await dom0.createRawImage("/var/lib/xen/vtpm/mgr.img", 16);
    await dom0.writeFileAtomic(
      "/etc/xen/vtpmmgr.cfg",
      'name="vtpmmgr"\nkernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"\nmemory=16\ndisk=["file:/var/lib/xen/vtpm/mgr.img,hda,w"]\n',
    );
    expect((await lab.xl(A, "create", "/etc/xen/vtpmmgr.cfg")).exitCode).toBe(0);
    await dom0.createRawImage("/var/lib/xen/vtpm/i1.img", 8);
    const uuid = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";
    await dom0.writeFileAtomic(
      "/etc/xen/i1.cfg",
      `name="i1"\nkernel="/usr/lib/xen/boot/vtpm-stubdom.gz"\nmemory=8\ndisk=["file:/var/lib/xen/vtpm/i1.img,hda,w"]\nvtpm=["backend=vtpmmgr,uuid=${uuid}"]\n`,
    );
    expect((await lab.xl(A, "create", "/etc/xen/i1.cfg")).exitCode).toBe(0);

    const stats = `${lab.stateDir}/inspect-stats.jsonl`;
    process.env.PULUMI_TVD_STATS = stats;
    let report;
    try {
      report = await dom0.inspect("i1", [
        { role: "config", path: "/etc/xen/i1.cfg" },
        { role: "image", path: "/var/lib/xen/vtpm/i1.img" },
        { role: "overlay", path: "/var/lib/xen/images/g1.qcow2" },
        { role: "image", path: "/var/lib/xen/vtpm/gone.img" },
      ]);
    } finally {
      delete process.env.PULUMI_TVD_STATS;
    }
    expect(readFileSync(stats, "utf8").trim().split("\n")).toHaveLength(1);
    expect(report.domain.running).toBe(true);
    expect(report.domain.vtpms).toEqual([{ devid: 0, backend: "vtpmmgr", uuid }]);
    expect((report.domain.config as { c_info: { name: string } }).c_info.name).toBe("i1");
    expect(report.files["/etc/xen/i1.cfg"].content).toContain(`uuid=${uuid}`);
    expect(report.files["/var/lib/xen/vtpm/i1.img"]).toEqual({ exists: true, sizeBytes: 8 * 1024 * 1024 });
    expect(report.files["/var/lib/xen/images/g1.qcow2"].qcow2).toEqual({
      format: "qcow2",
      backingFile: "/var/lib/xen/images/debian-base.raw",
      backingFormat: "raw",
    });
    expect(report.files["/var/lib/xen/vtpm/gone.img"]).toEqual({ exists: false });
  });

  it("reports a domain that is not running", async () => {
    expect((await lab.xl(A, "destroy", "i1")).exitCode).toBe(0);
    const report = await dom0.inspect("i1", [{ role: "config", path: "/etc/xen/i1.cfg" }]);
    expect(report.domain).toEqual({
      running: false,
      config: undefined,
      domid: undefined,
      vtpms: [],
      usedBy: [],
    });
    expect(report.files["/etc/xen/i1.cfg"].exists).toBe(true);
  });
});

describe("waitForConsole", () => {
  it("returns once the manager prints 'Waiting for commands'", async () => {
    await dom0.waitForConsole("vtpmmgr", "INFO[VTPM]: Waiting for commands from vTPM's:", 20);
  });

  it("times out naming the domain, the text and the console's last lines", async () => {
    await expect(dom0.waitForConsole("vtpmmgr", "never printed", 1)).rejects.toThrow(
      /vtpmmgr on root@127\.0\.0\.1:\d+ did not print "never printed" within 1s; its console's last lines:\n[\s\S]*Waiting for commands/,
    );
  });
});

describe("xl, archive and vTPM users", () => {
  it("lists the domains whose vTPMs hang on a manager, and archives an image without overwriting", async () => {
    await dom0.writeFileAtomic(
      "/etc/xen/vtpmmgr.cfg",
      'name="vtpmmgr"\nkernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"\nmemory=16\ndisk=["file:/var/lib/xen/vtpm/mgr.img,hda,w"]\n',
    );
    await dom0.xlDestroy("vtpmmgr");
    await dom0.xlDestroy("vtpmmgr"); // already gone: fine
    await dom0.xlCreate("/etc/xen/vtpmmgr.cfg");
    await expect(dom0.xlCreate("/etc/xen/vtpmmgr.cfg")).rejects.toThrow(
      /Domain with name "vtpmmgr" already exists/,
    );
    expect((await dom0.inspect("vtpmmgr", [])).domain.usedBy).toEqual([]);
    await dom0.xlCreate("/etc/xen/i1.cfg");
    expect((await dom0.inspect("vtpmmgr", [])).domain.usedBy).toEqual(["i1"]);
    await dom0.xlDestroy("i1");

    const when = new Date("2026-11-23T20:00:00.123Z");
    const archived = await dom0.archive("/var/lib/xen/vtpm/i1.img", when);
    expect(archived).toBe("/var/lib/xen/pulumi-tvd/archive/i1.img.20261123T200000Z");
    expect((await sh("test -e /var/lib/xen/vtpm/i1.img")).exitCode).toBe(1);
    expect((await sh('stat -c %s "$1"', archived!)).stdout.trim()).toBe(String(8 * 1024 * 1024));
    expect(await dom0.archive("/var/lib/xen/vtpm/i1.img", when)).toBeUndefined();
    await dom0.createRawImage("/var/lib/xen/vtpm/i1.img", 8);
    await expect(dom0.archive("/var/lib/xen/vtpm/i1.img", when)).rejects.toThrow(ArtifactExistsError);
    expect((await sh("test -e /var/lib/xen/vtpm/i1.img")).exitCode).toBe(0);
    await dom0.removeFiles(["/var/lib/xen/vtpm/i1.img", "/var/lib/xen/vtpm/never-there.img"]);
    expect((await sh("test -e /var/lib/xen/vtpm/i1.img")).exitCode).toBe(1);
  });
});

describe("waitForConsole across restarts", () => {
  it("does not take a previous boot's 'Waiting for commands' for the current one", async () => {
    // A console log from an earlier boot, then a new boot that is not ready yet.
    await sh(
      "printf 'Xen Minimal OS (pv)!\\nINFO[VTPM]: Waiting for commands from vTPM'\"'\"'s:\\nXen Minimal OS (pv)!\\nINFO[VTPM]: Starting vTPM manager domain\\n' > /var/log/xen/console/guest-rebooted.log",
    );
    await expect(dom0.waitForConsole("rebooted", "Waiting for commands", 1)).rejects.toThrow(/did not print/);
    await sh(
      'echo "INFO[VTPM]: Waiting for commands from vTPM\'s:" >> /var/log/xen/console/guest-rebooted.log',
    );
    await dom0.waitForConsole("rebooted", "Waiting for commands", 5);
  });
});
