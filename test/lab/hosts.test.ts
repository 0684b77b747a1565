/**
 * Lab hosts as hosts: isolated from each other, surviving an sshd restart, and the fault knobs
 * acting where real failures would.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { alive, ensureHost, inHost } from "../../lab/host";
import { MEASURED_IMAGE, measuredBoot } from "../../lab/measuredTemplate";
import {
  clearFaults,
  dropConnections,
  failNext,
  fillDisk,
  pendingFailures,
  setLatency,
} from "../../lab/faults";
import { labHosts, labStatus, labUp } from "../../lab/lab";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const [A, B] = ["dom0-a", "dom0-b"];

beforeAll(async () => {
  lab = await startTestLab({ hosts: 2, diskMiB: 256 });
});

afterAll(async () => lab?.stop());

describe("each host is its own dom0", () => {
  it("has its own Xen directories, hostname, network namespace and host key", async () => {
    await lab.sh(A, "echo a > /etc/xen/only-on-a");
    expect((await lab.sh(B, "test -e /etc/xen/only-on-a")).exitCode).toBe(1);
    expect((await lab.sh(A, "hostname")).stdout).toBe("dom0-a\n");
    expect((await lab.sh(B, "hostname")).stdout).toBe("dom0-b\n");
    // lo, and eth0 into the lab's underlay (its peer is in the underlay's namespace).
    const links = await lab.sh(A, "ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//'");
    expect(links.stdout.trim().split("\n").sort()).toEqual(["eth0", "lo"]);
    // A link made on one host stays on that host.
    expect((await lab.sh(A, "ip link add tvdbr0 type bridge")).exitCode).toBe(0);
    expect((await lab.sh(A, "ip link show tvdbr0")).exitCode).toBe(0);
    expect((await lab.sh(B, "ip link show tvdbr0")).exitCode).not.toBe(0);
    expect(lab.host(A).hostKeyFingerprint).not.toBe(lab.host(B).hostKeyFingerprint);
    expect((await lab.sh(A, "df -P /var/lib/xen | awk 'NR == 2 { print $2 }'")).stdout.trim()).toMatch(
      /^2\d{5}$/,
    );
  });

  it("holds the lab's templates: an empty base image and the measured-boot one, whose boot files are also beside the inventory", async () => {
    expect((await lab.sh(A, "ls -A /var/lib/xen/images")).stdout).toBe(
      "debian-base.raw\ndebian-measured.raw\n",
    );
    expect((await lab.sh(A, "debugfs -R 'ls -p /' /var/lib/xen/images/debian-base.raw")).stdout).not.toMatch(
      /\/boot\//,
    );
    // The image's files are byte for byte those under <stateDir>/boot/, where Pulumi reads them.
    const boot = path.join(lab.stateDir, "boot");
    const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    for (const file of ["vmlinuz", "initrd.img", "grub/menu.lst"]) {
      const inImage = await lab.sh(
        B,
        'debugfs -R "cat /boot/$1" "$2" 2>/dev/null | sha256sum',
        file,
        MEASURED_IMAGE,
      );
      expect(inImage.stdout.slice(0, 64)).toBe(sha256(readFileSync(path.join(boot, file))));
    }
    expect(readFileSync(path.join(boot, "grub/menu.lst"), "utf8")).toContain(
      `kernel /boot/vmlinuz ${readFileSync(path.join(boot, "cmdline"), "utf8").trim()}\n`,
    );
    // The same bytes on every lab and every run (a fixed header, a seeded chain): pinned here.
    const { kernel, initrd } = measuredBoot();
    expect(sha256(gunzipSync(readFileSync(path.join(boot, "vmlinuz"))))).toBe(sha256(kernel));
    expect([sha256(kernel), sha256(initrd)]).toEqual([
      "6f1a98b828778ed3b3ae283dbd83c69c7913991b55e7aa490c7c65f82fd0d648",
      "4b4312f49ab6605c1e6c936a9713d86550739cd041e2463be82279b596ecf021",
    ]);
  });

  it("comes up idempotently: a second up keeps hosts, keys and domains", async () => {
    await lab.writeFile(A, "/etc/xen/keep.cfg", cfg.guest("keep"));
    expect((await lab.xl(A, "create", "/etc/xen/keep.cfg")).exitCode).toBe(0);
    const again = await labUp(lab.stateDir, { hosts: 2 });
    expect(again.hosts.map((h) => [h.name, h.port, h.hostKeyFingerprint])).toEqual(
      lab.hosts.map((h) => [h.name, h.port, h.hostKeyFingerprint]),
    );
    expect(labHosts(lab.stateDir).map((h) => h.holderPid)).toEqual(lab.hosts.map((h) => h.holderPid));
    expect((await lab.xl(A, "list")).stdout).toMatch(/^keep\s/m);
    await lab.xl(A, "destroy", "keep");
  });

  it("has key-only login", () => {
    const config = readFileSync(`${lab.host(A).dir}/sshd_config`, "utf8");
    expect(config).toMatch(/^PasswordAuthentication no$/m);
    expect(config).toMatch(/^KbdInteractiveAuthentication no$/m);
  });

  it("keeps its domains and files when sshd restarts", async () => {
    await lab.writeFile(A, "/etc/xen/g1.cfg", cfg.guest("g1"));
    expect((await lab.xl(A, "create", "/etc/xen/g1.cfg")).exitCode).toBe(0);
    const sshdPid = Number(readFileSync(`${lab.host(A).dir}/sshd.pid`, "utf8"));
    process.kill(sshdPid, "SIGTERM");
    for (let i = 0; i < 50 && alive(sshdPid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(sshdPid)).toBe(false);
    await ensureHost({
      name: A,
      stateDir: lab.stateDir,
      port: lab.host(A).port,
      memoryMiB: 65536,
      diskMiB: 256,
      tpm2: false,
      managerReadyDelaySec: 0.3,
      shutdownAckTimeoutSec: 1,
    });
    expect((await lab.xl(A, "list")).stdout).toMatch(/^g1\s/m);
    expect((await lab.sh(A, "cat /etc/xen/only-on-a")).stdout).toBe("a\n");
    expect(labStatus(lab.stateDir).find((h) => h.name === A)?.running).toBe(true);
  });
});

describe("fault knobs", () => {
  afterEach(async () => clearFaults(lab.host(A)));

  it("fails the next N commands matching a pattern, then lets them through", async () => {
    failNext(lab.host(A), "^'xl' 'info'", 2);
    const s = await lab.session(A);
    expect((await s.run(["xl", "list"])).exitCode).toBe(0);
    const first = await s.run(["xl", "info"]);
    expect(first.exitCode).toBe(97);
    expect(first.stderr).toContain("tvd-lab: injected failure");
    expect((await s.run(["xl", "info"])).exitCode).toBe(97);
    expect((await s.run(["xl", "info"])).exitCode).toBe(0);
    expect(pendingFailures(lab.host(A))).toEqual([]);
  });

  it("keeps a rule while many other commands run in parallel (regression: rules were dropped)", async () => {
    failNext(lab.host(A), "^'xl' 'domid' 'never-run'", 1);
    const s = await lab.session(A);
    // Eight channels at a time, as the provider runs them; none of these commands matches.
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => s.run(["echo", String(i)])));
    expect(runs.every((r) => r.exitCode === 0)).toBe(true);
    expect(pendingFailures(lab.host(A))).toEqual([{ count: 1, pattern: "^'xl' 'domid' 'never-run'" }]);
  });

  it("adds latency to every command", async () => {
    setLatency(lab.host(A), 400);
    const s = await lab.session(A);
    const started = Date.now();
    expect((await s.run(["true"])).exitCode).toBe(0);
    // A lower bound only: the knob's effect, not a timing goal.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it("drops SSH connections", async () => {
    const s = await lab.session(A);
    const long = s.run(["sleep", "30"]);
    await new Promise((r) => setTimeout(r, 300));
    await dropConnections(lab.host(A));
    await expect(long).resolves.toMatchObject({ exitCode: null });
    expect(s.isClosed).toBe(true);
    // A new connection works.
    expect((await (await lab.session(A)).run(["true"])).exitCode).toBe(0);
  });

  it("fills the disk, so writing an image fails with ENOSPC", async () => {
    await fillDisk(lab.host(A));
    const dd = await lab.sh(A, "dd if=/dev/zero of=/var/lib/xen/big.img bs=1M count=8 conv=excl status=none");
    expect(dd.exitCode).not.toBe(0);
    expect(dd.stderr).toContain("No space left on device");
    await clearFaults(lab.host(A));
    const after = await inHost(lab.host(A), [
      "sh",
      "-c",
      "rm -f /var/lib/xen/big.img; dd if=/dev/zero of=/var/lib/xen/big.img bs=1M count=8 status=none",
    ]);
    expect(after.code).toBe(0);
  });
});
