/**
 * pulumi-tvd against how ops teams do this today (issue 14, item 1): the same work on one lab of
 * 3 hosts (per host a vTPM manager; per guest a vTPM and a guest with it attached) done by
 * pulumi-tvd through the Pulumi CLI, by Ansible with its defaults and with pipelining, and by a
 * script that starts one ssh process per command; and by the dom0s alone, that script's commands
 * run in the hosts' namespaces with no SSH and no tool (`dom0`: what every way pays the hosts, the
 * floor under them all). Then pulumi-tvd `up` of the same guests on a
 * 1 GiB and a 20 GiB sparse base image. Writes bench/results/peers.json: each figure, the ratios,
 * the machine. A run of other sizes than the three writes peers.<sizes>.json (peers.99.json), so
 * the last full run's figures stay.
 *
 *   npm run bench:peers -- [--guests 30,99,300] [--ways pulumi-tvd,ansible-defaults,ansible-pipelining,ssh,dom0]
 *     [--parallel 512] [--no-compile-cache] [--no-lazy-typescript] [--pulumi-tvd-only] [--engine-profile DIR] [--scope "..."]
 *   (or: npm run build:lab && node build/bench/peers.js ...)
 *
 * pulumi-tvd runs with Pulumi's own bound on steps at once (`PULUMI_PARALLEL`) at 512, as the
 * README advises: pulumi-tvd bounds each host itself (8 SSH channels, reads coalesced), so the
 * CLI's default (4 per CPU) only queues work in front of it. `--parallel 8` measures the default.
 *
 * Builds the library's consumer package (as the e2e tests do), uses its own lab state dir and
 * ports, and tears the lab down at the end. Run it alone on the machine, under the lab lock.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { labDown, labHosts, labUp } from "../lab/lab";
import { buildConsumer, withLazyTypescript } from "../test/e2e/consumer";
import { runMain, writeResult, type CpuFigures } from "./common";
import {
  measurePulumiTvdOnly,
  measureSize,
  smallProgramPreview,
  WAYS,
  type PulumiFigures,
  type SizeFigures,
  type Way,
} from "./peers/measure";
import type { PulumiOp } from "./peers/pulumiWay";
import { LAB_BASE_IMAGE, seedBaseImages } from "./peers/workload";

const HOSTS = 3;
const BASE_SIZES_GIB = [1, 20];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function sizesFrom(text: string): number[] {
  const sizes = text.split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < HOSTS))
    throw new Error(
      `--guests must list whole numbers of at least ${HOSTS} (one per host), like 30,99,300; got ${text}`,
    );
  return sizes;
}

function version(argv: string[], pattern: RegExp): string {
  try {
    // ssh -V prints on stderr.
    const out = execFileSync("sh", ["-c", '"$@" 2>&1', "sh", ...argv], { encoding: "utf8" });
    return pattern.exec(out)?.[1] ?? out.trim().split("\n")[0];
  } catch (e) {
    return `unknown (${(e as Error).message.split("\n")[0]})`;
  }
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The ratios issue 14 asks for, from one size's figures: those whose ways the run measured. */
function ratiosOf(f: SizeFigures, smallPreviewSec: number): Record<string, number> {
  const { pulumiTvd: p, ansibleDefaults: d, ansiblePipelining: a, sshPerCommand: s, dom0Alone: o } = f;
  const cores = os.cpus().length;
  const r: Record<string, number> = {};
  if (p) {
    const perHost = p.refresh.roundTripsPerHost;
    Object.assign(r, {
      previewMinusSmallProgramPreviewSec: round(p.preview.sec - smallPreviewSec),
      refreshRoundTripsPerHostMax: Math.max(...perHost),
      refreshRoundTripsPerHostMean: round(perHost.reduce((x, y) => x + y, 0) / perHost.length, 1),
      refreshRoundTripsPerResource: round(p.refresh.roundTrips / f.resources),
      // What no way can go below on this machine: the CPU the new vTPMs' own TPMs spent during
      // `up` (each makes its endorsement key at first start), spread over every core.
      upVtpmWorkFloorSec: round(p.up.cpu.swtpmCpuSec / cores, 1),
      upOverVtpmWorkFloor: round(p.up.sec / (p.up.cpu.swtpmCpuSec / cores)),
    });
  }
  if (p && d)
    Object.assign(r, {
      previewRefreshOverAnsibleCheckDefaults: round(p.previewRefresh.sec / d.check.sec),
      upOverAnsibleCreateDefaults: round(p.up.sec / d.create.sec),
      destroyOverAnsibleDefaults: round(p.destroy.sec / d.destroy.sec),
    });
  if (p && a)
    Object.assign(r, {
      previewRefreshOverAnsibleCheckPipelining: round(p.previewRefresh.sec / a.check.sec),
      upOverAnsibleCreatePipelining: round(p.up.sec / a.create.sec),
    });
  if (p && s)
    Object.assign(r, {
      upOverSshPerCommandCreate: round(p.up.sec / s.create.sec),
      destroyOverSshPerCommand: round(p.destroy.sec / s.destroy.sec),
    });
  if (o) {
    // The dom0s' own CPU for the create, spread over every core: no way creates these guests on
    // this machine in less wall time than this.
    const floor = o.create.cpu.machineCpuSec / cores;
    r.dom0AloneCreateCpuFloorSec = round(floor, 1);
    if (p) r.upOverDom0AloneCreate = round(p.up.sec / o.create.sec);
    if (p) r.upOverDom0AloneCreateCpuFloor = round(p.up.sec / floor);
    if (s) r.sshPerCommandCreateOverDom0AloneCreate = round(s.create.sec / o.create.sec);
    // What issue 14's `up` goals ask, set against that floor.
    if (d) r.upGoalTenTimesAnsibleSec = round(d.create.sec / 10, 1);
    if (s) r.upGoalThreeTimesSshSec = round(s.create.sec / 3, 1);
  }
  const [small, large] = BASE_SIZES_GIB.map((g) => f.baseImageUp[`${g}GiB`]?.up.sec);
  if (small && large) r.up20GiBOver1GiBBase = round(large / small);
  return r;
}

