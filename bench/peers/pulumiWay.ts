/**
 * The work done by pulumi-tvd through the real Pulumi CLI: a generated TypeScript program
 * (VtpmManager per host, Vtpm + Guest per guest), the library installed from its packed tarball as
 * a user's project has it (test/e2e/consumer.ts), a file backend. Each operation is timed; its SSH
 * connects and round trips are counted from $PULUMI_TVD_STATS; during `up` the provider process's
 * peak memory is sampled from /proc.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { run } from "../../lab/exec";
import { cpuMeter, procKiB, type CpuFigures } from "../common";
import { consumerNodeModules, localBackendEnv } from "../../test/e2e/consumer";
import { GUEST_MEMORY_MIB, KERNEL, MANAGER, type Placement } from "./workload";

/** The program a user would write: one manager per host, per guest its vTPM and the guest. */
const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import * as tvd from "pulumi-tvd";

const config = new pulumi.Config();
const hosts = config.requireSecretObject<Record<string, unknown>[]>("hosts");
const placement = config.requireObject<string[][]>("placement");
const baseImage = config.require("baseImage");

placement.forEach((guests, h) => {
  const connection = hosts.apply((all) => all[h]);
  const manager = new tvd.VtpmManager(\`mgr\${h}\`, { connection, name: "${MANAGER}", readyTimeoutSec: 120 });
  for (const name of guests) {
    const vtpm = new tvd.Vtpm(\`\${name}-vtpm\`, {
      connection,
      name: \`\${name}-vtpm\`,
      manager,
      // The bench leaves no keys behind; a real stack keeps the default, "archive".
      deletionPolicy: "destroy",
      readyTimeoutSec: 300,
    });
    new tvd.Guest(name, { connection, name, baseImage, memoryMiB: ${GUEST_MEMORY_MIB}, kernel: "${KERNEL}", vtpm });
  }
});
`;

interface Stat {
  readonly event: "connect" | "exec";
  readonly endpoint: string;
}

interface EngineEvent {
  readonly resOutputsEvent?: { metadata: { op: string; urn: string; type: string } };
  readonly summaryEvent?: { resourceChanges?: Record<string, number> };
}

export interface PulumiOp {
  readonly sec: number;
  readonly connects: number;
  readonly roundTrips: number;
  readonly roundTripsPerHost: number[];
  /** The summary's counts per operation, the stack counted too, e.g. { same: 64 }. */
  readonly changes: Record<string, number>;
  /** Resources the operation read from their hosts (refresh steps), stack left out. */
  readonly refreshed: number;
  /** Peak resident memory (VmHWM) of the provider process(es), when sampled. */
  readonly providerPeakMiB?: number;
  /**
   * The stack's state file after the operation, in bytes: the engine serializes, checksums and
   * writes all of it (and a backup copy) after every step, which was 70 % of its CPU in `up`.
   */
  readonly stateBytes?: number;
  readonly cpu: CpuFigures;
}

/** Node processes running Pulumi's dynamic provider (what pulumi-resource-pulumi-nodejs starts). */
function providerPids(): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (cmd.includes("cmd/dynamic-provider") && !cmd.startsWith("/bin/sh")) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Samples the provider's peak memory every 100 ms until stopped; the peak of any one process (MiB). */
function sampleProviderPeak(): () => number {
  const peak = new Map<number, number>();
  const timer = setInterval(() => {
    for (const pid of providerPids())
      peak.set(pid, Math.max(peak.get(pid) ?? 0, procKiB(pid, "status", "VmHWM")));
  }, 100);
  return () => {
    clearInterval(timer);
    return Math.round(Math.max(0, ...peak.values()) / 1024);
  };
}

/**
 * The CLI's own CPU profile of an operation (`--profiling`: Go's pprof, `<dir>/<op>.<pid>.cpu`) when
 * the bench runs with `--engine-profile <dir>` (PULUMI_TVD_BENCH_ENGINE_PROFILE), to see where the
 * engine's time goes; `go tool pprof -top <pulumi binary> <file>` reads it.
 */
function engineProfiling(args: readonly string[]): string[] {
  const dir = process.env.PULUMI_TVD_BENCH_ENGINE_PROFILE;
  if (!dir) return [];
  mkdirSync(dir, { recursive: true });
  // "up", "preview", "preview-refresh", "refresh", "destroy": the operation's words and --refresh.
  const words = args.filter((a) => !a.startsWith("-"));
  const name = [...words, ...(args.includes("--refresh") ? ["refresh"] : [])].join("-");
  return ["--profiling", path.join(dir, name)];
}

export class PulumiWay {
  private readonly programDir: string;
  private readonly statsFile: string;
  private readonly stateFile: string;
  private readonly env: NodeJS.ProcessEnv;

  private constructor(
    private readonly workDir: string,
    private readonly placements: readonly Placement[],
  ) {
    this.programDir = path.join(workDir, "program");
    this.statsFile = path.join(workDir, "stats.jsonl");
    this.stateFile = path.join(workDir, "state", ".pulumi", "stacks", "peers-bench", "bench.json");
    this.env = {
      ...localBackendEnv(workDir, "pulumi-tvd-bench-passphrase"),
      PULUMI_TVD_STATS: this.statsFile,
    };
  }

  /** A stack of the program over `placements`, its guests on `baseImage`. */
  static async create(
    workDir: string,
    placements: readonly Placement[],
    baseImage: string,
  ): Promise<PulumiWay> {
    const way = new PulumiWay(workDir, placements);
    mkdirSync(way.programDir, { recursive: true });
    mkdirSync(path.join(workDir, "state"), { recursive: true });
    writeFileSync(
      path.join(way.programDir, "Pulumi.yaml"),
      "name: peers-bench\nruntime: nodejs\nmain: index.js\n",
    );
    writeFileSync(path.join(way.programDir, "index.ts"), PROGRAM);
    // The consumer project has no TypeScript compiler; the program runs as the JavaScript tsc makes of it.
    const js = ts.transpileModule(PROGRAM, {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    });
    writeFileSync(path.join(way.programDir, "index.js"), js.outputText);
    symlinkSync(consumerNodeModules(), path.join(way.programDir, "node_modules"), "dir");
    await way.cli(["stack", "init", "bench"]);
    const hosts = placements.map(({ host: h }) => ({
      host: h.host,
      port: h.port,
      user: h.user,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
    }));
    await way.cli(["config", "set", "--raw", "--secret", "hosts"], JSON.stringify(hosts));
    await way.cli(["config", "set", "--raw", "placement"], JSON.stringify(placements.map((p) => p.guests)));
    await way.cli(["config", "set", "--raw", "baseImage"], baseImage);
    return way;
  }

  /** Resources the program declares. */
  get resources(): number {
    return this.placements.reduce((n, p) => n + 1 + 2 * p.guests.length, 0);
  }

  /** What the engine's summary counts: the resources and the stack itself. */
  private get withStack(): number {
    return this.resources + 1;
  }

  private async cli(args: readonly string[], input?: string): Promise<string> {
    const r = await run(["pulumi", "--non-interactive", ...args], {
      cwd: this.programDir,
      env: this.env,
      input,
      timeoutMs: 60 * 60_000,
    });
    if (r.code !== 0)
      throw new Error(
        `pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      );
    return r.stdout;
  }

  private async operation(args: string[], sampleMemory = false): Promise<PulumiOp> {
    rmSync(this.statsFile, { force: true });
    const stopSampling = sampleMemory ? sampleProviderPeak() : undefined;
    const t = Date.now();
    const cpuSoFar = cpuMeter();
    let stdout: string;
    let providerPeakMiB: number | undefined;
    try {
      stdout = await this.cli([
        ...args,
        "--stack",
        "bench",
        "--color",
        "never",
        "--json",
        ...engineProfiling(args),
      ]);
    } finally {
      providerPeakMiB = stopSampling?.();
    }
    const sec = (Date.now() - t) / 1000;
    const cpu = cpuSoFar();
    const stats: Stat[] = existsSync(this.statsFile)
      ? readFileSync(this.statsFile, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Stat)
      : [];
    const events: EngineEvent[] = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as EngineEvent);
    const refreshedUrns = new Set(
      events
        .map((e) => e.resOutputsEvent?.metadata)
        .filter((m) => m && m.op === "refresh" && m.type !== "pulumi:pulumi:Stack")
        .map((m) => m!.urn),
    );
    const endpoints = this.placements.map(({ host: h }) => `${h.user}@${h.host}:${h.port}`);
    return {
      sec,
      connects: stats.filter((s) => s.event === "connect").length,
      roundTrips: stats.filter((s) => s.event === "exec").length,
      roundTripsPerHost: endpoints.map(
        (e) => stats.filter((s) => s.event === "exec" && s.endpoint === e).length,
      ),
      changes: events.find((e) => e.summaryEvent)?.summaryEvent?.resourceChanges ?? {},
      refreshed: refreshedUrns.size,
      ...(providerPeakMiB !== undefined ? { providerPeakMiB } : {}),
      ...(existsSync(this.stateFile) ? { stateBytes: statSync(this.stateFile).size } : {}),
      cpu,
    };
  }

  /** Throws unless the operation left every resource as it was (`same`) and reached the count. */
  private expectAllSame(what: string, op: PulumiOp): void {
    if (op.changes.same !== this.withStack || Object.keys(op.changes).some((k) => k !== "same"))
      throw new Error(
        `pulumi-tvd ${what}: expected ${this.withStack} the same (the stack too), got ${JSON.stringify(op.changes)}`,
      );
  }

  async up(): Promise<PulumiOp> {
    const op = await this.operation(["up", "--yes"], true);
    if (op.changes.create !== this.withStack)
      throw new Error(
        `pulumi-tvd up created ${JSON.stringify(op.changes)}, expected ${this.withStack} (the stack too)`,
      );
    return op;
  }

  /** `preview` with no refresh: throws if it touched a host. */
  async preview(): Promise<PulumiOp> {
    const op = await this.operation(["preview", "--expect-no-changes"]);
    this.expectAllSame("preview", op);
    if (op.connects || op.roundTrips)
      throw new Error(
        `pulumi-tvd preview contacted hosts: ${op.connects} connects, ${op.roundTrips} round trips`,
      );
    return op;
  }

  /** `preview --refresh`: throws unless it read every resource back and found it as created. */
  async previewRefresh(): Promise<PulumiOp> {
    const op = await this.operation(["preview", "--refresh", "--expect-no-changes"]);
    this.expectAllSame("preview --refresh", op);
    if (op.refreshed !== this.resources)
      throw new Error(
        `pulumi-tvd preview --refresh read ${op.refreshed} resources, expected ${this.resources}`,
      );
    return op;
  }

  /**
   * `refresh` (one read, no preview of it): throws unless every resource was read and found as it
   * was. Its JSON display may leave unchanged resources out (--show-sames asks for them); the
   * engine's summary counts them either way, so either proves the read.
   */
  async refresh(): Promise<PulumiOp> {
    const op = await this.operation(["refresh", "--yes", "--skip-preview", "--show-sames"]);
    const refreshed = op.refreshed || (op.changes.same === this.withStack ? this.resources : 0);
    if (refreshed !== this.resources || op.roundTripsPerHost.some((n) => n === 0))
      throw new Error(
        `pulumi-tvd refresh read ${op.refreshed} resources (summary ${JSON.stringify(op.changes)}, ` +
          `round trips per host ${op.roundTripsPerHost.join(",")}), expected ${this.resources} on every host`,
      );
    return { ...op, refreshed };
  }

  async destroy(): Promise<PulumiOp> {
    const op = await this.operation(["destroy", "--yes"]);
    if (op.changes.delete !== this.withStack)
      throw new Error(
        `pulumi-tvd destroy deleted ${JSON.stringify(op.changes)}, expected ${this.withStack} (the stack too)`,
      );
    return op;
  }

  /** Removes the stack and its files (after destroy). */
  async dispose(): Promise<void> {
    await this.cli(["stack", "rm", "--yes", "--force", "bench"]).catch(() => undefined);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
