/**
 * Issue 11's findings in the dom0 and transport layers, against a real sshd on a lab host: each
 * test is named after the finding it fixes. The pure parts are in test/unit/dom0Robustness.test.ts.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { clearFaults, LIBXL_WARNING, xlStderr } from "../../lab/faults";
import { ArtifactExistsError, Dom0, withLock } from "../../provider/dom0/dom0";
import { ARCHIVE_DIR, EXIT_INCOMPLETE, WRITE_FILE_ATOMIC } from "../../provider/dom0/scripts";
import { connectionSchema } from "../../provider/transport/connection";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
let dom0: Dom0;
const A = "dom0-a";

const connect = (extra: Record<string, unknown> = {}) => {
  const h = lab.host(A);
  return Dom0.connect(
    connectionSchema.parse({
      host: h.host,
      port: h.port,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
      ...extra,
    }),
  );
};

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1, diskMiB: 256 });
  dom0 = await connect();
});

afterAll(async () => lab?.stop());

const sh = (script: string, ...args: string[]) => lab.sh(A, script, ...args);
const exists = async (p: string) => (await sh('test -e "$1"', p)).exitCode === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const partials = async (dir: string) => (await sh('ls -A "$1" | grep partial || true', dir)).stdout;
const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe("a command that times out locally goes on on dom0 and links its file afterwards", () => {
  it("kills the command on the dom0 when it times out: nothing is linked into place later", async () => {
    const s = await lab.session(A);
    const late = "/var/lib/xen/late.img";
    const script = 'tmp=$(mktemp "$1.partial.XXXXXX"); sleep 3.217; ln -- "$tmp" "$1"; rm -f -- "$tmp"';
    await expect(s.run(["sh", "-c", script, "sh", late], { timeoutSec: 1 })).rejects.toThrow(
      /timed out after 1s \(killed on the host; raise connection\.commandTimeoutSec/,
    );
    await sleep(3500);
    expect(await exists(late)).toBe(false);
    // Nothing of it runs any more.
    expect((await sh("ps -eo args | grep -c '^sleep 3.217$' || true")).stdout.trim()).toBe("0");
  });

  it("an image create waiting on a dom0 lock does not go on after its commandTimeoutSec", async () => {
    const s = await lab.session(A);
    const holder = s.run(withLock("late-lock", ["sleep", "4"]));
    await sleep(500);
    const impatient = await connect({ commandTimeoutSec: 1 });
    await expect(impatient.createRawImage("/var/lib/xen/vtpm/late-lock.img", 1, "late-lock")).rejects.toThrow(
      /timed out after 1s/,
    );
    expect((await holder).exitCode).toBe(0);
    await sleep(1000);
    expect(await exists("/var/lib/xen/vtpm/late-lock.img")).toBe(false);
  });
});

describe("the atomic write moves a file whose content was cut off", () => {
  const file = "/etc/xen/cut.cfg";
  const content = Buffer.from('name="new"\n' + "x".repeat(100_000) + "\n");
  /** The write as Dom0.writeFileAtomic asks for `content`, with other bytes arriving on stdin. */
  const writeReceiving = async (stdin: Buffer) => {
    const args = [file, "0600", String(content.length), sha256(content)];
    return (await lab.session(A)).run(["sh", "-c", WRITE_FILE_ATOMIC, "pulumi-tvd", ...args], { stdin });
  };

  it("a truncated stdin never replaces the file", async () => {
    await dom0.writeFileAtomic(file, 'name="old"\n', "0600");
    // What the dom0 sees when the connection drops mid-upload: stdin ends early, cleanly.
    const r = await writeReceiving(content.subarray(0, 40_000));
    expect(r.exitCode).toBe(EXIT_INCOMPLETE);
    expect(r.stderr).toMatch(/refusing to replace \/etc\/xen\/cut\.cfg: received 40000 of 100012 bytes/);
    expect((await sh('cat "$1"', file)).stdout).toBe('name="old"\n');
    expect(await partials("/etc/xen")).toBe("");
  });

  it("nor does content of the right length with other bytes", async () => {
    const other = Buffer.from(content);
    other[5000] = 0x79;
    expect((await writeReceiving(other)).exitCode).toBe(EXIT_INCOMPLETE);
    expect((await sh('cat "$1"', file)).stdout).toBe('name="old"\n');
  });

  it("replaces it with exactly the bytes sent, text or binary", async () => {
    await dom0.writeFileAtomic(file, content.toString("utf8"), "0600");
    expect((await sh('sha256sum < "$1"', file)).stdout.split(" ")[0]).toBe(sha256(content));
    const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256));
    await dom0.writeFileAtomic("/var/lib/xen/seed.bin", binary);
    expect((await sh("sha256sum < /var/lib/xen/seed.bin")).stdout.split(" ")[0]).toBe(sha256(binary));
  });
});

