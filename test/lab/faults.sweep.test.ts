/**
 * Issue 12.1, the fault sweep: for each resource kind and each of create, update (restart and in
 * place) and delete, every remote step the operation takes (as the transport records it, one
 * clean run each) is faulted in turn, through the lab's knobs: (a) the command fails, (b) the SSH
 * connection drops under the command, before it runs on the dom0 (which then runs it all the
 * same) or after it did its work there, (c) the command times out while dom0 goes on working (it
 * does its work, the answer never comes), (d) the disk fills before the step. After each fault, faults cleared, the operation is run again as the
 * engine would (a second `pulumi up` from the state it keeps, or `pulumi destroy`); it must
 * converge with no manual step (a refresh then shows nothing to do), and the host's invariants
 * hold: no key image lost, truncated or replaced, nothing that no resource owns, no config on a
 * missing disk, nothing half-written. Each case ends with a destroy through the lifecycle, which
 * must leave nothing behind.
 *
 * CI runs a slice (RELIABILITY_SCOPE unset); `npm run bench:reliability` the whole sweep. Both
 * write the "faults" section of bench/results/reliability.json. A failing case is named by kind,
 * operation, fault and step; FAULT_SWEEP_ONLY="Vtpm create timeout 3" (a regex) runs only the
 * cases it matches, and FAULT_SWEEP_VERBOSE=1 prints each case as it ends.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  clearFaults,
  clearStepRules,
  dropConnections,
  endHungStep,
  failNext,
  fillDisk,
  installStepHooks,
  openStepGate,
  pendingFailures,
  stepEnded,
  stepHits,
  stepRule,
  waitForStep,
} from "../../lab/faults";
import { BASE_IMAGE, inHost } from "../../lab/host";
import type { Lifecycle } from "../../provider/core/define";
import * as guest from "../../provider/resources/guest/provider";
import * as seedImage from "../../provider/resources/seedImage/provider";
import * as tvdNetwork from "../../provider/resources/tvdNetwork/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as vtpmManager from "../../provider/resources/vtpmManager/provider";
import { closeAllSessions } from "../../provider/transport/ssh";
import {
  ARCHIVE,
  EngineResource,
  forceClean,
  hostState,
  leftovers,
  markImages,
  recordedSteps,
  stepPattern,
  violations,
  type Expectations,
  type HostState,
  type Violation,
} from "../support/faultSweep";
import { startTestLab, type TestLab } from "../support/lab";
import { recordReliability, reliabilityScope } from "../support/reliability";

const SCOPE = reliabilityScope();
/** Runs only the cases whose name ("Vtpm create fail 3": kind, operation, fault, step) matches. */
const ONLY = process.env.FAULT_SWEEP_ONLY ? new RegExp(process.env.FAULT_SWEEP_ONLY) : undefined;
const FULL = SCOPE === "full";
jest.setTimeout(FULL ? 3 * 3600_000 : 300_000);

type Props = Record<string, unknown>;
type Operation = "create" | "update-restart" | "update-in-place" | "delete";
/** The four faults, the dropped connection at two moments: before the command runs on the dom0, and after. */
type Fault = "fail" | "dropBefore" | "dropAfter" | "timeout" | "diskFull";
const FAULTS: readonly Fault[] = ["fail", "dropBefore", "dropAfter", "timeout", "diskFull"];
const OPERATIONS: readonly Operation[] = ["create", "update-restart", "update-in-place", "delete"];

/** The timeout of every command in a timeout case: well above a step's time on the lab. */
const SMALL_TIMEOUT_SEC = 5;

let lab: TestLab;
const A = "dom0-a";
let host: TestLab["hosts"][number];
let connection: Props;
let statsFile: string;
/** The host before any resource, and with the fixtures (the manager and vTPM others run on). */
let baseline: HostState;
let withFixtures: HostState;
const marked = new Set<string>();
/** The host as the last case's destroy left it, when it left nothing (and no archive to clear). */
let settled: HostState | undefined;
const MiB = 1024 * 1024;

