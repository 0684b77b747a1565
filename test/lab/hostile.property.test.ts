/**
 * Issue 12.4, hostile input, generated, through a real dom0: the values fast-check makes for every
 * string input of every resource and construct (200 per input, 1,000 with RELIABILITY_SCOPE=full)
 * go through the kind's own check as in test/unit/hostile.property.test.ts; then the accepted ones,
 * and only those, travel to a lab host over its real sshd, quoted as every remote command is
 * (joinArgv), in `printf '%s\0' <values...>`: each must come back byte for byte, one argument each.
 * The xl configs the kinds rendered for them go to the host too, where Xen's own parser
 * (libxlutil, the lab's xlcfg) must read every setting and disk spec as ours does.
 *
 * Seeded like the pure test (HOSTILE_SEED, HOSTILE_INPUT, HOSTILE_PATH). Figures: section
 * "hostile", the sshd* ones.
 */
jest.mock("@pulumi/pulumi", () => jest.requireActual("../support/paperPulumi").paperPulumi());

import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { SshSession } from "../../provider/transport/ssh";
import { parseXlConfig } from "../../provider/xl/config";
import {
  describeLate,
  generate,
  hostileEnv,
  hostilePlan,
  inputId,
  recordHostile,
  recount,
  refuseDom0Connections,
  reuseRsaKeys,
  shellProblems,
  totals,
  type Deferred,
  type HostileEnv,
  type HostileInput,
  type InputCounts,
  type LateProblem,
} from "../support/hostileInput";
import { startTestLab, type TestLab } from "../support/lab";

const { replay, scope, runs: RUNS, inputs, measured } = hostilePlan({ ci: 200, full: 1000 });
const A = "dom0-a";
/** The lab's libxlutil helper; the lab hosts run it from the checkout, as their xl does. */
const XLCFG = path.join(__dirname, "..", "..", "build", "lab", "bin", "xlcfg");
/** Every setting any kind writes. */
const XL_KEYS = [
  "name",
  "kernel",
  "ramdisk",
  "memory",
  "vcpus",
  "cmdline",
  "extra",
  "disk",
  "vif",
  "vtpm",
  "iomem",
];

let lab: TestLab;
let env: HostileEnv;
let session: SshSession;
const counts: InputCounts[] = [];
const sshd = {
  sshdValuesSent: 0,
  sshdValuesIdentical: 0,
  sshdValuesNotIdentical: 0,
  /** Values sent that the check had refused: must stay 0. */
  sshdRejectedSent: 0,
  sshdXlConfigsRead: 0,
  sshdXlDiskSpecsRead: 0,
  sshdLibxlutilDisagreements: 0,
  sshdRoundTrips: 0,
};
let dom0Connects: { readonly count: number };

beforeAll(async () => {
  reuseRsaKeys();
  // The provider's own way to a host is not taken: only this test's session reaches the dom0.
  dom0Connects = refuseDom0Connections(
    "the hostile-input lab test sends values only through its own session",
  );
  lab = await startTestLab({ hosts: 1 });
  session = await lab.session(A);
  env = await hostileEnv();
}, 180_000);

afterAll(async () => {
  jest.restoreAllMocks();
  await lab?.stop();
  if (!measured(counts.length)) return;
  const tried = totals(counts);
  recordHostile(
    "sshd",
    scope,
    {
      sshdValuesTried: tried.valuesTried,
      sshdRejected: tried.rejected,
      sshdAcceptedInert: tried.acceptedInert,
      sshdAcceptedNotInert: tried.acceptedNotInert,
      sshdInputsCovered: tried.inputsCovered,
      ...sshd,
    },
    { seed: replay.seed, scope, numRunsPerInput: RUNS, inputs: counts },
  );
});

/**
 * Runs argv on the dom0 and returns its stdout; records what was sent, and that only values
 * the check accepted for this input are ever sent.
 */
function onDom0(accepted: ReadonlySet<string>, rejected: ReadonlySet<string>) {
  return async (argv: readonly string[]): Promise<string> => {
    const values = argv.slice(2);
    for (const v of values) {
      if (rejected.has(v) || !accepted.has(v)) sshd.sshdRejectedSent++;
    }
    if (sshd.sshdRejectedSent) throw new Error("a value the check did not accept was about to be sent");
    sshd.sshdValuesSent += values.length;
    sshd.sshdRoundTrips++;
    const r = await session.run(argv, { timeoutSec: 120 });
    if (r.exitCode !== 0) throw new Error(`printf exited ${r.exitCode} on ${A}: ${r.stderr}`);
    return r.stdout;
  };
}