describe("archiving across filesystems fails forever", () => {
  // The lab host has its own mount namespace: this tmpfs is another filesystem than the
  // archive's (/var/lib/xen, an ext4 image), as a vTPM image on another disk would be.
  const other = "/var/lib/xen/other-fs";
  const image = `${other}/x-vtpm.img`;
  const when = new Date("2026-11-23T20:00:00Z");

  beforeAll(async () => {
    await lab.check(A, 'mkdir -p "$1" && mount -t tmpfs -o size=32m tmpfs "$1"', other);
  });

  it("copies, checks and then links the image into the archive, and only then removes it", async () => {
    await dom0.createRawImage(image, 4);
    await sh('printf "vTPM KEYS" | dd of="$1" bs=1 seek=1048576 conv=notrunc status=none', image);
    const before = (await sh('sha256sum < "$1"', image)).stdout;
    const archived = await dom0.archive(image, when);
    expect(archived).toBe(`${ARCHIVE_DIR}/x-vtpm.img.20261123T200000Z`);
    expect(await exists(image)).toBe(false);
    expect((await sh('sha256sum < "$1"', archived!)).stdout).toBe(before);
    expect((await sh('stat -c %s "$1"', archived!)).stdout.trim()).toBe(String(4 * 1024 * 1024));
    expect(await partials(ARCHIVE_DIR)).toBe("");
  });

  it("never overwrites an archived file, and keeps the image then", async () => {
    await dom0.createRawImage(image, 4);
    await expect(dom0.archive(image, when)).rejects.toThrow(ArtifactExistsError);
    expect(await exists(image)).toBe(true);
    expect(await partials(ARCHIVE_DIR)).toBe("");
    // A new timestamp archives it.
    expect(await dom0.archive(image, new Date("2026-11-23T20:00:01Z"))).toBe(
      `${ARCHIVE_DIR}/x-vtpm.img.20261123T200001Z`,
    );
  });
});

describe("with a manager and a vTPM running", () => {
  const uuid = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";
  const ownerAuth = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c";

  beforeAll(async () => {
    await dom0.createRawImage("/var/lib/xen/vtpm/mgr.img", 16);
    await dom0.writeFileAtomic(
      "/etc/xen/vtpmmgr.cfg",
      cfg.manager() + `extra="tpmlocality=2 owner_auth=${ownerAuth} srk_auth=well-known"\n`,
      "0600",
    );
    await dom0.xlCreate("/etc/xen/vtpmmgr.cfg");
    await lab.waitForConsole(A, "vtpmmgr", "Waiting for commands");
    await dom0.createRawImage("/var/lib/xen/vtpm/i1.img", 8);
    await dom0.writeFileAtomic("/etc/xen/i1.cfg", cfg.vtpm("i1", uuid), "0600");
    await dom0.xlCreate("/etc/xen/i1.cfg");
  });

  describe("`xl list -l ... 2>&1` breaks on a libxl warning", () => {
    afterEach(async () => clearFaults(lab.host(A)));

    it("the lab's xl prints a libxl warning on stderr when told to, output unchanged", async () => {
      xlStderr(lab.host(A), "list");
      const r = await lab.xl(A, "list", "-l", "i1");
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toBe(LIBXL_WARNING + "\n");
      expect(JSON.parse(r.stdout)[0].config.c_info.name).toBe("i1");
    });

    it("inspect reads xl's output whatever libxl warns about, and who uses a backend", async () => {
      xlStderr(lab.host(A), "list");
      const report = await dom0.inspect("i1", [{ role: "config", path: "/etc/xen/i1.cfg" }]);
      expect(report.domain.running).toBe(true);
      expect((report.domain.config as { c_info: { name: string } }).c_info.name).toBe("i1");
      expect(report.domain.vtpms).toEqual([{ devid: 0, backend: "vtpmmgr", uuid }]);
      expect((await dom0.inspect("vtpmmgr", [])).domain.usedBy).toEqual(["i1"]);
    });
  });

  describe("a console tail in an error can carry `owner_auth=`", () => {
    it("the manager's console shows its command line, as Mini-OS prints it", async () => {
      expect((await sh("cat /var/log/xen/console/guest-vtpmmgr.log")).stdout).toContain(
        `    cmd_line: tpmlocality=2 owner_auth=${ownerAuth} srk_auth=well-known`,
      );
    });

    it("waitForConsole's error shows the console's last lines with owner_auth and srk_auth redacted", async () => {
      const err = await dom0.waitForConsole("vtpmmgr", "never printed", 1).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      const message = (err as Error).message;
      expect(message).toMatch(/did not print "never printed" within 1s; its console's last lines:/);
      expect(message).toContain("cmd_line: tpmlocality=2 owner_auth=*** srk_auth=***");
      expect(message).not.toContain(ownerAuth);
    });

    it("a failed command's error carries its stderr with owner_auth redacted", async () => {
      const s = await lab.session(A);
      const argv = ["sh", "-c", 'cat "$1" >&2; exit 1', "sh", "/etc/xen/vtpmmgr.cfg"];
      const err = await s.check(argv).catch((e: Error) => e);
      expect((err as Error).message).toContain("owner_auth=***");
      expect((err as Error).message).not.toContain(ownerAuth);
    });
  });
});
