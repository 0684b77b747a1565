/**
 * Runs the real Pulumi CLI against a throwaway stack: a temporary file backend, a temporary
 * PULUMI_HOME, a passphrase, no update checks and no plugin downloads. Every operation writes
 * the engine's event log, which the result exposes per resource.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import * as ts from "typescript";
import { run, type RunResult } from "../../lab/exec";
import type { HostEntry } from "../support/lab";
import { assertNoFindings, SecretScan, type CliRun } from "../support/secrets";
import { consumerNodeModules, localBackendEnv, withLazyTypescript } from "./consumer";

export interface EngineEvent {
  readonly sequence: number;
  readonly timestamp: number;
  readonly resourcePreEvent?: { metadata: StepMetadata };
  readonly resOutputsEvent?: { metadata: StepMetadata };
  readonly resOpFailedEvent?: { metadata: StepMetadata; status: number; steps: number };
  readonly diagnosticEvent?: { urn?: string; message: string; severity: string };
  readonly summaryEvent?: { resourceChanges: Record<string, number> };
  readonly preludeEvent?: unknown;
  readonly cancelEvent?: unknown;
}

export interface StepMetadata {
  readonly op: string;
  readonly urn: string;
  readonly type: string;
  readonly old?: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> };
  readonly new?: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> };
  readonly diffs?: string[];
  readonly detailedDiff?: Record<string, { kind: string; inputDiff?: boolean }>;
}

export interface StepSummary {
  readonly urn: string;
  readonly name: string;
  readonly type: string;
  readonly op: string;
  /** Input properties the engine reports as changed. */
  readonly diffs: string[];
  /** Output properties whose value differs between the old and the new state (refresh drift). */
  readonly changedOutputs: string[];
  /** Input properties whose value differs between the old and the new state (what a diff shows). */
  readonly changedInputs: string[];
}

export interface OperationResult extends RunResult {
  readonly events: EngineEvent[];
  /** One entry per resource step the engine announced, in order (stack itself excluded). */
  readonly steps: StepSummary[];
  /** The summary's counts per operation, e.g. { same: 1, update: 1 }. */
  readonly changes: Record<string, number>;
  /** Error and warning diagnostics, for assertions on messages. */
  readonly diagnostics: string[];
}

export interface StackOptions {
  /** A directory with Pulumi.yaml and the program; it is copied, never modified. */
  readonly programDir: string;
  readonly stackName?: string;
  /** Config values; `secret: true` stores them encrypted. */
  readonly config?: Record<string, { value: string; secret?: boolean }>;
  /** Extra environment for every CLI run (it reaches the program and the dynamic provider). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The examples are TypeScript, as users write them; the consumer project has no TypeScript
 * compiler (a user's would), so they run as the JavaScript tsc makes of them.
 */
/**
 * The Pulumi engine gives a plugin it starts 10 s, fixed in its code (pluginRPCConnectionTimeout,
 * pkg/resource/plugin/plugin.go), to answer its first RPC. On this 2-core machine, with the suite's
 * workers and the real-Xen QEMU host running, the dynamic provider's Node.js process has missed
 * that once. Such a run failed before any resource operation reached the provider (every dynamic
 * resource goes through that one provider), so running the command again is what a user would do
 * and changes nothing else. Only that exact failure is retried.
 */
const PLUGIN_START_ATTEMPTS = 3;

export function pluginNeverStarted(r: Pick<RunResult, "code" | "stdout" | "stderr">): boolean {
  return (
    r.code !== 0 &&
    /plugin \[[^\]\n]*\] (did not come alive: [^\n]*DeadlineExceeded|did not begin responding to RPC connections)/.test(
      `${r.stdout}\n${r.stderr}`,
    )
  );
}

/** Node's compile cache for the e2e programs and their providers, kept between runs. */
const NODE_COMPILE_CACHE_DIR = path.resolve(__dirname, "..", ".work", "node-compile-cache");

function transpilePrograms(dir: string): void {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))) {
    const source = readFileSync(path.join(dir, file), "utf8");
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
      fileName: file,
    });
    writeFileSync(path.join(dir, file.replace(/\.ts$/, ".js")), outputText);
    rmSync(path.join(dir, file));
  }
  // A project whose main is a .ts file (so that it runs in place, by Node's type stripping) now
  // runs the transpiled .js.
  const project = path.join(dir, "Pulumi.yaml");
  if (existsSync(project)) {
    writeFileSync(project, readFileSync(project, "utf8").replace(/^(main:\s*\S+)\.ts\s*$/m, "$1.js"));
  }
}

function changedKeys(a: Record<string, unknown> = {}, b: Record<string, unknown> = {}): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !k.startsWith("__") && !isDeepStrictEqual(a[k], b[k])).sort();
}

