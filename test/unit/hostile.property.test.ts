/**
 * Issue 12.4, hostile input, generated (pure): fast-check makes 1,000 values (5,000 with
 * RELIABILITY_SCOPE=full) for every string input of every resource and construct, mixing
 * arbitrary unicode, control, shell and quote characters with valid values changed by one
 * character. Each goes through the kind's own check (or the construct's constructor): a
 * rejection names the property and the fix; an accepted value is inert in the xl config the kind
 * writes and reads back, the cloud-init seed's YAML (as js-yaml and as PyYAML, cloud-init's own
 * parser, read it), the certificates (node-forge and ssh-keygen read them back), and a shell
 * command line quoted as every remote command is (a local /bin/sh here; a lab dom0's sshd in
 * test/lab/hostile.property.test.ts). No host is contacted.
 *
 * Seeded: HOSTILE_SEED (default 1204). A failure prints the seed and fast-check's path of the
 * value; HOSTILE_SEED=<seed> HOSTILE_INPUT=<input> HOSTILE_PATH=<path> replays it alone.
 * The figures go to section "hostile" of bench/results/reliability.json.
 */
jest.mock("@pulumi/pulumi", () => jest.requireActual("../support/paperPulumi").paperPulumi());

import fc from "fast-check";
import { Dom0 } from "../../provider/dom0/dom0";
import { remoteCommand } from "../../provider/transport/ssh";
import {
  count,
  describeLate,
  havePyyaml,
  hostileEnv,
  HOSTILE_INPUTS,
  inputId,
  newCounts,
  newDeferred,
  pyyamlProblems,
  recount,
  replayFromEnv,
  replayHint,
  seedFor,
  runLocal,
  shellProblems,
  sshProblems,
  totals,
  tryValue,
  valuesFor,
  type HostileEnv,
  type HostileInput,
  type InputCounts,
  type LateProblem,
  type Outcome,
  sanProblems,
} from "../support/hostileInput";
import { readReliability, recordReliability, reliabilityScope } from "../support/reliability";

const replay = replayFromEnv();
const scope = reliabilityScope();
const RUNS = Number(process.env.HOSTILE_RUNS) || (scope === "full" ? 5000 : 1000);
const inputs = HOSTILE_INPUTS.filter((i) => !replay.only || inputId(i) === replay.only);
const counts: InputCounts[] = [];
const rendered = {
  shellArguments: 0,
  xlConfigs: 0,
  seedDocuments: 0,
  pyyamlDocuments: 0,
  certificateNames: 0,
  sshKeygenChecks: 0,
};
/** Key IDs and key comments read back by ssh-keygen per input (a run each): all in the full sweep. */
const SSH_SAMPLE = 25;
const SSH_SAMPLE_OF = (s: "ci" | "full") => (s === "full" ? Infinity : SSH_SAMPLE);

// The modules themselves (an `import * as` copy cannot be spied on): what the provider calls.
const crypto = jest.requireActual<typeof import("node:crypto")>("node:crypto");
const net = jest.requireActual<typeof import("node:net")>("node:net");

let env: HostileEnv;
let pyyaml = false;
const connects = { dom0: 0, sockets: 0 };

beforeAll(async () => {
  // The certificates' names are what is tried here, not their keys: RSA key pairs are made twice
  // and then reused, where each new 2048-bit pair would take some 40 ms.
  const real = crypto.generateKeyPairSync;
  const made: unknown[] = [];
  let n = 0;
  jest.spyOn(crypto, "generateKeyPairSync").mockImplementation(((type: string, options: unknown) => {
    const generate = real as unknown as (t: string, o: unknown) => unknown;
    if (type !== "rsa") return generate(type, options);
    if (made.length < 2) made.push(generate(type, options));
    return made[n++ % made.length];
  }) as unknown as typeof crypto.generateKeyPairSync);
  // Nothing tried here may reach a host: every way to one is counted (and refused).
  jest.spyOn(Dom0, "connect").mockImplementation(async () => {
    connects.dom0++;
    throw new Error("the pure hostile-input test never connects to a dom0");
  });
  jest.spyOn(net, "connect").mockImplementation(() => {
    connects.sockets++;
    throw new Error("the pure hostile-input test opens no socket");
  });
  env = await hostileEnv();
  pyyaml = await havePyyaml();
});