const sec = (x: number) => `${round(x, 1)} s`;
const cpu = (x: number) => `${round(x, 1)} CPU-s`;

/** An operation as the table shows it: its seconds and the machine's CPU (and swtpm's) meanwhile. */
interface Timed {
  readonly sec: number;
  readonly cpu: CpuFigures;
}

/** A way's column: its create, read back, preview and destroy (a dash where the way has none). */
function column(
  title: string,
  create: Timed,
  read: Timed | undefined,
  preview: Timed | undefined,
  destroy: Timed,
) {
  const dash = "–";
  return {
    title,
    cells: [
      sec(create.sec),
      read ? sec(read.sec) : dash,
      preview ? sec(preview.sec) : dash,
      sec(destroy.sec),
      cpu(create.cpu.machineCpuSec),
      cpu(create.cpu.swtpmCpuSec),
      read ? cpu(read.cpu.machineCpuSec) : dash,
    ],
  };
}

/** The issue's table for one size, as bench/README.md shows it: a column for each way measured. */
function tableOf(f: SizeFigures): string {
  const { pulumiTvd: p, ansibleDefaults: d, ansiblePipelining: a, sshPerCommand: s, dom0Alone: o } = f;
  const columns = [
    p && column("pulumi-tvd", p.up, p.previewRefresh, p.preview, p.destroy),
    d && column("Ansible 2.14, defaults", d.create, d.check, undefined, d.destroy),
    a && column("Ansible, pipelining", a.create, a.check, undefined, a.destroy),
    s && column("one ssh process per command", s.create, s.readBack, undefined, s.destroy),
    o &&
      column(
        `the dom0s alone (no SSH, ${o.create.concurrency} guests a host at once)`,
        o.create,
        undefined,
        undefined,
        o.destroy,
      ),
  ].filter((c) => c !== undefined);
  const rows = [
    "create everything",
    "read everything back (`preview --refresh` / `--check`)",
    "`preview` with no host contact",
    "destroy everything",
    "CPU of the machine during create",
    "of it the vTPMs' own (swtpm)",
    "CPU of the machine during the read",
  ];
  return [
    `${f.guests} guests on ${f.hosts} hosts (${f.resources} resources)`,
    "",
    `| operation | ${columns.map((c) => c.title).join(" | ")} |`,
    `| --- |${columns.map(() => " --- |").join("")}`,
    ...rows.map((label, i) => `| ${label} | ${columns.map((c) => c.cells[i]).join(" | ")} |`),
    "",
  ].join("\n");
}

function waysFrom(text: string | undefined): readonly Way[] {
  if (text === undefined) return WAYS;
  const ways = text.split(",");
  const unknown = ways.filter((w) => !(WAYS as readonly string[]).includes(w));
  if (unknown.length)
    throw new Error(`--ways must list some of ${WAYS.join(",")}, like ssh,dom0,pulumi-tvd; got ${text}`);
  return ways as Way[];
}

