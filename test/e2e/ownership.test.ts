/**
 * Issue 11's findings, each reproduced through the real Pulumi CLI on a two-host lab: what
 * pulumi-tvd creates is its own, and it never takes over, overwrites or destroys what another
 * resource (or a person) made; drift is either planned with a visible diff or shows nothing.
 *
 * Two stacks of one program (test/e2e/fixtures/ownership, resources from config): `owner` holds
 * a vTPM manager, a vTPM and a guest on dom0-a; `other` is the second stack that runs into them
 * (and, on dom0-b, the small TVD, the one-program refusals and the vTPM renames). Every `up`
 * here runs its preview (no --skip-preview).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SEEDED_IMAGES } from "../../lab/host";
import { startTestLab, type TestLab } from "../support/lab";
import { expectExit, type EngineEvent, type OperationResult, type StepSummary, TestStack } from "./pulumi";

// As tvd and vtpmIdentity: a test here is a few CLI operations on two hosts, a few minutes alone,
// and in the full suite (four workers and the real-Xen host's QEMU on two cores) its small TVD's
// up, preview --refresh and destroy took over 10.
jest.setTimeout(20 * 60_000);

const fixture = path.join(__dirname, "fixtures", "ownership");
const A = "dom0-a";
const B = "dom0-b";
const BASE = "/var/lib/xen/images/debian-base.raw";
const KERNEL = "/usr/lib/xen/boot/vmlinuz";
const MANAGER_CFG = "/etc/xen/vtpmmgr.cfg";
const MANAGER_IMG = "/var/lib/xen/vtpm/vtpmmgr.img";
const V1_IMG = "/var/lib/xen/vtpm/v1.img";

let lab: TestLab;
let owner: TestStack;
let other: TestStack;

interface Declared {
  readonly kind: string;
  readonly id: string;
  readonly host: string;
  readonly args: Record<string, unknown>;
}

const manager = (host: string, name = "vtpmmgr", id = name): Declared => ({
  kind: "VtpmManager",
  id,
  host,
  args: { name, readyTimeoutSec: 30 },
});
const guest = (host: string, name: string, args: Record<string, unknown> = {}, id = name): Declared => ({
  kind: "Guest",
  id,
  host,
  args: { name, baseImage: BASE, memoryMiB: 64, kernel: KERNEL, ...args },
});

/** The owner stack: a manager with a vTPM serving a running guest, on dom0-a. */
const OWNER: Declared[] = [
  manager(A),
  { kind: "Vtpm", id: "v1", host: A, args: { name: "v1", manager: "@vtpmmgr" } },
  guest(A, "g1", { vtpm: "@v1" }),
];

beforeAll(async () => {
  lab = await startTestLab({ hosts: 2 });
  const inventory = { value: path.join(lab.stateDir, "inventory.json") };
  owner = await TestStack.create({
    programDir: fixture,
    stackName: "owner",
    config: { inventory, resources: { value: JSON.stringify(OWNER) } },
  });
  other = await TestStack.create({
    programDir: fixture,
    stackName: "other",
    config: { inventory, resources: { value: "[]" } },
  });
});

afterAll(async () => {
  await owner?.dispose();
  await other?.dispose();
  await lab?.stop();
});

// ---- the CLI: every operation as the engine's events, with its preview -----------------------

/**
 * A step, and what `--diff` shows of it. A dynamic provider's diff cannot name the properties
 * that changed (only those that replace), so the engine's `diffs` stay empty for its updates and
 * the display shows the inputs that differ between the old and the new state.
 */
interface Step extends StepSummary {
  /** The properties that make it a replace. */
  readonly keys: string[];
  /** Every property the diff names: `diffs`, replace keys, detailed diff and changed inputs. */
  readonly shown: string[];
}

interface Run extends OperationResult {
  readonly steps: Step[];
}