function nameFromUrn(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

/** With --json (and streaming previews enabled) the CLI prints one engine event per line. */
function parseEvents(stdout: string): EngineEvent[] {
  const events: EngineEvent[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      events.push(JSON.parse(line) as EngineEvent);
    } catch {
      // a multi-line JSON document is not an event stream; ignore
    }
  }
  return events;
}

export class TestStack {
  /** Every CLI run of this stack, in order, with its output (what the secret scan reads). */
  readonly runs: CliRun[] = [];
  /**
   * The secret scan (test/support/secrets.ts): process arguments sampled during every CLI run,
   * the dom0s' files after each operation once `secrets.watchDom0s(lab)` names them, and
   * everything else at dispose, which fails on any finding.
   */
  readonly secrets: SecretScan = new SecretScan(this);

  private constructor(
    readonly workDir: string,
    readonly programDir: string,
    readonly stackName: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * The environment every CLI run of this stack gets (backend, PULUMI_HOME, passphrase): what a
   * pipeline's step that logs in to the backend gives the tools it runs.
   */
  get cliEnv(): NodeJS.ProcessEnv {
    return { ...this.env };
  }

  get passphrase(): string {
    return this.env.PULUMI_CONFIG_PASSPHRASE ?? "";
  }

  static async create(opts: StackOptions): Promise<TestStack> {
    const workDir = mkdtempSync(path.join(os.tmpdir(), "tvd-e2e-"));
    const programDir = path.join(workDir, "program");
    cpSync(opts.programDir, programDir, { recursive: true });
    transpilePrograms(programDir);
    // The program depends on pulumi-tvd as a consumer does: the packed tarball, installed.
    symlinkSync(consumerNodeModules(), path.join(programDir, "node_modules"), "dir");
    mkdirSync(path.join(workDir, "state"));
    const env: NodeJS.ProcessEnv = {
      ...localBackendEnv(workDir, "pulumi-tvd-e2e-passphrase"),
      // Every program and dynamic-provider process loads the same @pulumi/pulumi, gRPC and
      // pulumi-tvd modules; Node's on-disk compile cache saves each one ~0.2 s of CPU compiling
      // them (about 800 such processes in a run of the suite). README, "Large stacks".
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? NODE_COMPILE_CACHE_DIR,
      // And none of them loads the TypeScript compiler that @pulumi/pulumi requires at load time
      // but these processes never run (provider/lazyTypescript.ts): about 0.25 s of CPU each.
      NODE_OPTIONS: withLazyTypescript(process.env.NODE_OPTIONS),
      ...opts.env,
    };
    const stack = new TestStack(workDir, programDir, opts.stackName ?? "e2e", env);
    await stack.cli(["stack", "init", stack.stackName]);
    for (const [key, { value, secret }] of Object.entries(opts.config ?? {})) {
      await stack.setConfig(key, value, secret);
    }
    return stack;
  }

  /** Runs `pulumi <args>` in the program directory and throws unless it exits 0. */
  async cli(args: readonly string[], input?: string): Promise<RunResult> {
    const r = await this.cliRaw(args, input);
    if (r.code !== 0) {
      throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
  }

  async cliRaw(args: readonly string[], input?: string): Promise<RunResult> {
    for (let attempt = 1; ; attempt++) {
      const stopSampling = this.secrets.duringRun(args);
      let result: RunResult;
      try {
        result = await run(["pulumi", "--non-interactive", ...args], {
          cwd: this.programDir,
          env: this.env,
          input,
          timeoutMs: 15 * 60_000,
        });
        this.runs.push({ args: [...args], result });
      } finally {
        stopSampling();
      }
      if (attempt >= PLUGIN_START_ATTEMPTS || !pluginNeverStarted(result)) return result;
      process.stderr.write(
        `[e2e] pulumi ${args[0]}: the engine gave up on a plugin that was still starting (attempt ${attempt}); running it again\n`,
      );
    }
  }

  async setConfig(key: string, value: string, secret = false): Promise<void> {
    // Through stdin, so multi-line values (private keys) and values starting with '-' arrive intact.
    await this.cli(
      ["config", "set", "--raw", "--stack", this.stackName, ...(secret ? ["--secret"] : []), key],
      value,
    );
  }

  private async operation(args: string[]): Promise<OperationResult> {
    const r = await this.cliRaw([...args, "--stack", this.stackName, "--color", "never", "--json"]);
    this.secrets.afterOperation(args);
    const events = parseEvents(r.stdout);
    // A step is announced (resourcePreEvent) and then finishes (resOutputsEvent) or fails; the
    // last event of a step carries its final state, e.g. what a refresh read.
    const stepByKey = new Map<string, StepSummary>();
    const diagnostics: string[] = [];
    let changes: Record<string, number> = {};
    for (const e of events) {
      const m = e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata ?? e.resourcePreEvent?.metadata;
      if (m && m.type !== "pulumi:pulumi:Stack") {
        stepByKey.set(`${m.urn}|${m.op}`, {
          urn: m.urn,
          name: nameFromUrn(m.urn),
          type: m.type,
          op: m.op,
          diffs: m.diffs ?? [],
          changedOutputs: changedKeys(m.old?.outputs, m.new?.outputs),
          changedInputs: changedKeys(m.old?.inputs, m.new?.inputs),
        });
      }
      if (e.diagnosticEvent && ["error", "warning"].includes(e.diagnosticEvent.severity)) {
        diagnostics.push(e.diagnosticEvent.message);
      }
      if (e.summaryEvent) changes = e.summaryEvent.resourceChanges ?? {};
    }
    return { ...r, events, steps: [...stepByKey.values()], changes, diagnostics };
  }

  /** `pulumi up` as a user runs it: the preview first (check and diff of every resource), then the update. */
  up(opts: { refresh?: boolean } = {}): Promise<OperationResult> {
    return this.operation(["up", "--yes", ...(opts.refresh ? ["--refresh"] : [])]);
  }

  preview(opts: { expectNoChanges?: boolean; refresh?: boolean } = {}): Promise<OperationResult> {
    return this.operation([
      "preview",
      ...(opts.expectNoChanges ? ["--expect-no-changes"] : []),
      ...(opts.refresh ? ["--refresh"] : []),
    ]);
  }

  refresh(): Promise<OperationResult> {
    return this.operation(["refresh", "--yes", "--skip-preview"]);
  }

  destroy(): Promise<OperationResult> {
    return this.operation(["destroy", "--yes"]);
  }

  /** The stack's outputs, secrets shown. */
  async outputs(): Promise<Record<string, unknown>> {
    const r = await this.cli(["stack", "output", "--json", "--show-secrets", "--stack", this.stackName]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** The stack's checkpoint (resources with their inputs and outputs), secrets shown decrypted. */
  async exportState(): Promise<{ deployment: { resources?: Array<Record<string, unknown>> } }> {
    const r = await this.cli(["stack", "export", "--show-secrets", "--stack", this.stackName]);
    return JSON.parse(r.stdout);
  }

  /**
   * Scans for secrets in plaintext (issue 12.5), removes the stack, then fails on any finding:
   * its place and the secret's hash prefix, never the secret.
   */
  async dispose(): Promise<void> {
    let scan: Awaited<ReturnType<SecretScan["finish"]>> | undefined;
    try {
      scan = await this.secrets.finish();
    } finally {
      await this.cliRaw(["stack", "rm", "--yes", "--force", this.stackName]);
      rmSync(this.workDir, { recursive: true, force: true });
    }
    assertNoFindings(scan!.findings);
  }
}

/**
 * The config a program under test/e2e/fixtures reads to reach one lab host: its address, port
 * and host key, and the private key as a secret.
 */
export function labStackConfig(host: HostEntry): Record<string, { value: string; secret?: boolean }> {
  return {
    host: { value: host.host },
    port: { value: String(host.port) },
    hostKeyFingerprint: { value: host.hostKeyFingerprint },
    privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
  };
}

/**
 * An afterAll's teardown: disposes the stack, whose secret scan fails on any finding, then runs
 * `after` (a lab's stop) whatever the scan said.
 */
export async function disposeThen(
  stack: TestStack | undefined,
  after: () => Promise<unknown> | unknown,
): Promise<void> {
  try {
    await stack?.dispose();
  } finally {
    await after();
  }
}

/** Fails with the CLI's own output when an operation did not exit as expected. */
export function expectExit(result: OperationResult, code = 0): void {
  if (result.code !== code) {
    const text = result.events.length
      ? result.events
          .map((e) => e.diagnosticEvent)
          .filter((d) => d && d.severity !== "debug")
          .map((d) => d!.message.trimEnd())
          .join("\n")
      : result.stdout;
    throw new Error(
      `pulumi exited ${result.code}, expected ${code}\n--- output\n${text}\n--- stderr\n${result.stderr}`,
    );
  }
}

/** The one step of `op` on resource `name`; throws naming every step when there is none. */
export function stepOf(result: OperationResult, name: string, op: string): StepSummary {
  const s = result.steps.find((x) => x.name === name && x.op === op);
  if (!s)
    throw new Error(
      `no ${op} step for ${name}; steps: ${JSON.stringify(result.steps.map((x) => [x.name, x.op]))}`,
    );
  return s;
}
