/**
 * Issue 12, items 2 and 3, through the real Pulumi CLI on one lab host (the program of
 * test/e2e/fixtures/ownership: resources declared from config).
 *
 * - reboot: the dom0 loses power during an `up` (sshd, every session and every domain killed at
 *   once, the hypervisor's runtime state gone, files on disk kept: lab/faults.ts rebootHost,
 *   exactly as a chosen remote step arrives, held by the lab's step gate), comes back after a pause, and `pulumi up --refresh` brings every domain back in order (manager,
 *   vTPMs, guests) on the same vTPM images and UUIDs, with nothing left that no stack owns and
 *   nothing half-written.
 * - concurrency: two stacks on one dom0, each `up` at once; a manager destroyed while the other
 *   stack's vTPM runs on it; one stack run twice at once from two processes.
 *
 * Figures go to bench/results/reliability.json (sections "reboot" and "concurrency").
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  clearStepRules,
  installStepHooks,
  openStepGate,
  rebootHost,
  stepHits,
  stepRule,
} from "../../lab/faults";
import { SEEDED_IMAGES, type LabHostRecord } from "../../lab/host";
import { startTestLab, type TestLab } from "../support/lab";
import { recordReliability, reliabilityScope } from "../support/reliability";
import { consumerNodeModules } from "./consumer";
import { expectExit, type OperationResult, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "ownership");
const PROJECT = "ownership-e2e";
const A = "dom0-a";
const BASE = "/var/lib/xen/images/debian-base.raw";
const KERNEL = "/usr/lib/xen/boot/vmlinuz";
/** What pulumi-tvd writes on a dom0, besides its ownership records. */
const DIRS = ["/etc/xen", "/var/lib/xen/vtpm", "/var/lib/xen/images"];

let lab: TestLab;
let host: LabHostRecord;
let alpha: TestStack;
let beta: TestStack;
let pinned: string | undefined;

interface Declared {
  readonly kind: string;
  readonly id: string;
  readonly host: string;
  readonly args: Record<string, unknown>;
}

const manager = (name = "vtpmmgr"): Declared => ({
  kind: "VtpmManager",
  id: name,
  host: A,
  args: { name, readyTimeoutSec: 30 },
});
const vtpm = (name: string, mgr = "@vtpmmgr", args: Record<string, unknown> = {}): Declared => ({
  kind: "Vtpm",
  id: name,
  host: A,
  args: { name, manager: mgr, ...args },
});
const guest = (name: string, args: Record<string, unknown> = {}): Declared => ({
  kind: "Guest",
  id: name,
  host: A,
  args: { name, baseImage: BASE, memoryMiB: 64, kernel: KERNEL, ...args },
});

async function declare(stack: TestStack, resources: Declared[]): Promise<void> {
  await stack.setConfig("resources", JSON.stringify(resources));
}

beforeAll(async () => {
  // TPM 2.0 vTPMs, so that a vTPM's keys can be proven intact with tpm2-tools.
  lab = await startTestLab({ hosts: 1, tpm2: true });
  host = lab.host(A);
  installStepHooks(host);
  const inventory = { value: path.join(lab.stateDir, "inventory.json") };
  [alpha, beta] = await Promise.all(
    ["alpha", "beta"].map((stackName) =>
      TestStack.create({ programDir: fixture, stackName, config: { inventory, resources: { value: "[]" } } }),
    ),
  );
  // The programs' own copy of the installed package: another test run's global setup rebuilds the
  // shared consumer project, and these programs run for minutes.
  pinned = mkdtempSync(path.join(os.tmpdir(), "tvd-e2e-pinned-"));
  cpSync(consumerNodeModules(), path.join(pinned, "node_modules"), {
    recursive: true,
    verbatimSymlinks: true,
  });
  for (const stack of [alpha, beta]) {
    rmSync(path.join(stack.programDir, "node_modules"));
    symlinkSync(path.join(pinned, "node_modules"), path.join(stack.programDir, "node_modules"), "dir");
  }
});