/** One kind: its lifecycle, its inputs, and the new inputs of each update. */
interface KindSpec {
  readonly kind: string;
  readonly name: string;
  readonly lc: Lifecycle;
  /** Its input change classes, as its definition declares them. */
  readonly changes: Readonly<Record<string, string>>;
  readonly inputs: (connection: Props) => Props;
  /** Each update operation's inputs, or why the kind has none such. */
  readonly updates: Record<
    "update-restart" | "update-in-place",
    ((connection: Props) => Props) | { readonly none: string }
  >;
  /** The declared size of the files it makes whose size is known, by path. */
  readonly sizes: Record<string, number>;
}

const KINDS: readonly KindSpec[] = [
  {
    kind: "VtpmManager",
    name: "sw-mgr",
    lc: vtpmManager.vtpmManagerLifecycle,
    changes: vtpmManager.definition.changes,
    inputs: (c) => ({ connection: c, name: "sw-mgr", memoryMiB: 16, readyTimeoutSec: 5 }),
    updates: {
      "update-restart": (c) => ({ connection: c, name: "sw-mgr", memoryMiB: 24, readyTimeoutSec: 5 }),
      "update-in-place": (c) => ({
        connection: c,
        name: "sw-mgr",
        memoryMiB: 16,
        readyTimeoutSec: 5,
        running: false,
      }),
    },
    sizes: { "/var/lib/xen/vtpm/sw-mgr.img": 16 * MiB },
  },
  {
    kind: "Vtpm",
    name: "sw-vtpm",
    lc: vtpm.vtpmLifecycle,
    changes: vtpm.definition.changes,
    inputs: (c) => ({ connection: c, name: "sw-vtpm", manager: "vtpmmgr", readyTimeoutSec: 5 }),
    updates: {
      "update-restart": (c) => ({
        connection: c,
        name: "sw-vtpm",
        manager: "vtpmmgr",
        readyTimeoutSec: 5,
        memoryMiB: 16,
      }),
      "update-in-place": (c) => ({
        connection: c,
        name: "sw-vtpm",
        manager: "vtpmmgr",
        readyTimeoutSec: 5,
        running: false,
      }),
    },
    sizes: { "/var/lib/xen/vtpm/sw-vtpm.img": 8 * MiB },
  },
  {
    kind: "Guest",
    name: "sw-guest",
    lc: guest.guestLifecycle,
    changes: guest.definition.changes,
    inputs: (c) => guestInputs(c, {}),
    updates: {
      "update-restart": (c) => guestInputs(c, { memoryMiB: 96 }),
      "update-in-place": (c) => guestInputs(c, { running: false }),
    },
    sizes: {},
  },
  {
    kind: "SeedImage",
    name: "sw-seed",
    lc: seedImage.seedImageLifecycle,
    changes: seedImage.definition.changes,
    inputs: (c) => ({ connection: c, name: "sw-seed", sizeKiB: 512, seed: { hostname: "sw-seed" } }),
    updates: {
      "update-restart": { none: "SeedImage has no input applied by a restart" },
      "update-in-place": (c) => ({
        connection: c,
        name: "sw-seed",
        sizeKiB: 512,
        seed: { hostname: "sw-seed2" },
      }),
    },
    sizes: { "/var/lib/xen/images/sw-seed-seed.img": 512 * 1024 },
  },
  {
    kind: "TvdNetwork",
    name: "sw-net",
    lc: tvdNetwork.tvdNetworkLifecycle,
    changes: tvdNetwork.definition.changes,
    inputs: (c) => netInputs(c, ["10.99.0.2"]),
    updates: {
      "update-restart": { none: "TvdNetwork has no input applied by a restart" },
      "update-in-place": (c) => netInputs(c, ["10.99.0.3"]),
    },
    sizes: {},
  },
];

function guestInputs(c: Props, extra: Props): Props {
  return {
    connection: c,
    name: "sw-guest",
    baseImage: BASE_IMAGE,
    kernel: "/usr/lib/xen/boot/vmlinuz",
    memoryMiB: 64,
    vtpm: "fx-vtpm",
    vtpmReadyTimeoutSec: 5,
    ...extra,
  };
}

