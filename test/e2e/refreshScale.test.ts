/**
 * A refresh at scale through the real Pulumi CLI (issue 14, item 2): G guests, each with its vTPM,
 * and a vTPM manager per host, on H lab hosts. Times a fresh preview, up, a preview, a preview
 * --refresh and destroy, and counts the refresh's SSH connects and round trips per host from
 * $PULUMI_TVD_STATS. Reads are coalesced per host (provider/dom0/readBatch.ts), so the refresh
 * makes at most one round trip per host per wave of reads the engine issues (--parallel of them
 * at a time), not one per resource; and each drift is still found on its own resource.
 *
 * CI runs it small (1 host, 6 guests). The bench runs it at the scale and writes
 * bench/results/refresh-profile.json under the label it is given:
 *   TVD_REFRESH_HOSTS=3 TVD_REFRESH_GUESTS=99 TVD_REFRESH_PROFILE=after \
 *     flock /tmp/tvd-lab.lock npx jest test/e2e/refreshScale.test.ts
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack, type OperationResult } from "./pulumi";

jest.setTimeout(120 * 60_000);

const HOSTS = Number(process.env.TVD_REFRESH_HOSTS ?? 1);
const GUESTS = Number(process.env.TVD_REFRESH_GUESTS ?? 6);
const PROFILE = process.env.TVD_REFRESH_PROFILE;
/**
 * Pulumi's own bound on steps at once, as the README advises for pulumi-tvd (which bounds each
 * host itself): reads come in waves of at most this. With the CLI's default (4 per CPU) the engine
 * issues each next read as one ends, a sliding window in which reads meet less often;
 * `PULUMI_PARALLEL=8` measures that.
 */
const PARALLEL = Number(process.env.PULUMI_PARALLEL ?? 512);

const PROGRAM = `const pulumi = require("@pulumi/pulumi");
const tvd = require("pulumi-tvd");
const config = new pulumi.Config();
const hosts = config.requireSecretObject("hosts");
const count = config.requireNumber("hostCount");
const guests = config.requireNumber("guests");
for (let h = 0; h < count; h++) {
  const connection = hosts.apply((all) => all[h]);
  const manager = new tvd.VtpmManager("mgr" + h, { connection, name: "vtpmmgr", readyTimeoutSec: 60 });
  for (let g = h; g < guests; g += count) {
    const name = "g" + g;
    const vtpm = new tvd.Vtpm(name + "-vtpm", { connection, name: name + "-vtpm", manager, readyTimeoutSec: 120 });
    new tvd.Guest(name, {
      connection,
      name,
      baseImage: "/var/lib/xen/images/debian-base.raw",
      memoryMiB: 64,
      kernel: "/usr/lib/xen/boot/vmlinuz",
      vtpm,
    });
  }
}
`;

let lab: TestLab;
let stack: TestStack;
let stats: string;
let programDir: string;
const profile: Record<string, unknown> = {};
const resources = GUESTS * 2 + HOSTS;

beforeAll(async () => {
  lab = await startTestLab({ hosts: HOSTS });
  stats = path.join(lab.stateDir, "stats.jsonl");
  programDir = path.join(lab.stateDir, "program");
  mkdirSync(programDir);
  writeFileSync(path.join(programDir, "Pulumi.yaml"), "name: refresh-scale\nruntime: nodejs\n");
  writeFileSync(path.join(programDir, "index.js"), PROGRAM);
  stack = await TestStack.create({
    programDir,
    env: { PULUMI_TVD_STATS: stats, PULUMI_PARALLEL: String(PARALLEL) },
  });
  const hosts = lab.hosts.map((h) => lab.connection(h.name));
  await stack.setConfig("hosts", JSON.stringify(hosts), true);
  await stack.setConfig("hostCount", String(HOSTS));
  await stack.setConfig("guests", String(GUESTS));
});

afterAll(() => disposeThen(stack, () => lab?.stop()));

interface Stat {
  readonly event: "connect" | "exec";
  readonly endpoint: string;
  readonly step?: string;
}