afterAll(async () => {
  await alpha?.dispose();
  await beta?.dispose();
  await lab?.stop();
  if (pinned) rmSync(pinned, { recursive: true, force: true });
});

// ---- the host --------------------------------------------------------------------------------

const sh = (script: string, ...args: string[]) => lab.check(A, script, ...args);

interface Domain {
  readonly name: string;
  readonly domid: number;
}

async function domains(): Promise<Domain[]> {
  const list = JSON.parse((await lab.xl(A, "list", "-l")).stdout || "[]") as Array<{
    domid: number;
    config: { c_info: { name: string } };
  }>;
  return list
    .filter((d) => d.config.c_info.name !== "Domain-0")
    .map((d) => ({ name: d.config.c_info.name, domid: d.domid }));
}

/** A file as it is: inode, size and content hash (empty when missing). */
async function fileId(file: string): Promise<string> {
  return (
    await lab.sh(A, 'test -e "$1" && echo "$(stat -c %i:%s "$1"):$(sha256sum < "$1" | cut -c1-16)"', file)
  ).stdout.trim();
}

/** The UUID a vTPM's config names and the one its running domain presents to the manager. */
async function uuidsOf(name: string): Promise<{ config?: string; running?: string }> {
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
  const config = (await lab.sh(A, 'cat "/etc/xen/$1.cfg"', name)).stdout.match(uuid)?.[0];
  const running = (await lab.xl(A, "vtpm-list", name)).stdout.match(uuid)?.[0];
  return { config, running };
}

/**
 * What pulumi-tvd could have made on the host that no ownership record names, or names for
 * someone else than `owners` (domains, and files in its directories); plus records of domains
 * and files that are gone, and of vTPM UUIDs no config names. The lab's templates are the host's own.
 */
async function orphans(owners: readonly string[]): Promise<string[]> {
  const script = `dir=/var/lib/xen/pulumi-tvd/owners
owner() { r="$dir/$(printf '%s' "$1" | sha256sum | cut -c1-40)"; [ -f "$r" ] && sed -n 2p -- "$r"; }
xl list | awk 'NR > 2 { print $1 }' | while read -r d; do printf 'domain:%s\\t%s\\n' "$d" "$(owner "domain:$d")"; done
find "$@" -type f ${SEEDED_IMAGES.map((f) => `! -path "${f}"`).join(" ")} | while read -r f; do printf 'file:%s\\t%s\\n' "$f" "$(owner "file:$f")"; done
for r in "$dir"/*; do
  [ -f "$r" ] || continue
  key=$(sed -n 1p -- "$r")
  case $key in
    domain:*) xl domid "\${key#domain:}" >/dev/null 2>&1 || printf 'stale\\t%s\\n' "$key" ;;
    file:/var/lib/xen/pulumi-tvd/*) ;;
    file:*) [ -e "\${key#file:}" ] || printf 'stale\\t%s\\n' "$key" ;;
    uuid:*) grep -q -i -r -F -e "\${key#uuid:}" /etc/xen || printf 'stale\\t%s\\n' "$key" ;;
  esac
done`;
  const out = await sh(script, ...DIRS);
  return out
    .split("\n")
    .filter(Boolean)
    .filter((l) => {
      if (l.startsWith("stale\t")) return true;
      const owner = l.slice(l.indexOf("\t") + 1);
      return !owners.some((o) => owner.startsWith(`${PROJECT}/${o} `));
    });
}

/** Files a killed or cut-short writer left: temporary files of the atomic writes. */
async function halfWritten(): Promise<string[]> {
  return (await sh('find "$@" /var/lib/xen/pulumi-tvd -name "*.partial.*"', ...DIRS))
    .split("\n")
    .filter(Boolean);
}

/**
 * Whether a command reached the lab's step gate (stepRule "gate": it waits there, not yet run)
 * before `operation` ended.
 */
