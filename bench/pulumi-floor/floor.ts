/**
 * What Pulumi itself costs per resource on this machine, with no pulumi-tvd and no host: the
 * real CLI and @pulumi/pulumi running a JavaScript program of N resources of one kind,
 *
 *  - `component`: `pulumi.ComponentResource`s, which no provider serves: the engine's and the
 *    SDK's registration alone;
 *  - `dynamic`: `pulumi.dynamic.Resource`s whose provider does nothing (create echoes its inputs,
 *    diff reports no change): the least any dynamic provider costs, pulumi-tvd's kind of provider.
 *
 * Each resource carries a property bag the size of a pulumi-tvd guest's (9 keys). The run has the
 * environment of bench/peers' pulumi-tvd runs (`--json`, Node's compile cache, the
 * lazy-typescript preload) so that its figures set against theirs differ only in the program.
 * Shared by bench/pulumi-floor.ts and its CI slice (test/e2e/pulumiFloor.slice.test.ts).
 */
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "../../lab/exec";
import { consumerNodeModules, localBackendEnv } from "../../test/e2e/consumer";
import { cpuMeter } from "../common";

export const FLOOR_KINDS = ["component", "dynamic"] as const;
export type FloorKind = (typeof FLOOR_KINDS)[number];

const PROGRAM = `"use strict";
// Pulumi's own cost per resource: FLOOR_N resources of FLOOR_KIND, nothing else.
const pulumi = require("@pulumi/pulumi");
const n = Number(process.env.FLOOR_N);
const kind = process.env.FLOOR_KIND;
const provider = {
  async create(inputs) { return { id: inputs.name, outs: inputs }; },
  async diff() { return { changes: false }; },
  async read(id, props) { return { id, props }; },
};
class Noop extends pulumi.dynamic.Resource {
  constructor(name, props) { super(provider, name, props); }
}
class Group extends pulumi.ComponentResource {
  constructor(name, props) { super("floor:index:Group", name, props); this.registerOutputs({}); }
}
for (let i = 0; i < n; i++) {
  const props = {
    name: "r" + i, host: "dom0-a", memory: 256, vcpus: 1, kernel: "/usr/lib/xen/boot/vmlinuz",
    disk: "/var/lib/xen/images/r" + i + ".qcow2", uuid: "6f1e0a3c-52d4-4b8e-9a61-0c2f3e4d5a6b",
    owner: "floor/bench Guest r" + i, adopt: false,
  };
  if (kind === "component") new Group("r" + i, props);
  else if (kind === "dynamic") new Noop("r" + i, props);
  else throw new Error("FLOOR_KIND must be component or dynamic, got " + kind);
}
`;

/** One timed CLI operation. */
export interface FloorOp {
  readonly sec: number;
  /** The machine's CPU while it ran (the CLI, the language host, the program, the provider). */
  readonly machineCpuSec: number;
}

export interface FloorFigures {
  readonly kind: FloorKind;
  readonly resources: number;
  /** Resources of the kind in the state after `up`, read back with `pulumi stack export`. */
  readonly resourcesInState: number;
  /** `up` from an empty stack (a preview, then the update, as bench/peers runs it). */
  readonly up: FloorOp;
  /** `preview` against that state, each run; `previewMedianSec` their median. */
  readonly previews: readonly FloorOp[];
  readonly previewMedianSec: number;
  readonly previewMedianCpuSec: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A scratch project of the floor program in `dir`, its state in `dir`/state. */
export class FloorProject {
  private readonly programDir: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(dir: string) {
    this.programDir = path.join(dir, "program");
    mkdirSync(this.programDir, { recursive: true });
    mkdirSync(path.join(dir, "state"), { recursive: true });
    writeFileSync(
      path.join(this.programDir, "Pulumi.yaml"),
      "name: floor\nruntime: nodejs\nmain: index.js\n",
    );
    writeFileSync(path.join(this.programDir, "index.js"), PROGRAM);
    symlinkSync(consumerNodeModules(), path.join(this.programDir, "node_modules"), "dir");
    // A throwaway stack of no secrets, as bench/peers' own.
    this.env = localBackendEnv(dir, "pulumi-tvd-bench-passphrase");
  }

  private async cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const r = await run(["pulumi", "--non-interactive", ...args], {
      cwd: this.programDir,
      env: { ...this.env, ...env },
      timeoutMs: 30 * 60_000,
    });
    if (r.code !== 0)
      throw new Error(
        `pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      );
    return r.stdout;
  }

  private async timed(args: readonly string[], env: NodeJS.ProcessEnv): Promise<FloorOp> {
    const t = Date.now();
    const cpu = cpuMeter();
    await this.cli([...args, "--color", "never", "--json"], env);
    return { sec: (Date.now() - t) / 1000, machineCpuSec: cpu().machineCpuSec };
  }

  /** `up` of `resources` resources of `kind` on a new stack, `previews` previews, then destroy. */
  async measure(kind: FloorKind, resources: number, previews: number): Promise<FloorFigures> {
    if (!Number.isInteger(resources) || resources < 1)
      throw new Error(`resources must be a whole number of at least 1, got ${resources}`);
    if (!Number.isInteger(previews) || previews < 1)
      throw new Error(`previews must be a whole number of at least 1, got ${previews}`);
    const stack = `${kind}-${resources}`;
    const env = { FLOOR_KIND: kind, FLOOR_N: String(resources) };
    const onStack = (args: string[]) => [...args, "--stack", stack];
    await this.cli(["stack", "init", stack]);
    try {
      const up = await this.timed(onStack(["up", "--yes"]), env);
      const exported = JSON.parse(await this.cli(onStack(["stack", "export"]))) as {
        deployment: { resources?: { type: string }[] };
      };
      const type = kind === "component" ? "floor:index:Group" : "pulumi-nodejs:dynamic:Resource";
      const resourcesInState = (exported.deployment.resources ?? []).filter((r) => r.type === type).length;
      const runs: FloorOp[] = [];
      for (let i = 0; i < previews; i++)
        runs.push(await this.timed(onStack(["preview", "--expect-no-changes"]), env));
      return {
        kind,
        resources,
        resourcesInState,
        up,
        previews: runs,
        previewMedianSec: median(runs.map((r) => r.sec)),
        previewMedianCpuSec: median(runs.map((r) => r.machineCpuSec)),
      };
    } finally {
      await this.cli(onStack(["destroy", "--yes", "--skip-preview"]), env);
      await this.cli(["stack", "rm", "--yes", stack]);
    }
  }
}