async function main(): Promise<void> {
  const sizes = sizesFrom(option("--guests") ?? "30,99,300");
  const parallel = Number(option("--parallel") ?? 512);
  if (!Number.isInteger(parallel) || parallel < 1)
    throw new Error(`--parallel must be a whole number of at least 1, like 512; got ${option("--parallel")}`);
  // Every pulumi run of the bench inherits it (PulumiWay passes the environment on).
  process.env.PULUMI_PARALLEL = String(parallel);
  const compileCache = !process.argv.includes("--no-compile-cache");
  const lazyTypescript = !process.argv.includes("--no-lazy-typescript");
  // pulumi-tvd's column alone, for a change's before and after (no ratios: they need every way).
  const pulumiTvdOnly = process.argv.includes("--pulumi-tvd-only");
  // Some of the ways in one run (all of them unless told); a run of fewer writes peers.<sizes>.<ways>.json.
  const ways = waysFrom(option("--ways"));
  const someWays = ways.length < WAYS.length ? `.${ways.join("-")}` : "";
  // The Pulumi CLI's own CPU profile of each operation (see engineProfiling in peers/pulumiWay.ts).
  const engineProfile = option("--engine-profile");
  if (engineProfile) process.env.PULUMI_TVD_BENCH_ENGINE_PROFILE = path.resolve(engineProfile);
  const resultFile = pulumiTvdOnly
    ? `peers.${sizes.join("-")}.pulumi-tvd-only.json`
    : sizes.join(",") === "30,99,300" && !someWays
      ? "peers.json"
      : `peers.${sizes.join("-")}${someWays}.json`;
  const scope =
    option("--scope") ??
    `${sizes.join(",") === "30,99,300" ? "every size" : `${sizes.join(",")} only`}, ${someWays ? `ways ${ways.join(",")}` : "every way"}`;
  process.stderr.write("[peers] building the consumer package (npm run build, pack, install)\n");
  await buildConsumer();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "tvd-bench-peers-"));
  const workDir = path.join(stateDir, "work");
  mkdirSync(workDir);
  // As the README's "Large stacks" advises a pipeline that runs many CLI operations: programs and
  // providers share Node's compile cache (warmed by the first run). --no-compile-cache leaves it out.
  if (compileCache) process.env.NODE_COMPILE_CACHE = path.join(stateDir, "node-compile-cache");
  else delete process.env.NODE_COMPILE_CACHE;
  // The same section's preload: no TypeScript compiler in processes that never run it.
  // --no-lazy-typescript leaves it out.
  if (lazyTypescript) process.env.NODE_OPTIONS = withLazyTypescript(process.env.NODE_OPTIONS);
  const figures: Record<string, SizeFigures & { measuredAt: string }> = {};
  const ratios: Record<string, Record<string, number>> = {};
  let small: PulumiOp | undefined;
  const resultOf = (f: typeof figures, r: typeof ratios) => ({
    date: new Date().toISOString(),
    scope: `${scope}${Object.keys(f).length < sizes.length ? ` (so far: ${Object.keys(f).join(",")})` : ""}`,
    machine: {
      cores: os.cpus().length,
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      kernel: os.release(),
    },
    versions: {
      pulumi: version(["pulumi", "version"], /v?(\S+)/),
      ansible: version(["ansible", "--version"], /ansible \[core ([^\]]+)\]/),
      node: process.version,
      openssh: version(["ssh", "-V"], /(OpenSSH_\S+)/),
      pulumiTvd: version(
        ["git", "-C", path.resolve(__dirname, "..", ".."), "rev-parse", "--short", "HEAD"],
        /(\S+)/,
      ),
    },
    hosts: HOSTS,
    /** Pulumi's bound on steps at once (PULUMI_PARALLEL) in every pulumi-tvd run. */
    pulumiParallel: parallel,
    /** Whether pulumi-tvd's programs and providers shared Node's compile cache (NODE_COMPILE_CACHE). */
    nodeCompileCache: compileCache,
    /** Whether they ran with `--require pulumi-tvd/lazy-typescript` in NODE_OPTIONS. */
    lazyTypescript,
    smallProgramPreview: small,
    figures: f,
    ratios: r,
  });
  try {
    // 300 guests are 100 a host: 64 MiB each, their vTPMs 8. Sparse 20 GiB base: room in a sparse fs.
    await labUp(stateDir, { hosts: HOSTS, firstPort: 24301, memoryMiB: 65536, diskMiB: 32768 });
    const hosts = labHosts(stateDir);
    const baseImages = await seedBaseImages(hosts, BASE_SIZES_GIB);
    const lab = { hosts, workDir, bases: [LAB_BASE_IMAGE, ...Object.values(baseImages)] };
    if (pulumiTvdOnly || ways.includes("pulumi-tvd")) {
      process.stderr.write("[peers] a 3-resource program's preview\n");
      small = await smallProgramPreview(lab);
    }
    if (pulumiTvdOnly) {
      const only: Record<string, { pulumiTvd: PulumiFigures; measuredAt: string }> = {};
      for (const guests of sizes) {
        only[guests] = {
          pulumiTvd: await measurePulumiTvdOnly(lab, guests),
          measuredAt: new Date().toISOString(),
        };
        writeResult(resultFile, { ...resultOf({}, {}), scope: `${scope}, pulumi-tvd only`, figures: only });
      }
      console.log(JSON.stringify(only, null, 2));
      return;
    }
    for (const guests of sizes) {
      const byLabel = Object.fromEntries(BASE_SIZES_GIB.map((g) => [`${g}GiB`, baseImages[g]]));
      figures[guests] = {
        ...(await measureSize(lab, guests, byLabel, ways)),
        measuredAt: new Date().toISOString(),
      };
      ratios[guests] = ratiosOf(figures[guests], small?.sec ?? NaN);
      // Written after each size, so that a later size that fails keeps what this one measured.
      writeResult(resultFile, resultOf(figures, ratios));
    }
    console.log(Object.values(figures).map(tableOf).join("\n"));
    console.log(JSON.stringify({ scope, ratios }, null, 2));
  } finally {
    await labDown(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

runMain(main);