async function atGate(operation: Promise<unknown>): Promise<boolean> {
  let ended = false;
  void operation.finally(() => (ended = true));
  while (!stepHits(host).some((x) => x.action === "gate")) {
    if (ended) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

// ---- TPM 2.0 content of a vTPM: an NV index written before, read after ----------------------

const NV_INDEX = "0x1500020";
const NV_DATA = "keys-before-the-reboot";

async function tpm2(domain: string, ...argv: string[]) {
  return lab.sh(
    A,
    'TPM2TOOLS_TCTI="swtpm:path=/var/lib/tvd-lab/vtpm/$1/tpm.sock" && export TPM2TOOLS_TCTI && shift && exec "$@"',
    domain,
    ...argv,
  );
}

async function writeNv(domain: string): Promise<void> {
  const define = await tpm2(
    domain,
    "tpm2_nvdefine",
    NV_INDEX,
    "-C",
    "o",
    "-s",
    String(NV_DATA.length),
    "-a",
    "ownerread|ownerwrite",
  );
  expect(define.stderr).toBe("");
  const write = await lab.sh(
    A,
    'printf %s "$2" > /tmp/nv.in && TPM2TOOLS_TCTI="swtpm:path=/var/lib/tvd-lab/vtpm/$1/tpm.sock" tpm2_nvwrite "$3" -C o -i /tmp/nv.in',
    domain,
    NV_DATA,
    NV_INDEX,
  );
  expect(write.exitCode).toBe(0);
}

async function readNv(domain: string): Promise<string> {
  const r = await tpm2(domain, "tpm2_nvread", NV_INDEX, "-C", "o", "-s", String(NV_DATA.length));
  return r.exitCode === 0 ? r.stdout : `(unreadable: ${r.stderr.trim()})`;
}

// ---- the CLI ----------------------------------------------------------------------------------

/** What the CLI said: the engine's errors and warnings, then stderr. */
const said = (r: OperationResult) => [...r.diagnostics, r.stderr].join("\n");

// ---- item 2: a dom0 reboot during an up ------------------------------------------------------

const reboot = {
  rebootsInjected: 0,
  domainsRestoredInOrder: 0,
  imagesLost: 0,
  uuidsChanged: 0,
  orphans: 0,
  halfWritten: 0,
  details: {} as Record<string, unknown>,
};

/**
 * Where the power goes, as a step-gate pattern: the remote steps of an up that adds a vTPM (r2) and
 * its guest (rg2) to a running manager, vTPM and guest. CI runs the last (every earlier domain
 * runs, rg2's disk and config are written); the whole sweep every one.
 */
const REBOOT_AT: ReadonlyArray<readonly [string, string]> = [
  ["rg2's xl create", `'xl' 'create' '/etc/xen/rg2.cfg'$`],
  ...(reliabilityScope() === "full"
    ? ([
        ["r2's image", `'/var/lib/xen/vtpm/r2.img' '8'$`],
        ["r2's config", `'/etc/xen/r2.cfg' '0600'`],
        ["r2's xl create", `'xl' 'create' '/etc/xen/r2.cfg'$`],
        ["r2's wait for its console", `'/var/log/xen/console/guest-r2.log'`],
        ["rg2's overlay", `'/var/lib/xen/images/rg2.qcow2'$`],
        ["rg2's config", `'/etc/xen/rg2.cfg' '0600'`],
      ] as const)
    : []),
];

describe("a dom0 reboot in the middle of an up", () => {
  const first = [manager(), vtpm("r1"), guest("rg1", { vtpm: "@r1" })];
  const all = [...first, vtpm("r2"), guest("rg2", { vtpm: "@r2" })];
  const images = ["vtpmmgr", "r1", "r2"].map((n) => `/var/lib/xen/vtpm/${n}.img`);

  beforeAll(async () => {
    await declare(alpha, first);
    expectExit(await alpha.up());
    await writeNv("r1");
  });

  /** The UUID of each vTPM the stack holds. */
  async function stackUuids(): Promise<Record<string, string>> {
    const s = await alpha.exportState();
    return Object.fromEntries(
      (s.deployment.resources ?? [])
        .filter((r) => String(r.type).endsWith(":Vtpm"))
        .map((r) => [String(r.urn).split("::").pop(), String((r.outputs as { uuid?: string })?.uuid)]),
    );
  }

  it.each(REBOOT_AT)(
    "a reboot at %s: up --refresh brings every domain back in order, on the same images and UUIDs, nothing orphaned or half-written",
    async (at, pattern) => {
      if ((await domains()).some((d) => d.name === "r2")) {
        await declare(alpha, first);
        expectExit(await alpha.up());
      }
      // The next up adds a vTPM and its guest; the power goes as the step arrives.
      await declare(alpha, all);
      stepRule(host, "gate", pattern);
      const interrupting = alpha.up();
      // A real dom0 takes a while to come back: longer than the provider's reconnect attempts.
      const gated = await atGate(interrupting);
      if (gated) await rebootHost(host, 3000);
      const interrupted = await interrupting;
      clearStepRules(host);
      expect(gated).toBe(true);
      reboot.rebootsInjected++;
      expect(await domains()).toEqual([]);

      // What the power left: the images on disk, the UUIDs of the vTPMs the stack holds.
      const before = {
        images: Object.fromEntries(await Promise.all(images.map(async (f) => [f, await fileId(f)]))),
        uuids: await stackUuids(),
      };
      const repaired = await alpha
        .cli(["up", "--yes", "--refresh", "--stack", alpha.stackName, "--color", "never"])
        .catch((e: Error) => e);

      const after = await domains();
      const domid = (n: string) => after.find((d) => d.name === n)?.domid;
      // In order: the manager before every vTPM, each vTPM before its guest (domids rise).
      const inOrder = [
        ["vtpmmgr", undefined],
        ["r1", "vtpmmgr"],
        ["r2", "vtpmmgr"],
        ["rg1", "r1"],
        ["rg2", "r2"],
      ].filter(([d, dep]) => domid(d!) !== undefined && (!dep || domid(d!)! > domid(dep)!));
      reboot.domainsRestoredInOrder += inOrder.length;
      // An image is kept when it is the same file (inode) of the same size. Its bytes: the
      // manager's are untouched; a vTPM's own swtpm rewrites its state when it starts (TPM2
      // Startup counts resets), so its keys are proven by the NV index written before.
      const lost: string[] = [];
      for (const f of images.filter((x) => before.images[x])) {
        const now = await fileId(f);
        const same = f.endsWith("vtpmmgr.img")
          ? now === before.images[f]
          : now.split(":").slice(0, 2).join(":") === before.images[f].split(":").slice(0, 2).join(":");
        if (!same) lost.push(`${f}: ${before.images[f]} -> ${now || "missing"}`);
      }
      if ((await readNv("r1")) !== NV_DATA) lost.push("r1's NV index");
      const changed: string[] = [];
      for (const [v, uuid] of Object.entries(before.uuids)) {
        const now = await uuidsOf(v);
        if (now.config !== uuid || now.running?.toLowerCase() !== uuid.toLowerCase())
          changed.push(`${v}: ${uuid} -> config ${now.config}, running ${now.running}`);
      }
      const left = await orphans(["alpha"]);
      const partial = await halfWritten();
      reboot.imagesLost += lost.length;
      reboot.uuidsChanged += changed.length;
      reboot.orphans += left.length;
      reboot.halfWritten += partial.length;
      reboot.details[at] = {
        interruptedUp: { exit: interrupted.code, said: said(interrupted).slice(0, 600) },
        repairedUp: repaired instanceof Error ? repaired.message.slice(-2000) : "ok",
        ...(lost.length ? { lost } : {}),
        ...(changed.length ? { changed } : {}),
        ...(left.length ? { orphans: left } : {}),
        ...(partial.length ? { halfWritten: partial } : {}),
      };

      expect(repaired).not.toBeInstanceOf(Error);
      expect(after.map((d) => d.name).sort()).toEqual(["r1", "r2", "rg1", "rg2", "vtpmmgr"]);
      expect(inOrder.length).toBe(5);
      expect({ lost, changed, left, partial }).toEqual({ lost: [], changed: [], left: [], partial: [] });
      // And nothing is left to change.
      expectExit(await alpha.preview({ expectNoChanges: true, refresh: true }));
    },
  );

  afterAll(() => {
    const { details, ...figures } = reboot;
    recordReliability("reboot", reliabilityScope(), figures, details);
  });
});

// ---- item 3: two stacks on one dom0, and one stack twice -------------------------------------

interface Artifact {
  readonly owner: string;
  /** Its stack: "alpha" or "beta". */
  readonly stack: string;
  /** A file's inode, size and content hash, a domain's domid ("stopped" when it does not run). */
  readonly id: string;
}

/** Every artifact an ownership record names (UUIDs and the archive aside), with what it is now. */
async function artifacts(): Promise<Map<string, Artifact>> {
  const script = `dir=/var/lib/xen/pulumi-tvd/owners
xl list | awk 'NR > 2 { printf "D\\t%s\\t%s\\n", $1, $2 }'
for r in "$dir"/*; do
  [ -f "$r" ] || continue
  key=$(sed -n 1p -- "$r"); owner=$(sed -n 2p -- "$r"); id=-
  case $key in
    file:/var/lib/xen/pulumi-tvd/*|uuid:*) continue ;;
    file:*) f=\${key#file:}; id=missing; [ -e "$f" ] && id="$(stat -c %i:%s -- "$f"):$(sha256sum < "$f" | cut -c1-16)" ;;
  esac
  printf 'R\\t%s\\t%s\\t%s\\n' "$key" "$owner" "$id"
done`;
  const lines = (await sh(script)).split("\n").filter(Boolean);
  const domids = new Map(
    lines.filter((l) => l.startsWith("D\t")).map((l) => [l.split("\t")[1], l.split("\t")[2]]),
  );
  const out = new Map<string, Artifact>();
  for (const l of lines.filter((x) => x.startsWith("R\t"))) {
    const [, key, owner, id] = l.split("\t");
    const stack = owner.slice(PROJECT.length + 1).split(" ")[0];
    out.set(key, {
      owner,
      stack,
      id: key.startsWith("domain:") ? (domids.get(key.slice(7)) ?? "stopped") : id,
    });
  }
  return out;
}

/** Artifacts of `before` that are not as they were (another owner, other bytes, another domid). */
function changedSince(before: Map<string, Artifact>, after: Map<string, Artifact>): string[] {
  return [...before]
    .filter(([k, a]) => JSON.stringify(after.get(k)) !== JSON.stringify(a))
    .map(
      ([k, a]) =>
        `${k} (${a.stack}): ${a.id} -> ${after.get(k)?.owner ?? "no record"} ${after.get(k)?.id ?? ""}`,
    );
}

const concurrency = {
  concurrentCases: 0,
  casesWithCleanOutcome: 0,
  artifactsTouchedByOther: 0,
  managersDestroyedUnderOthersVtpm: 0,
  losersNamingOwner: 0,
  losers: 0,
  details: {} as Record<string, unknown>,
};

/** Runs one case: its outcome is clean when `check` finds nothing wrong (each problem a string). */
async function concurrentCase(name: string, check: () => Promise<string[]>): Promise<void> {
  concurrency.concurrentCases++;
  const problems = await check();
  const left = await orphans(["alpha", "beta"]);
  const partial = await halfWritten();
  const all = [...problems, ...left.map((o) => `orphan: ${o}`), ...partial.map((p) => `half-written: ${p}`)];
  concurrency.details[name] = all.length ? all : "clean";
  if (all.length === 0) concurrency.casesWithCleanOutcome++;
  expect(all).toEqual([]);
}

/**
 * Times a manager was destroyed while a vTPM was connected to it: the lab's manager says so on
 * its console, as a real one's storage would be left inconsistent.
 */
async function managersDestroyedUnderVtpm(): Promise<number> {
  const r = await lab.sh(
    A,
    "cat /var/log/xen/console/guest-*.log 2>/dev/null | grep -c 'destroyed while [0-9]* vTPM' || true",
  );
  return Number(r.stdout.trim());
}

/** The resource names a stack's state holds. */
async function held(stack: TestStack): Promise<string[]> {
  const s = await stack.exportState();
  return (s.deployment.resources ?? [])
    .map((r) => String(r.urn).split("::").pop()!)
    .filter((n) => !n.includes("ownership-e2e-") && n !== "default")
    .sort();
}

describe("two stacks on one dom0", () => {
  // alpha holds the manager (and, from the reboot above, r1, r2 and their guests); beta's vTPMs
  // run on alpha's manager, named by its domain name.
  const alphaBase = [
    manager(),
    vtpm("r1"),
    guest("rg1", { vtpm: "@r1" }),
    vtpm("r2"),
    guest("rg2", { vtpm: "@r2" }),
  ];
  const betaBase = [vtpm("b-v1", "vtpmmgr"), guest("b-g1", { vtpm: "@b-v1" })];
  /** What each stack won in a contest, and keeps declaring. */
  const won = { alpha: [] as Declared[], beta: [] as Declared[] };
  const alphaAll = () => [...alphaBase, guest("a-g3"), ...won.alpha];
  const betaAll = () => [...betaBase, ...won.beta];

  it("disjoint declarations: both ups at once succeed, and neither touches the other's artifacts", async () => {
    const before = await artifacts();
    await declare(alpha, alphaAll());
    await declare(beta, betaAll());
    const [a, b] = await Promise.all([alpha.up(), beta.up()]);
    await concurrentCase("disjoint", async () => {
      const problems: string[] = [];
      if (a.code !== 0) problems.push(`alpha's up failed: ${said(a)}`);
      if (b.code !== 0) problems.push(`beta's up failed: ${said(b)}`);
      const after = await artifacts();
      const touched = changedSince(before, after);
      // Each new artifact is its own stack's.
      for (const [key, want] of [
        ["domain:a-g3", "alpha"],
        ["domain:b-v1", "beta"],
        ["domain:b-g1", "beta"],
        ["file:/var/lib/xen/vtpm/b-v1.img", "beta"],
      ]) {
        if (after.get(key)?.stack !== want)
          touched.push(`${key}: ${after.get(key)?.owner ?? "no record"}, not ${want}'s`);
        if (after.get(key)?.id === "stopped") problems.push(`${key} does not run`);
      }
      concurrency.artifactsTouchedByOther += touched.length;
      return [...problems, ...touched];
    });
  });

  it("both declare a guest and a vTPM image of the same name: one wins each, the loser's error names the owner", async () => {
    const contested = "/var/lib/xen/vtpm/shared-keys.img";
    const memory = { alpha: 64, beta: 96 };
    const contenders = {
      alpha: [guest("dup", { memoryMiB: memory.alpha }), vtpm("a-k", "@vtpmmgr", { imagePath: contested })],
      beta: [guest("dup", { memoryMiB: memory.beta }), vtpm("b-k", "vtpmmgr", { imagePath: contested })],
    };
    await declare(alpha, [...alphaAll(), ...contenders.alpha]);
    await declare(beta, [...betaAll(), ...contenders.beta]);
    const before = await artifacts();
    const runs = {
      alpha: undefined as OperationResult | undefined,
      beta: undefined as OperationResult | undefined,
    };
    [runs.alpha, runs.beta] = await Promise.all([alpha.up(), beta.up()]);
    const after = await artifacts();
    const states = { alpha: await held(alpha), beta: await held(beta) };

    /** The one winner of a contested resource, checked on the host, in both states and in the loser's error. */
    const contest = async (
      kind: string,
      names: Record<"alpha" | "beta", string>,
      key: string,
      intact: (winner: "alpha" | "beta") => Promise<string[]>,
    ) => {
      await concurrentCase(`${kind} of the same name`, async () => {
        const winner = after.get(key)?.stack as "alpha" | "beta" | undefined;
        if (winner !== "alpha" && winner !== "beta")
          return [`${key} has no winner: ${after.get(key)?.owner ?? "no record"}`];
        const loser = winner === "alpha" ? "beta" : "alpha";
        const problems: string[] = [];
        if (!states[winner].includes(names[winner]))
          problems.push(`${winner} won ${key} but its state lacks ${names[winner]}`);
        if (states[loser].includes(names[loser]))
          problems.push(`${loser} lost ${key} but its state holds ${names[loser]}`);
        concurrency.losers++;
        const owner = `owned by ${PROJECT}/${winner} ${kind} ${names[winner]}`;
        if (said(runs[loser]!).includes(owner)) concurrency.losersNamingOwner++;
        else problems.push(`${loser}'s error does not say "${owner}": ${said(runs[loser]!).slice(0, 600)}`);
        const broken = await intact(winner);
        concurrency.artifactsTouchedByOther += broken.length;
        return [...problems, ...broken];
      });
    };
    try {
      await contest("Guest", { alpha: "dup", beta: "dup" }, "domain:dup", async (winner) => {
        const cfg = await sh("cat /etc/xen/dup.cfg");
        const out: string[] = [];
        if (!new RegExp(`^memory = ${memory[winner]}$`, "m").test(cfg))
          out.push(`dup.cfg is not ${winner}'s: ${cfg}`);
        if (after.get("domain:dup")?.id === "stopped") out.push("dup does not run");
        for (const f of ["/etc/xen/dup.cfg", "/var/lib/xen/images/dup.qcow2"])
          if (after.get(`file:${f}`)?.stack !== winner) out.push(`${f} is not ${winner}'s`);
        return out;
      });
      await contest("Vtpm", { alpha: "a-k", beta: "b-k" }, `file:${contested}`, async (winner) => {
        const mine = winner === "alpha" ? "a-k" : "b-k";
        const other = winner === "alpha" ? "b-k" : "a-k";
        const out: string[] = [];
        if (!(after.get(`domain:${mine}`)?.id ?? "stopped").match(/^\d+$/)) out.push(`${mine} does not run`);
        if (after.has(`domain:${other}`) || (await domains()).some((d) => d.name === other))
          out.push(`the loser's vTPM ${other} is on the host`);
        return out;
      });
      // Nothing else of either stack moved.
      const moved = changedSince(before, after);
      concurrency.artifactsTouchedByOther += moved.length;
      expect(moved).toEqual([]);
    } finally {
      // Each winner keeps what it won; each loser stops declaring what it lost (it made nothing).
      for (const [i, key] of ["domain:dup", `file:${contested}`].entries()) {
        const winner = after.get(key)?.stack;
        if (winner === "alpha" || winner === "beta") won[winner].push(contenders[winner][i]);
      }
      await declare(alpha, alphaAll());
      await declare(beta, betaAll());
    }
  });

  it("one stack run twice at once: the second gets a clear error, and host and state agree afterwards", async () => {
    await declare(beta, [...betaAll(), guest("b-g2")]);
    const before = await artifacts();
    const runs = await Promise.all([beta.up(), beta.up()]);
    await concurrentCase("one stack twice", async () => {
      const problems: string[] = [];
      if (!runs.some((r) => r.code === 0))
        problems.push(`neither run succeeded: ${runs.map(said).join("\n---\n")}`);
      for (const r of runs.filter((x) => x.code !== 0)) {
        concurrency.losers++;
        if (/locked|owned by/.test(said(r))) concurrency.losersNamingOwner++;
        else problems.push(`the second run's error is not clear: ${said(r).slice(0, 600)}`);
      }
      concurrency.details.twiceSaid = runs.map((r) => ({ code: r.code, said: said(r).slice(0, 400) }));
      const after = await artifacts();
      const touched = changedSince(before, after);
      concurrency.artifactsTouchedByOther += touched.length;
      problems.push(...touched);
      if ((await domains()).filter((d) => d.name === "b-g2").length !== 1)
        problems.push("b-g2 does not run once");
      const p = await beta.preview({ expectNoChanges: true, refresh: true });
      if (p.code !== 0)
        problems.push(`a following preview --refresh shows changes: ${said(p).slice(0, 600)}`);
      return problems;
    });
  });

  it("a manager is never destroyed while the other stack's vTPM runs on it", async () => {
    const managerDomid = (await domains()).find((d) => d.name === "vtpmmgr")?.domid;
    expect(managerDomid).toBeDefined();
    // beta's b-v1 runs on alpha's manager: alpha's destroy takes its own guests and vTPMs, and
    // stops at the manager, naming the vTPM.
    const d = await alpha.destroy();
    await concurrentCase("destroy under another stack's vTPM", async () => {
      const problems: string[] = [];
      if (d.code === 0) problems.push("alpha's destroy succeeded");
      else if (!said(d).includes("b-v1"))
        problems.push(`alpha's destroy does not name b-v1: ${said(d).slice(0, 600)}`);
      const now = (await domains()).find((x) => x.name === "vtpmmgr")?.domid;
      if (now !== managerDomid) problems.push(`the manager's domid went from ${managerDomid} to ${now}`);
      return problems;
    });

    // The same, with beta's vTPM starting while alpha's destroy is between its check that no vTPM
    // uses the manager and the manager's destroy (held there by the lab).
    await declare(beta, []);
    expectExit(await beta.up());
    stepRule(host, "gate", `destroy.*'vtpmmgr'$`);
    const destroying = alpha.destroy();
    const hold = await atGate(destroying);
    let started: OperationResult | undefined;
    try {
      if (hold) {
        await declare(beta, betaBase.slice(0, 1));
        started = await beta.up();
      }
    } finally {
      openStepGate(host);
    }
    const d2 = await destroying;
    clearStepRules(host);
    await concurrentCase("destroy racing another stack's new vTPM", async () => {
      const problems: string[] = [];
      if (!hold)
        problems.push(`alpha's destroy never reached the manager's destroy: ${said(d2).slice(0, 600)}`);
      const running = (await domains()).map((x) => x.name);
      const under = await managersDestroyedUnderVtpm();
      concurrency.managersDestroyedUnderOthersVtpm += under;
      if (under)
        problems.push(
          `the manager was destroyed while ${running.includes("b-v1") ? "b-v1" : "a vTPM"} ran on it`,
        );
      // Either outcome is clean: the manager stays (the destroy names b-v1), or it went first and
      // beta's vTPM could not start.
      if (running.includes("vtpmmgr")) {
        if (d2.code === 0 || !said(d2).includes("b-v1"))
          problems.push(`alpha's destroy does not name b-v1: ${said(d2).slice(0, 600)}`);
      } else if (started?.code === 0 || running.includes("b-v1"))
        problems.push("b-v1 runs without its manager");
      concurrency.details.race = {
        destroy: said(d2).slice(0, 600),
        vtpm: started ? said(started).slice(0, 600) : "not run",
      };
      return problems;
    });
  });

  afterAll(() => {
    const { details, losers, ...figures } = concurrency;
    recordReliability("concurrency", reliabilityScope(), figures, { ...details, losers });
  });
});
