/**
 * Runs the real Pulumi CLI against a throwaway stack: a temporary file backend, a temporary
 * PULUMI_HOME, a passphrase, no update checks and no plugin downloads. Every operation writes
 * the engine's event log, which the result exposes per resource.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run, type RunResult } from "../../lab/exec";
import { consumerNodeModules } from "./consumer";

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
  readonly name: string;
  readonly type: string;
  readonly op: string;
  readonly diffs: string[];
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
}

function nameFromUrn(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

function parseEventLog(file: string): EngineEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as EngineEvent);
}

export class TestStack {
  private opCount = 0;

  private constructor(
    readonly workDir: string,
    readonly programDir: string,
    readonly stackName: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async create(opts: StackOptions): Promise<TestStack> {
    const workDir = mkdtempSync(path.join(os.tmpdir(), "tvd-e2e-"));
    const programDir = path.join(workDir, "program");
    cpSync(opts.programDir, programDir, { recursive: true });
    // The program depends on pulumi-tvd as a consumer does: the packed tarball, installed.
    symlinkSync(consumerNodeModules(), path.join(programDir, "node_modules"), "dir");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PULUMI_HOME: path.join(workDir, "home"),
      PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "pulumi-tvd-e2e-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
      NO_COLOR: "1",
    };
    const stack = new TestStack(workDir, programDir, opts.stackName ?? "e2e", env);
    await stack.cli(["stack", "init", stack.stackName]);
    for (const [key, { value, secret }] of Object.entries(opts.config ?? {})) {
      await stack.setConfig(key, value, secret);
    }
    return stack;
  }

  /** Runs `pulumi <args>` in the program directory and throws unless it exits 0. */
  async cli(args: readonly string[]): Promise<RunResult> {
    const r = await this.cliRaw(args);
    if (r.code !== 0) {
      throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
  }

  cliRaw(args: readonly string[]): Promise<RunResult> {
    return run(["pulumi", ...args, "--non-interactive"], { cwd: this.programDir, env: this.env, timeoutMs: 15 * 60_000 });
  }

  async setConfig(key: string, value: string, secret = false): Promise<void> {
    await this.cli(["config", "set", "--stack", this.stackName, ...(secret ? ["--secret"] : []), key, "--", value]);
  }

  private async operation(args: string[]): Promise<OperationResult> {
    const log = path.join(this.workDir, `events-${++this.opCount}.jsonl`);
    const r = await this.cliRaw([...args, "--stack", this.stackName, "--color", "never", "--event-log", log]);
    const events = parseEventLog(log);
    const steps: StepSummary[] = [];
    const diagnostics: string[] = [];
    let changes: Record<string, number> = {};
    for (const e of events) {
      const m = e.resourcePreEvent?.metadata;
      if (m && m.type !== "pulumi:pulumi:Stack") {
        steps.push({ name: nameFromUrn(m.urn), type: m.type, op: m.op, diffs: m.diffs ?? [] });
      }
      if (e.diagnosticEvent && ["error", "warning"].includes(e.diagnosticEvent.severity)) {
        diagnostics.push(e.diagnosticEvent.message);
      }
      if (e.summaryEvent) changes = e.summaryEvent.resourceChanges ?? {};
    }
    return { ...r, events, steps, changes, diagnostics };
  }

  up(): Promise<OperationResult> {
    return this.operation(["up", "--yes", "--skip-preview"]);
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
    return this.operation(["destroy", "--yes", "--skip-preview"]);
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

  async dispose(): Promise<void> {
    await this.cliRaw(["stack", "rm", "--yes", "--force", this.stackName]);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
