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

import { remoteCommand } from "../../provider/transport/ssh";
import {
  describeLate,
  generate,
  havePyyaml,
  hostileEnv,
  hostilePlan,
  inputId,
  pyyamlProblems,
  recordHostile,
  recount,
  refuseDom0Connections,
  reuseRsaKeys,
  runLocal,
  sanProblems,
  shellProblems,
  sshProblems,
  totals,
  type HostileEnv,
  type HostileInput,
  type InputCounts,
  type LateProblem,
} from "../support/hostileInput";

const { replay, scope, runs: RUNS, inputs, measured } = hostilePlan({ ci: 1000, full: 5000 });
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

// The module itself (an `import * as` copy cannot be spied on): what the provider calls.
const net = jest.requireActual<typeof import("node:net")>("node:net");

let env: HostileEnv;
let pyyaml = false;
const connects = { sockets: 0 };
let dom0Connects: { readonly count: number };

beforeAll(async () => {
  reuseRsaKeys();
  // Nothing tried here may reach a host: every way to one is counted (and refused).
  dom0Connects = refuseDom0Connections("the pure hostile-input test never connects to a dom0");
  jest.spyOn(net, "connect").mockImplementation(() => {
    connects.sockets++;
    throw new Error("the pure hostile-input test opens no socket");
  });
  env = await hostileEnv();
  pyyaml = await havePyyaml();
  // A TVD CA, an SSH CA and a python3 start: seconds when the suite's other workers and the
  // real-Xen QEMU host have the cores (Jest's 5 s default was exceeded once).
}, 60_000);

afterAll(() => {
  jest.restoreAllMocks();
  // A replay of one input or one value is not the measurement.
  if (!measured(counts.length)) return;
  recordHostile(
    "pure",
    scope,
    { ...totals(counts), ...rendered, hostsContacted: dom0Connects.count + connects.sockets },
    {
      seed: replay.seed,
      scope,
      numRunsPerInput: RUNS,
      pyyaml: pyyaml ? "every seed document also read by PyYAML" : "python3 with PyYAML not on this machine",
      inputs: counts,
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
      const { counts: c, deferred } = await generate(input, env, replay, RUNS);
      counts.push(c);

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
    expect(dom0Connects.count).toBe(0);
    expect(connects.sockets).toBe(0);
  });
});