/** Reads every rendered config, and each of its disk specs, with libxlutil on the dom0 (one round trip). */
const XLCFG_LOOP = `x=$1; shift; t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
while read -r kind b64; do
  printf '%s' "$b64" | base64 -d > "$t/in"
  if [ "$kind" = config ]; then out=$("$x" config "$t/in" "$@" 2>&1); else out=$("$x" disk "$(cat "$t/in")" 2>&1); fi \\
    && printf 'ok %s\\n' "$out" || printf 'err %s\\n' "$(printf '%s' "$out" | tr '\\n' ' ')"
done`;

async function libxlutilProblems(deferred: Deferred): Promise<LateProblem[]> {
  const configs = [...new Map(deferred.xlConfigs.map((c) => [c.text, c])).values()];
  const asks: Array<{ run: number; value: string; kind: "config" | "disk"; want: unknown }> = [];
  const specs = new Set<string>();
  for (const c of configs) {
    const ours = parseXlConfig(c.text);
    const want = Object.fromEntries(
      XL_KEYS.map((k) => {
        const v = ours.get(k);
        return [k, v === undefined ? null : Array.isArray(v) ? v.map(String) : String(v)];
      }),
    );
    asks.push({ run: c.run, value: c.text, kind: "config", want });
    for (const spec of (ours.get("disk") ?? []) as string[]) {
      if (specs.has(spec)) continue;
      specs.add(spec);
      const pdev = spec.startsWith("file:") ? spec.slice(5).split(",")[0] : spec.split("target=")[1];
      asks.push({ run: c.run, value: spec, kind: "disk", want: pdev });
    }
  }
  if (!asks.length) return [];
  const stdin = asks.map((a) => `${a.kind} ${Buffer.from(a.value).toString("base64")}\n`).join("");
  sshd.sshdRoundTrips++;
  const r = await session.run(["sh", "-c", XLCFG_LOOP, "xlcfg", XLCFG, ...XL_KEYS], {
    stdin,
    timeoutSec: 300,
  });
  if (r.exitCode !== 0) throw new Error(`xlcfg on ${A} exited ${r.exitCode}: ${r.stderr}`);
  const lines = r.stdout.split("\n").slice(0, -1);
  if (lines.length !== asks.length)
    throw new Error(`asked libxlutil ${asks.length} times, read ${lines.length} answers`);
  const problems: LateProblem[] = [];
  asks.forEach((a, i) => {
    const [status, ...rest] = lines[i].split(" ");
    const out = rest.join(" ");
    if (a.kind === "config") sshd.sshdXlConfigsRead++;
    else sshd.sshdXlDiskSpecsRead++;
    const read = status === "ok" ? (JSON.parse(out) as Record<string, unknown>) : undefined;
    const got = a.kind === "config" ? read : (read?.pdev_path as unknown);
    if (!isDeepStrictEqual(got, a.want)) {
      sshd.sshdLibxlutilDisagreements++;
      problems.push({
        run: a.run,
        value: a.value,
        problem: `libxlutil reads ${out}, ours ${JSON.stringify(a.want)}`,
      });
    }
  });
  return problems;
}

describe("issue 12.4: hostile input, generated, through a dom0's sshd", () => {
  it.each(inputs.map((i): [string, HostileInput] => [inputId(i), i]))(
    "%s: only accepted values reach the dom0, byte for byte, and libxlutil there reads their configs as rendered",
    async (_id, input) => {
      const run = await generate(input, env, replay, RUNS);
      counts.push(run.counts);
      const sent = await shellProblems(run.deferred, onDom0(run.accepted, run.rejected));
      const argvSent = new Set(run.deferred.argv.map((a) => a.value)).size;
      sshd.sshdValuesIdentical += argvSent - new Set(sent.map((p) => p.value)).size;
      sshd.sshdValuesNotIdentical += new Set(sent.map((p) => p.value)).size;
      const late = [...sent, ...(await libxlutilProblems(run.deferred))];
      recount(run.counts, late);
      if (late.length)
        throw new Error(
          `${late.length} accepted values are not inert on ${A}:\n${describeLate(input, replay.seed, late)}`,
        );
      if (!replay.path) expect(run.counts.tried).toBe(RUNS);
    },
    // Generous: no timing is asserted, only a hang is cut short.
    (RUNS / 200) * 60_000,
  );

  it("sent the dom0 nothing a check refused, and nothing through the provider's own connection", () => {
    expect(counts.length).toBe(inputs.length);
    expect(sshd.sshdRejectedSent).toBe(0);
    expect(sshd.sshdValuesSent).toBeGreaterThan(0);
    expect(dom0Connects.count).toBe(0);
  });
});