function netInputs(c: Props, peers: string[]): Props {
  return { connection: c, bridge: "tvd-sw", vni: 4242, localIp: host.underlayIp, peers };
}

/** Which operations and faults run, and on which steps (all, or the labels listed, locked or not). */
interface PlanEntry {
  readonly kind: string;
  readonly op: Operation;
  readonly faults: readonly Fault[];
  readonly steps?: readonly string[];
}

/**
 * CI's slice: every step of a vTPM's create, failing and on a full disk, and of a guest's restart,
 * failing; a vTPM's create with its connection dropped before a config write and after
 * `xl create`, and `xl create` timing out; a seed image's write timing out.
 */
const CI_PLAN: readonly PlanEntry[] = [
  { kind: "Vtpm", op: "create", faults: ["fail", "diskFull"] },
  { kind: "Guest", op: "update-restart", faults: ["fail"] },
  { kind: "Vtpm", op: "create", faults: ["dropBefore"], steps: ["sh -c WRITE_FILE_ATOMIC"] },
  { kind: "Vtpm", op: "create", faults: ["dropAfter", "timeout"], steps: ["xl create"] },
  { kind: "SeedImage", op: "create", faults: ["timeout"], steps: ["sh -c WRITE_FILE_ATOMIC"] },
];

const FULL_PLAN: readonly PlanEntry[] = KINDS.flatMap((k) =>
  OPERATIONS.filter((op) => op === "create" || op === "delete" || !("none" in k.updates[op])).map((op) => ({
    kind: k.kind,
    op,
    faults: FAULTS,
  })),
);

const PLAN = FULL ? FULL_PLAN : CI_PLAN;

/** One step of an operation, and how a fault finds it: its pattern, and how many matching commands come first. */
interface Step {
  readonly index: number;
  readonly label: string;
  readonly pattern: string;
  readonly skip: number;
}

interface CaseResult {
  readonly kind: string;
  readonly op: Operation;
  readonly fault: Fault | "none";
  readonly step?: Step;
  readonly injected: boolean;
  /** The faulted operation's own outcome (it may succeed: a step whose failure it survives). */
  readonly faultedError?: string;
  readonly converged: boolean;
  readonly problem?: string;
  readonly violations: Violation[];
}

const results: CaseResult[] = [];
const enumerated = new Map<string, string[]>();
const notApplicable: Record<string, string> = {};

const expectations = (k: KindSpec): Expectations => ({
  baseline,
  baseImage: BASE_IMAGE,
  sizes: new Map(
    Object.entries({
      ...k.sizes,
      "/var/lib/xen/vtpm/vtpmmgr.img": 16 * MiB,
      "/var/lib/xen/vtpm/fx-vtpm.img": 8 * MiB,
    }),
  ),
});

const fixtures = {
  manager: undefined as EngineResource | undefined,
  vtpm: undefined as EngineResource | undefined,
};

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1, diskMiB: 512 });
  host = lab.host(A);
  connection = lab.connection(A);
  installStepHooks(host);
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-sweep-"));
  statsFile = path.join(dir, "stats.jsonl");
  baseline = await hostState(host);
  // What the swept resources run on, made by another stack: never touched by a case.
  fixtures.manager = new EngineResource(vtpmManager.vtpmManagerLifecycle, "lab/fixture VtpmManager vtpmmgr");
  await fixtures.manager.up({ connection, name: "vtpmmgr", readyTimeoutSec: 30 });
  fixtures.vtpm = new EngineResource(vtpm.vtpmLifecycle, "lab/fixture Vtpm fx-vtpm");
  await fixtures.vtpm.up({ connection, name: "fx-vtpm", manager: "vtpmmgr", readyTimeoutSec: 30 });
  await markImages(host, marked);
  withFixtures = await hostState(host);
});

/** A run of chosen cases (FAULT_SWEEP_ONLY, jest -t) reproduces them; it records no figures. */
const FILTERED = ONLY !== undefined || process.argv.some((a) => /^(-t|--testNamePattern)/.test(a));

