/**
 * The demo program (the root Pulumi.yaml: examples/two-tvds) on a 3-host lab through the real
 * CLI: it deploys, a preview right after finds nothing to change, members of one TVD reach each
 * other across hosts, and the two TVDs, which even share a subnet, never see each other.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack } from "./pulumi";

jest.setTimeout(15 * 60_000);

const root = path.resolve(__dirname, "..", "..");
let lab: TestLab;
let stack: TestStack;
let programDir: string;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 3 });
  // The demo project as a user has it: Pulumi.yaml with its program beside it.
  programDir = mkdtempSync(path.join(os.tmpdir(), "tvd-demo-"));
  cpSync(path.join(root, "examples", "two-tvds", "index.ts"), path.join(programDir, "index.ts"));
  // Its `main:` points into examples/; here the program sits beside Pulumi.yaml.
  const project = readFileSync(path.join(root, "Pulumi.yaml"), "utf8").replace(/^main: .*\n/m, "");
  writeFileSync(path.join(programDir, "Pulumi.yaml"), project);
  stack = await TestStack.create({
    programDir,
    config: { inventory: { value: path.join(lab.stateDir, "inventory.json") } },
  });
  stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
afterAll(() =>
  disposeThen(stack, async () => {
    await lab?.stop();
    rmSync(programDir, { recursive: true, force: true });
  }),
);

it("deploys two TVDs, prints their summary, and a preview right after shows no changes", async () => {
  expectExit(await stack.up());
  const summary = (await stack.outputs()).summary as string;
  expect(summary).toMatch(/^TVD red \(bridge tvd-red, VXLAN \d+\): 6 members$/m);
  expect(summary).toMatch(/^TVD blue \(bridge tvd-blue, VXLAN \d+\): 3 members$/m);
  // Issue 13: every member's vTPM owned by the system, its EK and AK certified: the summary
  // prints the TPM version, both fingerprints and both certificate serials per member.
  const rows = summary.split("\n").filter((l) => /^(red|blue)-\S+\s/.test(l));
  expect(rows).toHaveLength(9);
  for (const row of rows)
    expect(row).toMatch(/\s1\.2\s+sha256:[0-9a-f]{16}\s+sha256:[0-9a-f]{16}\s+[0-9a-f]{32}\s+[0-9a-f]{32}$/);
  expectExit(await stack.preview({ expectNoChanges: true }));
  // Regression (demo preview --refresh --diff showed every TvdNetwork's ports as changed): a
  // refresh right after a clean up finds nothing on any host, not even a moved output.
  const refreshed = await stack.preview({ refresh: true, expectNoChanges: true });
  expectExit(refreshed);
  expect(
    refreshed.steps
      .filter((s) => s.op !== "same" && (s.op !== "refresh" || s.changedOutputs.length > 0))
      .map((s) => `${s.name} ${s.op}: ${[...s.changedInputs, ...s.changedOutputs].join(", ")}`),
  ).toEqual([]);
});

it("keeps each TVD to itself, even on the same hosts and subnet", async () => {
  const members = (await stack.outputs()).members as Record<
    string,
    Record<string, { host: string; ip: string }>
  >;
  const addr = (tvd: string, m: string) => members[tvd][m].ip.split("/")[0];
  const blueWeb = members.blue["blue-web"];
  // Within a TVD, across hosts.
  expect(await lab.guestPings("dom0-a", "red-01", addr("red", "red-03"))).toBe(true);
  expect(await lab.guestPings(blueWeb.host, "blue-web", addr("blue", "blue-api"))).toBe(true);
  // Across TVDs: never, whichever host the other member is on.
  for (const red of ["red-01", "red-02", "red-03"]) {
    expect(await lab.guestPings(blueWeb.host, "blue-web", addr("red", red))).toBe(false);
  }
  expect(await lab.guestPings("dom0-b", "red-02", addr("blue", "blue-web"))).toBe(false);
});

it("destroys both TVDs", async () => {
  expectExit(await stack.destroy());
  for (const h of ["dom0-a", "dom0-b", "dom0-c"]) {
    expect((await lab.xl(h, "list")).stdout.trim().split("\n")).toHaveLength(2);
  }
});