afterAll(() => {
  jest.restoreAllMocks();
  // A replay of one input or one value is not the measurement.
  if (replay.only || replay.path || counts.length !== HOSTILE_INPUTS.length) return;
  const existing = readReliability().sections.hostile;
  // The lab test adds what went through a real sshd (figures sshd*, details.sshd); keep it.
  const sshdFigures = Object.fromEntries(
    Object.entries(existing?.figures ?? {}).filter(([k]) => k.startsWith("sshd")),
  );
  const sshd = (existing?.details as { sshd?: unknown } | undefined)?.sshd;
  recordReliability(
    "hostile",
    scope,
    { ...totals(counts), ...rendered, hostsContacted: connects.dom0 + connects.sockets, ...sshdFigures },
    {
      seed: replay.seed,
      numRunsPerInput: RUNS,
      pyyaml: pyyaml ? "every seed document also read by PyYAML" : "python3 with PyYAML not on this machine",
      inputs: counts,
      ...(sshd ? { sshd } : {}),
    },
  );
});

/** `argv` through a local /bin/sh, as the dom0's login shell gets it from sshd. */
async function localShell(argv: readonly string[]): Promise<string> {
  const r = await runLocal("/bin/sh", ["-c", remoteCommand(60, argv)]);
  if (r.code !== 0) throw new Error(`/bin/sh exited ${r.code}: ${r.stderr}`);
  return r.stdout.toString("utf8");
}

describe("issue 12.4: hostile input, generated", () => {
  it.each(inputs.map((i): [string, HostileInput] => [inputId(i), i]))(
    "%s: each value is rejected naming it with a fix, or accepted and inert where it is rendered",
    async (_id, input) => {
      const c = newCounts(input, replay.seed);
      counts.push(c);
      const deferred = newDeferred();
      // A value generated again did the same before: counted again, not tried again.
      const outcomes = new Map<string, Outcome>();
      let run = replay.path ? Number(replay.path.split(":")[0]) : 0;
      const details = await fc.check(
        fc.asyncProperty(valuesFor(input), async (value) => {
          const o = outcomes.get(value) ?? (await tryValue(input, value, env, run, deferred));
          outcomes.set(value, o);
          run++;
          count(c, o);
          const problems = [...o.badRejection, ...o.notInert];
          if (problems.length) throw new Error(`${o.verdict}, but:\n  ${problems.join("\n  ")}`);
        }),
        {
          seed: seedFor(replay.seed, input),
          numRuns: RUNS,
          path: replay.path,
          verbose: fc.VerbosityLevel.Verbose,
          // No shrinking: the value reported is the one generated, and the counts stay exact.
          endOnFailure: true,
        },
      );
      if (details.failed)
        throw new Error(
          `replay: ${replayHint(input, replay.seed, details.counterexamplePath ?? "")}\n${fc.defaultReportMessage(details)}\n` +
            `Cause: ${(details.errorInstance as Error | undefined)?.message}`,
        );

      const late: LateProblem[] = [
        ...(await shellProblems(deferred, localShell)),
        ...(await sanProblems(deferred, env)),
        ...(await sshProblems(deferred, env, scope === "full" ? Infinity : SSH_SAMPLE)),
        ...(pyyaml && deferred.yamlDocs.length
          ? await pyyamlProblems(deferred, scope === "full" ? "SafeLoader" : "CSafeLoader")
          : []),
      ];
      recount(c, late);
      rendered.shellArguments += new Set(deferred.argv.map((a) => a.value)).size;
      rendered.xlConfigs += deferred.xlConfigs.length;
      rendered.seedDocuments += deferred.yamlDocs.length;
      rendered.pyyamlDocuments += pyyaml ? deferred.yamlDocs.length : 0;
      rendered.certificateNames += new Set(deferred.sans.map((n) => n.value)).size;
      rendered.sshKeygenChecks +=
        new Set(deferred.principals.map((p) => p.value)).size +
        Math.min(SSH_SAMPLE_OF(scope), new Set(deferred.keyIds.map((k) => k.value)).size) +
        Math.min(SSH_SAMPLE_OF(scope), new Set(deferred.keyComments.map((k) => k.value)).size);
      if (late.length)
        throw new Error(
          `${late.length} accepted values are not inert:\n${describeLate(input, replay.seed, late)}`,
        );

      // The generator reaches both sides of the border (a replay of one value tries only one).
      if (!replay.path) {
        expect(c.acceptedInert).toBeGreaterThan(0);
        if (!input.anyString) expect(c.rejected).toBeGreaterThan(0);
      }
      if (!replay.path) expect(c.tried).toBe(RUNS);
    },
    // Generous: no timing is asserted, only a hang is cut short.
    (RUNS / 1000) * 120_000,
  );

  it("contacts no host: no dom0 connection and no socket while the values were tried", () => {
    expect(counts.length).toBe(inputs.length);
    expect(connects).toEqual({ dom0: 0, sockets: 0 });
  });
});