afterAll(async () => {
  if (results.length && !FILTERED) record();
  await lab?.stop();
  if (statsFile) rmSync(path.dirname(statsFile), { recursive: true, force: true });
});

/** The operation's steps in a clean run, from the transport's record. */
async function runRecorded<T>(fn: () => Promise<T>): Promise<{ value: T; steps: string[] }> {
  const from = statSize(statsFile);
  process.env.PULUMI_TVD_STATS = statsFile;
  try {
    const value = await fn();
    return { value, steps: recordedSteps(statsFile, from) };
  } finally {
    delete process.env.PULUMI_TVD_STATS;
  }
}

function statSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Arms `fault` at `step`, runs `op`, and ends the fault; returns whether the fault was injected
 * and the operation's error, if any:
 *  fail       the command fails;
 *  dropBefore the connection drops while the command waits to start (at the step gate); the
 *             command then runs on the dom0 all the same, after the client gave up;
 *  dropAfter  the command does its work on the dom0, and the connection drops before its answer;
 *  timeout    the command does its work, and no answer comes before its timeout (the small
 *             commandTimeoutSec of the case's connection), when the dom0 kills it;
 *  diskFull   /var/lib/xen fills while the command waits to start, and stays full until the
 *             operation ends.
 */
async function faulted(
  fault: Fault,
  step: Step,
  op: () => Promise<unknown>,
): Promise<{ injected: boolean; error?: string }> {
  let error: string | undefined;
  const running = () =>
    op().then(
      () => undefined,
      (e: Error) => {
        error = e.message;
      },
    );
  let injected: boolean;
  if (fault === "fail") {
    if (step.skip === 0) failNext(host, step.pattern);
    else stepRule(host, "fail", step.pattern, step.skip);
    await running();
    injected =
      step.skip === 0 ? pendingFailures(host).length === 0 : stepHits(host).some((x) => x.action === "fail");
  } else if (fault === "timeout") {
    stepRule(host, "hang", step.pattern, step.skip);
    await running();
    const hit = stepHits(host).find((x) => x.action === "hang");
    injected = hit !== undefined;
    if (hit) await stepEnded(hit.pid);
  } else if (fault === "dropAfter") {
    stepRule(host, "hang", step.pattern, step.skip);
    const settled = running();
    const pid = await waitForStep(host, "worked", settled);
    injected = pid !== undefined;
    if (pid !== undefined) {
      await dropConnections(host);
      await settled;
      endHungStep(pid);
      await stepEnded(pid);
    }
    await settled;
  } else {
    stepRule(host, "gate", step.pattern, step.skip);
    const settled = running();
    const pid = await waitForStep(host, "gate", settled);
    injected = pid !== undefined;
    if (pid !== undefined) {
      if (fault === "dropBefore") {
        await dropConnections(host);
        await settled;
        openStepGate(host);
        await stepEnded(pid);
      } else {
        await fillDisk(host);
        openStepGate(host);
      }
    }
    await settled;
  }
  clearStepRules(host);
  await clearFaults(host);
  await closeAllSessions();
  return { injected, error };
}

/**
 * One case: the resource is brought to the operation's starting point, the operation runs (with
 * the fault, if any), then again as the engine would, faults cleared; then the checks and a
 * destroy that must leave nothing.
 */
async function runCase(
  k: KindSpec,
  op: Operation,
  fault: Fault | "none",
  step?: Step,
  recordSteps?: (labels: string[]) => void,
): Promise<CaseResult> {
  const conn = fault === "timeout" ? { ...connection, commandTimeoutSec: SMALL_TIMEOUT_SEC } : connection;
  const r = new EngineResource(k.lc, `lab/sweep ${k.kind} ${k.name}`);
  const base = k.inputs(conn);
  const update = op === "update-restart" || op === "update-in-place" ? k.updates[op] : undefined;
  const target = typeof update === "function" ? update(conn) : base;
  const run = (): Promise<unknown> => (op === "delete" ? r.destroy() : r.up(target));
  const out: Omit<CaseResult, "converged" | "violations" | "injected"> = { kind: k.kind, op, fault, step };
  if (op !== "create") await r.up(base);
  await markImages(host, marked);
  // A create starts where the last case's destroy left the host, when that left nothing.
  const before = op === "create" && settled ? settled : await hostState(host);

  let injected = true;
  let faultedError: string | undefined;
  let problem: string | undefined;
  if (fault === "none") {
    const { steps } = await runRecorded(run);
    recordSteps?.(steps);
  } else ({ injected, error: faultedError } = await faulted(fault, step!, run));
  const between = fault === "none" ? before : await hostState(host);

  // The engine's second run, from the state it kept.
  try {
    if (fault !== "none") await run();
    const pending = op === "delete" ? (r.held ? "still in the state" : undefined) : await r.pending(target);
    if (pending) problem = `not converged: ${pending}`;
  } catch (e) {
    problem = `the second ${op === "delete" ? "destroy" : "up"} failed: ${(e as Error).message}`;
  }
  const after = await hostState(host);
  const found = violations(before, between, after, expectations(k));

  // The case's own destroy, through the lifecycle; nothing of it may be left.
  try {
    await r.destroy();
  } catch (e) {
    problem ??= `the destroy after the case failed: ${(e as Error).message}`;
  }
  const now = await hostState(host);
  const left = leftovers(now, withFixtures);
  settled = undefined;
  if (left.length || now.temporary.length) {
    found.push(...left);
    await forceClean(host, now, withFixtures);
  } else if (!(await dropArchive(now))) settled = now;
  return { ...out, injected, faultedError, converged: problem === undefined, problem, violations: found };
}

/** Archived images of the case's resources (and their records) go: housekeeping, not a step of the case. */
async function dropArchive(now: HostState): Promise<boolean> {
  const archived = [...now.files.keys()].filter((p) => p.startsWith(`${ARCHIVE}/`));
  if (!archived.length) return false;
  const keys = archived.map((p) => `file:${p}`);
  const script =
    'for k in "$@"; do rm -f -- "/var/lib/xen/pulumi-tvd/owners/$(printf \'%s\' "$k" | sha256sum | cut -c1-40)" "${k#file:}"; done';
  const r = await inHost(host, ["sh", "-c", script, "archive", ...keys]);
  if (r.code !== 0) throw new Error(`clearing the archive: ${r.stderr}`);
  for (const p of archived) marked.delete(p);
  return true;
}

/** Steps of a clean run, each with its fault pattern and the matching commands before it. */
function stepsOf(labels: string[]): Step[] {
  return labels.map((label, index) => {
    const pattern = stepPattern(label);
    const skip = labels.slice(0, index).filter((l) => stepPattern(l) === pattern).length;
    return { index, label, pattern, skip };
  });
}

/** A case's name, as FAULT_SWEEP_ONLY (a regex) selects cases by: "Vtpm create fail 3". */
const caseName = (kind: string, op: Operation, fault: Fault, step: Step) =>
  `${kind} ${op} ${fault} ${step.index}`;

const describeCase = (c: CaseResult) =>
  `${c.kind} ${c.op}, ${c.fault}${c.step ? ` at step ${c.step.index} (${c.step.label})` : ""}: ` +
  [
    c.injected ? "" : "fault never injected",
    c.problem ?? "",
    ...c.violations.map((v) => `${v.figure}: ${v.what}`),
    c.faultedError ? `(the faulted operation said: ${c.faultedError})` : "",
  ]
    .filter(Boolean)
    .join("; ");

const failed = (c: CaseResult) => !c.injected || !c.converged || c.violations.length > 0;

for (const kind of KINDS)
  for (const op of OPERATIONS) {
    const update = op === "update-restart" || op === "update-in-place" ? kind.updates[op] : undefined;
    if (update && "none" in update) notApplicable[`${kind.kind} ${op}`] = update.none;
  }

it("sweeps an update that restarts exactly for the kinds with an input applied by a restart", () => {
  const restarting = (k: KindSpec) => Object.values(k.changes).includes("restart");
  expect(KINDS.filter(restarting).map((k) => k.kind)).toEqual(
    KINDS.filter((k) => !("none" in k.updates["update-restart"])).map((k) => k.kind),
  );
});

for (const entry of PLAN.filter((e, i) => PLAN.findIndex((x) => x.kind === e.kind && x.op === e.op) === i)) {
  const k = KINDS.find((x) => x.kind === entry.kind)!;
  const entries = PLAN.filter((e) => e.kind === entry.kind && e.op === entry.op);
  describe(`${k.kind} ${entry.op}`, () => {
    let steps: Step[] = [];

    beforeAll(async () => {
      // The clean run: its steps, and the same checks as every faulted case.
      let labels: string[] = [];
      results.push(await runCase(k, entry.op, "none", undefined, (l) => (labels = l)));
      steps = stepsOf(labels);
      enumerated.set(`${k.kind} ${entry.op}`, labels);
    });

    it("runs cleanly: converges, nothing lost, left over or half-written", () => {
      const clean = results.find((c) => c.kind === k.kind && c.op === entry.op && c.fault === "none")!;
      expect(failed(clean) ? describeCase(clean) : "ok").toBe("ok");
      expect(steps.length).toBeGreaterThan(0);
    });

    for (const fault of FAULTS.filter((f) => entries.some((e) => e.faults.includes(f)))) {
      const only = entries.find((e) => e.faults.includes(fault))!.steps;
      it(`converges after ${fault} at ${only ? only.join(", ") : "every step"}, every invariant holding`, async () => {
        const chosen = steps
          .filter((s) => !only || only.includes(s.label.replace(/^flock /, "")))
          .filter((s) => !ONLY || ONLY.test(caseName(k.kind, entry.op, fault, s)));
        if (!ONLY) expect(chosen.length).toBeGreaterThan(0);
        const mine: CaseResult[] = [];
        for (const step of chosen) {
          const c = await runCase(k, entry.op, fault, step);
          results.push(c);
          mine.push(c);
          if (process.env.FAULT_SWEEP_VERBOSE) console.log(describeCase(c), JSON.stringify(c.faultedError));
        }
        expect(mine.filter(failed).map(describeCase)).toEqual([]);
      });
    }
  });
}

/** The "faults" section of bench/results/reliability.json. */
function record(): void {
  const faulted = results.filter((c) => c.fault !== "none");
  const count = (figure: Violation["figure"]) =>
    results.reduce((n, c) => n + c.violations.filter((v) => v.figure === figure).length, 0);
  const perFault = Object.fromEntries(
    FAULTS.map((f) => {
      const cs = faulted.filter((c) => c.fault === f);
      return [
        f,
        {
          cases: cs.length,
          injected: cs.filter((c) => c.injected).length,
          converged: cs.filter((c) => c.converged).length,
          failedToConverge: cs.filter((c) => !c.converged).length,
          operationFailed: cs.filter((c) => c.faultedError !== undefined).length,
        },
      ];
    }),
  );
  recordReliability(
    "faults",
    SCOPE,
    {
      stepsEnumerated: [...enumerated.values()].reduce((n, s) => n + s.length, 0),
      faultsInjected: faulted.filter((c) => c.injected).length,
      casesConverged: faulted.filter((c) => c.converged).length,
      casesFailedToConverge: faulted.filter((c) => !c.converged).length,
      imagesLost: count("imagesLost"),
      uuidsChanged: count("uuidsChanged"),
      orphans: count("orphans"),
      halfWrittenFiles: count("halfWrittenFiles"),
      configsOnMissingDisks: count("configsOnMissingDisks"),
      staleRecords: count("staleRecords"),
    },
    {
      steps: Object.fromEntries(enumerated),
      perFault,
      notApplicable,
      failures: results.filter(failed).map(describeCase),
      smallCommandTimeoutSec: SMALL_TIMEOUT_SEC,
    },
  );
}