/** Runs an operation, timing it and counting its connects and round trips per host. */
async function measured(
  name: string,
  op: () => Promise<OperationResult>,
): Promise<{ result: OperationResult; execsPerHost: number[] }> {
  rmSync(stats, { force: true });
  const t = Date.now();
  const result = await op();
  const sec = (Date.now() - t) / 1000;
  expectExit(result);
  const lines: Stat[] = existsSync(stats)
    ? readFileSync(stats, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Stat)
    : [];
  const endpoints = lab.hosts.map((h) => `${h.user}@${h.host}:${h.port}`);
  const execsPerHost = endpoints.map(
    (e) => lines.filter((l) => l.event === "exec" && l.endpoint === e).length,
  );
  const steps: Record<string, number> = {};
  for (const l of lines.filter((x) => x.event === "exec")) steps[l.step!] = (steps[l.step!] ?? 0) + 1;
  profile[name] = {
    sec,
    connects: lines.filter((l) => l.event === "connect").length,
    roundTrips: lines.filter((l) => l.event === "exec").length,
    roundTripsPerHost: execsPerHost,
    steps,
  };
  return { result, execsPerHost };
}

it(`measures ${resources} resources on ${HOSTS} host(s): preview, up, preview --refresh, destroy`, async () => {
  await measured("previewFresh", () => stack.preview());
  await measured("up", () => stack.up());
  await measured("preview", () => stack.preview({ expectNoChanges: true }));
  const refresh = await measured("previewRefresh", () =>
    stack.preview({ expectNoChanges: true, refresh: true }),
  );
  // Reads come in waves of at most PARALLEL; each wave is at most one round trip per host.
  const waves = Math.ceil(resources / PARALLEL);
  for (const n of refresh.execsPerHost) expect(n).toBeLessThanOrEqual(waves);
  profile.readsPerWave = PARALLEL;
});

it("a refresh finds each kind of drift on its own resource, still coalesced", async () => {
  const A = lab.hosts[0].name;
  // On the first host: g0's overlay deleted, its vTPM's config naming another UUID, the next
  // guest's memory edited in its config, the one after it stopped.
  const [edited, stopped] = [`g${HOSTS}`, `g${2 * HOSTS}`];
  await lab.check(A, "rm -f /var/lib/xen/images/g0.qcow2");
  await lab.check(
    A,
    "sed -i 's/uuid=[0-9a-f-]*/uuid=00000000-0000-4000-8000-000000000001/' /etc/xen/g0-vtpm.cfg",
  );
  await lab.check(A, 'sed -i "s/^memory *=.*/memory = 96/" "$1"', `/etc/xen/${edited}.cfg`);
  expect((await lab.xl(A, "destroy", stopped)).exitCode).toBe(0);
  const { result, execsPerHost } = await measured("driftRefresh", () => stack.preview({ refresh: true }));
  const step = (name: string, op: string) => result.steps.find((s) => s.name === name && s.op === op);
  expect(step("g0", "refresh")?.changedOutputs).toContain("overlayPath");
  expect(step("g0", "update")).toBeDefined();
  expect(step("g0-vtpm", "update")?.changedInputs).toEqual(["uuid"]);
  expect(step(edited, "update")?.changedInputs).toEqual(["memoryMiB"]);
  expect(step(stopped, "update")?.changedInputs).toEqual(["running"]);
  const updated = result.steps.filter((s) => s.op === "update").map((s) => s.name);
  expect(updated.sort()).toEqual(["g0", "g0-vtpm", edited, stopped].sort());
  expect(execsPerHost[0]).toBeLessThanOrEqual(Math.ceil(resources / PARALLEL));
  // up --refresh (what was found above is not in the state: a preview keeps nothing) repairs it.
  expectExit(await stack.up({ refresh: true }));
  // Repaired: a refresh finds nothing, and no step is planned (named here when one is).
  const again = await stack.preview({ refresh: true });
  expectExit(again);
  const planned = again.steps
    .filter((s) => (s.op === "refresh" ? s.changedOutputs.length > 0 : s.op !== "same"))
    .map((s) => [s.name, s.op, s.op === "refresh" ? s.changedOutputs : s.changedInputs]);
  expect(planned).toEqual([]);
});

it("destroy leaves no domain", async () => {
  await measured("destroy", () => stack.destroy());
  for (const h of lab.hosts) expect(await lab.domainNames(h.name)).toEqual([]);
  if (PROFILE) {
    const file = path.resolve(__dirname, "..", "..", "bench", "results", "refresh-profile.json");
    const all = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    all[PROFILE] = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, kernel: os.release() },
      hosts: HOSTS,
      guests: GUESTS,
      resources,
      ...profile,
    };
    writeFileSync(file, JSON.stringify(all, null, 2) + "\n");
  }
});