/** Runs `pulumi <args> --json` on a stack and sorts its engine events into steps. */
async function pulumi(stack: TestStack, args: string[]): Promise<Run> {
  const r = await stack.cliRaw([...args, "--stack", stack.stackName, "--color", "never", "--json"]);
  const events: EngineEvent[] = [];
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      events.push(JSON.parse(line) as EngineEvent);
    } catch {
      // not an event line
    }
  }
  const changed = (a: Record<string, unknown> = {}, b: Record<string, unknown> = {}) =>
    [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => !k.startsWith("__") && JSON.stringify(a[k]) !== JSON.stringify(b[k]))
      .sort();
  const steps = new Map<string, Step>();
  const diagnostics: string[] = [];
  let changes: Record<string, number> = {};
  for (const e of events) {
    const m = e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata ?? e.resourcePreEvent?.metadata;
    if (m && m.type !== "pulumi:pulumi:Stack") {
      const diffs = m.diffs ?? [];
      const keys = (m as typeof m & { keys?: string[] }).keys ?? [];
      const changedInputs = changed(m.old?.inputs, m.new?.inputs);
      const detailed = Object.keys(m.detailedDiff ?? {}).map((k) => k.split(/[.[]/)[0]);
      steps.set(`${m.urn}|${m.op}`, {
        urn: m.urn,
        name: m.urn.split("::").pop() ?? m.urn,
        type: m.type,
        op: m.op,
        diffs,
        keys,
        shown: [...new Set([...diffs, ...keys, ...detailed, ...changedInputs])].sort(),
        changedOutputs: changed(m.old?.outputs, m.new?.outputs),
        changedInputs,
      });
    }
    if (e.diagnosticEvent && ["error", "warning"].includes(e.diagnosticEvent.severity)) {
      diagnostics.push(e.diagnosticEvent.message);
    }
    if (e.summaryEvent) changes = e.summaryEvent.resourceChanges ?? {};
  }
  return { ...r, events, steps: [...steps.values()], changes, diagnostics };
}

const preview = (stack: TestStack, ...flags: string[]) => pulumi(stack, ["preview", "--diff", ...flags]);
/** `pulumi up`, preview included. */
const up = (stack: TestStack, ...flags: string[]) => pulumi(stack, ["up", "--yes", ...flags]);
const refresh = (stack: TestStack) => pulumi(stack, ["refresh", "--yes"]);
const destroy = (stack: TestStack) => pulumi(stack, ["destroy", "--yes"]);

/** What the CLI said: the engine's errors and warnings, then stderr. */
const said = (r: Run) => [...r.diagnostics, r.stderr].join("\n");

/** The operation failed; what it said. */
function failed(r: Run): string {
  if (r.code === 0) {
    throw new Error(
      `pulumi exited 0, expected a failure; steps: ${JSON.stringify(r.steps.map((s) => [s.name, s.op, s.shown]))}`,
    );
  }
  return said(r);
}

/** Steps that change something: neither `same` nor a refresh or read. */
const planned = (r: Run) => r.steps.filter((s) => !["same", "refresh", "read"].includes(s.op));

/** No step is planned whose diff shows nothing. */
function expectNoEmptyUpdates(r: Run): void {
  const empty = r.steps.filter((s) => s.op === "update" && s.shown.length === 0).map((s) => s.name);
  expect(empty).toEqual([]);
}

async function declare(stack: TestStack, resources: Declared[]): Promise<void> {
  await stack.setConfig("resources", JSON.stringify(resources));
}

/**
 * Forgets whatever the `other` stack holds, without touching a host: the scenarios there start
 * from an empty stack even when a previous one (on code that lacks the fix) created something.
 */
