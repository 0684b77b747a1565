/**
 * The GitOps drift check (examples/gitops/drift-check.mjs) as a pipeline runs it: a child
 * process, the real Pulumi CLI, a stack deployed on a lab dom0. A clean stack exits 0; drift
 * made out of band (a guest destroyed, a config's memory edited, a vTPM's config and another's
 * image deleted) exits 2 with a row per drifted property; a host that no longer answers exits 3
 * naming it. No secret appears in any report or output (the stack's secret scan reads them all).
 * The last drift report goes to test/.work/gitops/, from where the README's example is taken.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { run, type RunResult } from "../../lab/exec";
import type { LabHostRecord } from "../../lab/host";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, labStackConfig, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const repoRoot = path.resolve(__dirname, "..", "..");
const SCRIPT = path.join(repoRoot, "examples", "gitops", "drift-check.mjs");
const WORK = path.join(repoRoot, "test", ".work", "gitops");
const fixture = path.join(__dirname, "fixtures", "guests");
const A = "dom0-a";
/** How a pulumi-tvd resource's type reads in a URN, and so in the report. */
const kind = (k: string) => `pulumi-nodejs:dynamic/pulumi-tvd:${k}`;
let lab: TestLab;
let host: LabHostRecord;
let stack: TestStack;

beforeAll(async () => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  lab = await startTestLab({ hosts: 1 });
  host = lab.host(A);
  stack = await TestStack.create({
    programDir: fixture,
    stackName: "prod",
    config: { ...labStackConfig(host), guests: { value: JSON.stringify(["web1", "db1"]) } },
  });
});

afterAll(() => disposeThen(stack, () => lab?.stop()));

interface Check extends RunResult {
  readonly report: string;
  readonly summary: string;
}

/**
 * Runs the script as a pipeline's step does, with the stack's backend and passphrase in its
 * environment and a job summary file; its output, report and preview document join the stack's
 * runs, which the secret scan reads at dispose.
 */
async function driftCheck(tag: string, stackName = stack.stackName): Promise<Check> {
  const report = path.join(WORK, `${tag}.md`);
  const summary = path.join(WORK, `${tag}.summary.md`);
  const eventsJson = path.join(WORK, `${tag}.events.jsonl`);
  const args = [
    "--stack",
    stackName,
    "--cwd",
    stack.programDir,
    "--report",
    report,
    "--events-json",
    eventsJson,
  ];
  const result = await run(["node", SCRIPT, ...args], {
    env: { ...stack.cliEnv, GITHUB_STEP_SUMMARY: summary },
    timeoutMs: 5 * 60_000,
  });
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return "";
    }
  };
  const check = { ...result, report: read(report), summary: read(summary) };
  for (const [what, text] of [
    ["stdout and stderr", null],
    ["report", check.report],
    ["events", read(eventsJson)],
  ] as const) {
    stack.runs.push({
      args: ["drift-check", what, ...args],
      result: text === null ? result : { code: result.code, stdout: text, stderr: "" },
    });
  }
  return check;
}

/** The report's table rows, each cell's text without its code span. */
function rows(report: string): string[][] {
  return report
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .map((l) =>
      l
        .slice(1, -1)
        .split(" | ")
        .map((c) => c.trim().replace(/^`+ ?| ?`+$/g, "")),
    );
}

function expectNoSecrets(check: Check): void {
  const key = readFileSync(host.privateKeyPath, "utf8");
  const keyBody = key.split("\n").find((l) => l.length > 40)!;
  for (const text of [check.stdout, check.stderr, check.report, check.summary]) {
    expect(text).not.toContain(keyBody);
    expect(text).not.toContain(stack.passphrase);
  }
}

it("up deploys a manager, two vTPMs and two guests", async () => {
  expectExit(await stack.up());
  expect(await lab.domainNames(A)).toEqual(["db1", "db1-vtpm", "vtpmmgr", "web1", "web1-vtpm"]);
});

it("a stack that matches its hosts: exit 0, no drift, in the report and the job summary", async () => {
  const check = await driftCheck("clean");
  expect([check.code, check.stderr]).toEqual([0, `drift-check: no drift on stack ${stack.stackName}\n`]);
  expect(check.report).toContain("**No drift**: 5 resources match the program (exit 0).");
  expect(check.stdout).toBe(check.report);
  expect(check.summary).toBe(check.report);
  expectNoSecrets(check);
});

it("a guest destroyed out of band: exit 2, `running` on it", async () => {
  expect((await lab.xl(A, "destroy", "web1")).exitCode).toBe(0);
  const check = await driftCheck("destroyed");
  expect([check.code, check.stderr]).toEqual([
    2,
    `drift-check: drift on stack ${stack.stackName} (exit 2)\n`,
  ]);
  expect(rows(check.report)).toEqual([[`${kind("Guest")} web1`, "running", "true", "false"]]);
  expectNoSecrets(check);
});

it("a config's memory edited, a vTPM's config and another's image deleted: exit 2, a row for each", async () => {
  await lab.check(A, "sed -i 's/^memory = 64$/memory = 96/' /etc/xen/db1.cfg");
  await lab.check(A, "rm /etc/xen/web1-vtpm.cfg");
  await lab.check(A, "rm /var/lib/xen/vtpm/db1-vtpm.img");
  const check = await driftCheck("drift");
  expect(check.code).toBe(2);
  const found = rows(check.report);
  expect(found).toEqual(
    expect.arrayContaining([
      [`${kind("Guest")} web1`, "running", "true", "false"],
      [`${kind("Guest")} db1`, "memoryMiB", "64", "96"],
      [
        `${kind("Vtpm")} web1-vtpm`,
        "configDir",
        '"/etc/xen"',
        expect.stringMatching(/^"\/etc\/xen \(missing on the host/),
      ],
      [
        `${kind("Vtpm")} db1-vtpm`,
        "imagePath",
        '"/var/lib/xen/vtpm/db1-vtpm.img"',
        expect.stringMatching(/^"\/var\/lib\/xen\/vtpm\/db1-vtpm.img \(missing on the host/),
      ],
    ]),
  );
  expect(check.report).toMatch(/^\*\*Drift\*\*: \d+ properties on 4 of 5 resources \(exit 2\)/m);
  // The vTPM's image is gone with its keys: the provider refuses to plan a new one, and says so.
  expect(check.report).toMatch(
    /except where the preview refused to plan it:\n\n- `.*db1-vtpm.*allowStateReset/,
  );
  expectNoSecrets(check);
});

it("a host that does not answer: exit 3, the report names it", async () => {
  const sshdPid = Number(readFileSync(path.join(host.dir, "sshd.pid"), "utf8"));
  process.kill(sshdPid, "SIGTERM");
  const check = await driftCheck("unreachable");
  expect([check.code, check.stderr]).toEqual([
    3,
    `drift-check: the check of stack ${stack.stackName} could not be made (exit 3)\n`,
  ]);
  expect(check.report).toContain("**The check could not be made** (exit 3)");
  expect(check.report).toContain(`${host.host}:${host.port}`);
  expectNoSecrets(check);
});

it("a stack that does not exist: exit 3, the CLI's words in the report", async () => {
  const check = await driftCheck("no-stack", "no-such-stack");
  expect(check.code).toBe(3);
  expect(check.report).toMatch(/no-such-stack/);
  expect(check.report).toContain("**The check could not be made** (exit 3)");
});