async function forget(stack: TestStack): Promise<void> {
  const exported = JSON.parse((await stack.cli(["stack", "export", "--stack", stack.stackName])).stdout) as {
    deployment: { resources?: Array<{ type: string }> };
  };
  const all = exported.deployment.resources ?? [];
  const kept = all.filter((r) => r.type === "pulumi:pulumi:Stack" || r.type.startsWith("pulumi:providers:"));
  if (kept.length === all.length) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-forget-"));
  try {
    const file = path.join(dir, "state.json");
    writeFileSync(
      file,
      JSON.stringify({ ...exported, deployment: { ...exported.deployment, resources: kept } }),
    );
    await stack.cli(["stack", "import", "--file", file, "--stack", stack.stackName]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the hosts ---------------------------------------------------------------------------

const sh = (host: string, script: string, ...args: string[]) => lab.check(host, script, ...args);
const sha256 = async (host: string, file: string) => (await sh(host, 'sha256sum "$1"', file)).split(" ")[0];
const exists = async (host: string, file: string) =>
  (await lab.sh(host, 'test -e "$1"', file)).exitCode === 0;

interface Domain {
  readonly name: string;
  readonly domid: number;
  readonly disks: string[];
}

/** The running domains (`xl list -l`), Domain-0 left out. */
async function domains(host: string): Promise<Domain[]> {
  const list = JSON.parse((await lab.xl(host, "list", "-l")).stdout || "[]") as Array<{
    domid: number;
    config: { c_info: { name: string }; disks?: Array<{ pdev_path?: string }> };
  }>;
  return list
    .filter((d) => d.config.c_info.name !== "Domain-0")
    .map((d) => ({
      name: d.config.c_info.name,
      domid: d.domid,
      disks: (d.config.disks ?? []).map((x) => x.pdev_path ?? ""),
    }));
}

async function domid(host: string, name: string): Promise<number | undefined> {
  return (await domains(host)).find((d) => d.name === name)?.domid;
}

/** The names of the running domains that have `image` among their disks. */
async function domainsOn(host: string, image: string): Promise<string[]> {
  return (await domains(host)).filter((d) => d.disks.includes(image)).map((d) => d.name);
}

/** What pulumi-tvd could have made on a host: domains and the files in its directories. */
async function footprint(host: string): Promise<string> {
  const names = (await domains(host)).map((d) => d.name).sort();
  const files = await sh(host, "ls -A /etc/xen /var/lib/xen/vtpm /var/lib/xen/images 2>/dev/null; true");
  return `${names.join(" ")}\n${files}`;
}

/** Only for a run whose stack could not clean up (code that lacks the fix): an empty dom0. */
async function scrub(host: string): Promise<void> {
  for (const d of await domains(host)) await lab.xl(host, "destroy", d.name);
  await sh(
    host,
    `rm -f /etc/xen/*.cfg; find /var/lib/xen/vtpm /var/lib/xen/images -type f ${SEEDED_IMAGES.map((f) => `! -path ${f}`).join(" ")} -delete`,
  );
}

/** Runs a scenario of the `other` stack and leaves that stack empty afterwards. */
async function inOther(resources: Declared[], scenario: () => Promise<void>): Promise<void> {
  await declare(other, resources);
  try {
    await scenario();
  } finally {
    await forget(other);
  }
}

/**
 * One program declaring a conflict: refused at preview, and by `up` before any host is touched.
 * dom0-b has nothing of the program's, so "nothing appears" means something there.
 */
async function expectRefusedInOneProgram(resources: Declared[], message: (text: string) => void) {
  const before = await footprint(B);
  await inOther(resources, async () => {
    message(failed(await preview(other)));
    message(failed(await up(other)));
    expect(await footprint(B)).toBe(before);
  });
}

// ---- the tests -----------------------------------------------------------------------------

describe("demo preview --refresh shows no changes", () => {
  // The demo's shape, scaled down: a XenHost on each host and a TVD with a member on each, so
  // that a TvdNetwork spans both hosts and has a guest's vif on its bridge.
  it("demo preview --refresh shows no changes: a small TVD, right after a clean up", async () => {
    await other.setConfig("tvd", JSON.stringify({ members: 2 }));
    try {
      expectExit(await up(other));
      const p = await preview(other, "--refresh", "--expect-no-changes");
      expectExit(p);
      // What --diff shows: a step that changes something, or a refresh whose outputs moved.
      const shown = p.steps
        .filter((s) => planned(p).includes(s) || (s.op === "refresh" && s.changedOutputs.length > 0))
        .map((s) => `${s.name} ${s.op}: ${[...s.shown, ...s.changedOutputs].join(", ")}`);
      expect(shown).toEqual([]);
    } finally {
      const d = await destroy(other);
      await other.cli(["config", "rm", "--stack", other.stackName, "tvd"]);
      if (d.code !== 0) {
        await forget(other);
        for (const h of [A, B]) await scrub(h);
      }
    }
  });
});

describe("resources of another stack, and of the same program", () => {
  beforeAll(async () => {
    expectExit(await up(owner));
    expect((await domains(A)).map((d) => d.name).sort()).toEqual(["g1", "v1", "vtpmmgr"]);
  });

  it("manager memory edited by hand while its vTPMs run: repaired in place, and a file put back shows nothing", async () => {
    const original = await sh(A, "cat $1", MANAGER_CFG);
    const memory = original.match(/^memory\s*=.*$/m)?.[0];
    expect(memory).toBeDefined();
    const managerDomid = await domid(A, "vtpmmgr");
    const edited = original.replace(/^memory\s*=.*$/m, "memory = 48");
    try {
      await lab.writeFile(A, MANAGER_CFG, edited);
      const p = await preview(owner, "--refresh");
      expectExit(p);
      expectNoEmptyUpdates(p);
      const update = p.steps.find((s) => s.name === "vtpmmgr" && s.op === "update");
      expect(update?.shown).toContain("memoryMiB");

      const u = await up(owner, "--refresh");
      expectExit(u);
      expectNoEmptyUpdates(u);
      expect(await domid(A, "vtpmmgr")).toBe(managerDomid);
      expect(await domid(A, "v1")).toBeDefined();
      expect((await sh(A, "cat $1", MANAGER_CFG)).match(/^memory\s*=.*$/m)?.[0]).toBe(memory);

      // Edited, then put back by hand: nothing to do.
      const repaired = await sh(A, "cat $1", MANAGER_CFG);
      await lab.writeFile(A, MANAGER_CFG, edited);
      await lab.writeFile(A, MANAGER_CFG, repaired);
      const again = await preview(owner, "--refresh");
      expectExit(again);
      expectNoEmptyUpdates(again);
      expect(planned(again).map((s) => `${s.name} ${s.op}`)).toEqual([]);
      expect(await domid(A, "vtpmmgr")).toBe(managerDomid);
    } finally {
      await lab.writeFile(A, MANAGER_CFG, original);
      await refresh(owner);
    }
  });

  it("guest overlay rebased by hand: planned on the guest, and up refuses naming the foreign backing file", async () => {
    const overlay = "/var/lib/xen/images/g1.qcow2";
    const foreign = "/var/lib/xen/images/foreign.raw";
    const backing = async () =>
      (JSON.parse(await sh(A, "qemu-img info --output=json -U $1", overlay)) as Record<string, unknown>)[
        "backing-filename"
      ];
    await sh(A, 'qemu-img create -q -f raw "$1" "$(stat -c %s "$2")"', foreign, BASE);
    const guestDomid = await domid(A, "g1");
    try {
      await sh(A, 'qemu-img rebase -u -b "$1" -F raw "$2"', foreign, overlay);
      expect(await backing()).toBe(foreign);

      const p = await preview(owner, "--refresh");
      expectExit(p);
      const onGuest = planned(p).filter((s) => s.name === "g1");
      expect(onGuest.map((s) => s.op)).not.toEqual([]);
      expect(onGuest.some((s) => s.shown.includes("baseImage"))).toBe(true);

      const text = failed(await up(owner, "--refresh"));
      expect(text).toContain(foreign);
      // Nothing destroyed: the guest runs on its overlay, which is still on the foreign file.
      expect(await domid(A, "g1")).toBe(guestDomid);
      expect(await exists(A, overlay)).toBe(true);
      expect(await backing()).toBe(foreign);
    } finally {
      await sh(A, 'qemu-img rebase -u -b "$1" -F raw "$2"', BASE, overlay);
      await sh(A, 'rm -f "$1"', foreign);
      await refresh(owner);
    }
  });

  it("TvdNetwork takes over an existing bridge: refused, its MTU kept, and destroy leaves it", async () => {
    await sh(A, "ip link add br0 type bridge && ip link set br0 mtu 1400");
    // ip, not /sys: a lab host's /sys shows the machine's links, not its own network namespace.
    const mtu = async () =>
      (
        await lab.sh(A, "ip -o link show dev br0 2>/dev/null | grep -o 'mtu [0-9]*' | cut -d' ' -f2 || true")
      ).stdout.trim() || "gone";
    try {
      await inOther(
        [
          {
            kind: "TvdNetwork",
            id: "net",
            host: A,
            args: { bridge: "br0", vni: 4242, localIp: lab.host(A).underlayIp },
          },
        ],
        async () => {
          const u = await up(other);
          expect(await mtu()).toBe("1400");
          const text = failed(u);
          expect(text).toMatch(/already exists on/);
          expect(text).toMatch(/adopt: true/);
          expectExit(await destroy(other));
          expect(await mtu()).toBe("1400");
        },
      );
    } finally {
      await lab.sh(A, "ip link del br0; ip link del vx4242");
    }
  });

  describe("Guest.extraDisks can attach a manager's image read-write", () => {
    it("Guest.extraDisks can attach a manager's image read-write: another stack's guest is refused at up", async () => {
      const intruder = guest(A, "g-intruder", { extraDisks: [{ target: MANAGER_IMG, vdev: "xvdb" }] });
      try {
        await inOther([intruder], async () => {
          const u = await up(other);
          expect(await domainsOn(A, MANAGER_IMG)).toEqual(["vtpmmgr"]);
          expect(await domid(A, "g-intruder")).toBeUndefined();
          expect(await exists(A, "/etc/xen/g-intruder.cfg")).toBe(false);
          expect(failed(u)).toContain(MANAGER_IMG);
        });
      } finally {
        // On code that lacks the fix, the intruder ran: take it away before the next test.
        if (await domid(A, "g-intruder")) await lab.xl(A, "destroy", "g-intruder");
        await lab.sh(A, "rm -f /etc/xen/g-intruder.cfg /var/lib/xen/images/g-intruder.qcow2");
      }
    });

    it("Guest.extraDisks can attach a manager's image read-write: in one program, refused at preview", async () => {
      await expectRefusedInOneProgram(
        [manager(B), guest(B, "g2", { extraDisks: [{ target: MANAGER_IMG, vdev: "xvdb" }] })],
        (text) => {
          if (!/also declared by/.test(text)) {
            expect(text).toContain(MANAGER_IMG);
            expect(text).toMatch(/vTPM/);
          }
        },
      );
    });
  });

  describe("SeedImage whose path is an existing vTPM's image", () => {
    it("SeedImage whose path is an existing vTPM's image: another stack's seed is refused, the keys untouched", async () => {
      const keys = await sha256(A, V1_IMG);
      const seed = {
        kind: "SeedImage",
        id: "seed",
        host: A,
        args: { name: "d-seed", path: V1_IMG, seed: { hostname: "dseed" } },
      };
      await inOther([seed], async () => {
        const u = await up(other);
        expect(await sha256(A, V1_IMG)).toBe(keys);
        const text = failed(u);
        expect(text).toContain(V1_IMG);
        expect(text).toMatch(/already exists on/);
        expect(text).toMatch(/adopt: true|owned by/);
      });
    });

    it("SeedImage whose path is an existing vTPM's image: in one program, refused at preview", async () => {
      const image = "/var/lib/xen/vtpm/d2-keys.img";
      await expectRefusedInOneProgram(
        [
          manager(B),
          {
            kind: "Vtpm",
            id: "d2-vtpm",
            host: B,
            args: { name: "d2-vtpm", manager: "@vtpmmgr", imagePath: image },
          },
          {
            kind: "SeedImage",
            id: "d2-seed",
            host: B,
            args: { name: "d2", path: image, seed: { hostname: "d2" } },
          },
        ],
        (text) => expect(text).toMatch(/also declared by/),
      );
    });
  });

  describe("guest named as the running manager", () => {
    it("guest named as the running manager: in one program, refused at preview", async () => {
      await expectRefusedInOneProgram([manager(B), guest(B, "vtpmmgr", {}, "intruder")], (text) =>
        expect(text).toMatch(/also declared by/),
      );
    });

    it("guest named as the running manager: another stack's guest is refused, the manager and its vTPM untouched", async () => {
      const before = { manager: await domid(A, "vtpmmgr"), vtpm: await domid(A, "v1") };
      expect(before.manager).toBeDefined();
      const cfg = await sha256(A, MANAGER_CFG);
      await inOther([guest(A, "vtpmmgr")], async () => {
        const u = await up(other);
        const after = {
          manager: await domid(A, "vtpmmgr"),
          vtpm: await domid(A, "v1"),
          cfg: (await exists(A, MANAGER_CFG)) ? await sha256(A, MANAGER_CFG) : "(deleted)",
        };
        expect(after).toEqual({ ...before, cfg });
        const text = failed(u);
        expect(text).toMatch(/vtpmmgr/);
        expect(text).toMatch(/already exists on/);
        // The fix: adopt it (what no stack owns), or the name of the stack and resource that own it.
        expect(text).toMatch(/adopt: true|owned by/);
      });
    });
  });
});

describe("Vtpm renamed while keeping its imagePath", () => {
  const vtpm = (name: string, image: string): Declared => ({
    kind: "Vtpm",
    id: "ev",
    host: B,
    args: { name, manager: "@vtpmmgr", imagePath: image },
  });

  /** The `other` stack is destroyed; if it cannot be (code that lacks the fix), dom0-b is emptied by hand. */
  async function tearDown(): Promise<Run> {
    const d = await destroy(other);
    if (d.code !== 0) {
      await forget(other);
      await scrub(B);
    }
    return d;
  }

  it("Vtpm renamed while keeping its imagePath: one domain on the key image, and destroy completes", async () => {
    const image = "/var/lib/xen/vtpm/e-keys.img";
    let destroyed: Run | undefined;
    try {
      await declare(other, [manager(B), vtpm("e-vtpm-1", image)]);
      expectExit(await up(other));
      expect(await domainsOn(B, image)).toEqual(["e-vtpm-1"]);

      await declare(other, [manager(B), vtpm("e-vtpm-2", image)]);
      expectExit(await up(other));
      expect(await domainsOn(B, image)).toEqual(["e-vtpm-2"]);
      expect(await exists(B, "/etc/xen/e-vtpm-1.cfg")).toBe(false);

      destroyed = await tearDown();
      expectExit(destroyed);
      expect(await domains(B)).toEqual([]);
    } finally {
      if (!destroyed) await tearDown();
    }
  });

  it("Vtpm renamed while keeping its imagePath: refused while a running guest uses it, naming the guest", async () => {
    const image = "/var/lib/xen/vtpm/e-keys-2.img";
    const withGuest = (name: string) => [manager(B), vtpm(name, image), guest(B, "e-guest", { vtpm: "@ev" })];
    try {
      await declare(other, withGuest("e-vtpm-3"));
      expectExit(await up(other));
      const guestDomid = await domid(B, "e-guest");
      expect(guestDomid).toBeDefined();

      await declare(other, withGuest("e-vtpm-4"));
      const p = await preview(other);
      const u = p.code === 0 ? await up(other) : p;
      expect(await domainsOn(B, image)).toEqual(["e-vtpm-3"]);
      expect(await domid(B, "e-guest")).toBe(guestDomid);
      expect(failed(u)).toMatch(/e-guest/);
    } finally {
      await tearDown();
    }
  });
});
