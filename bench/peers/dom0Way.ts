/**
 * The dom0s' own work, with no tool in front of it: the ssh script's very commands
 * (peers/sshWay.ts), run inside each lab host's namespaces (lab/host.ts inHost) with no SSH, no
 * engine and no program, each guest's commands in order and up to `concurrency` guests of a host
 * side by side (pulumi-tvd's own bound per host). What it costs is what any way pays the dom0s to
 * create these guests on this machine: the floor under every column of the benchmark.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { inHost } from "../../lab/host";
import { cpuMeter, type CpuFigures } from "../common";
import { createPlan, destroyPlan, type CommandPlan } from "./sshWay";
import type { Placement } from "./workload";

/** Guests of one host whose commands run at once: pulumi-tvd's SSH channels per host. */
export const DOM0_CONCURRENCY = 8;

/**
 * Runs inside one host: $1 the commands that go first, $2 a directory of one file per guest (its
 * commands, one a line), $3 the commands that go last, $4 how many guests at once. Each command
 * runs in its own `sh -c`, as sshd runs a client's command; the first that fails stops its list
 * and the run, naming it.
 */
const RUNNER = `set -u
run_list() {
  while IFS= read -r c; do
    sh -c "$c" </dev/null || { echo "failed: $c" >&2; return 1; }
  done <"$1"
}
export -f run_list
run_list "$1" || exit 1
find "$2" -name '*.cmds' -print0 | xargs -0 -r -n 1 -P "$4" bash -c 'run_list "$1"' run || exit 1
run_list "$3"
`;

export interface Dom0Run {
  readonly sec: number;
  /** Commands run, on every host together. */
  readonly commands: number;
  /** Guests of one host whose commands ran at once. */
  readonly concurrency: number;
  readonly cpu: CpuFigures;
}

export class Dom0AloneWay {
  constructor(
    private readonly workDir: string,
    private readonly placements: readonly Placement[],
    private readonly concurrency = DOM0_CONCURRENCY,
  ) {
    mkdirSync(workDir, { recursive: true });
  }

  /** Writes each host's plan where its namespaces see it (this machine's files, the same path). */
  private write(phase: string, plan: CommandPlan, host: string): string[] {
    const dir = path.join(this.workDir, `${phase}-${host}`);
    const guests = path.join(dir, "guests");
    mkdirSync(guests, { recursive: true });
    const file = (name: string, commands: readonly string[]) => {
      const f = path.join(dir, name);
      writeFileSync(f, commands.map((c) => c + "\n").join(""));
      return f;
    };
    plan.perGuest.forEach((commands, i) => file(path.join("guests", `${i}.cmds`), commands));
    return [file("first", plan.first), guests, file("last", plan.last)];
  }

  private async run(phase: string, planOf: (p: Placement) => CommandPlan): Promise<Dom0Run> {
    const jobs = this.placements.map((p) => {
      const plan = planOf(p);
      return {
        host: p.host,
        commands: plan.first.length + plan.perGuest.flat().length + plan.last.length,
        args: this.write(phase, plan, p.host.name),
      };
    });
    const t = Date.now();
    const cpuSoFar = cpuMeter();
    const results = await Promise.all(
      jobs.map((j) =>
        inHost(j.host, ["bash", "-c", RUNNER, "dom0-alone", ...j.args, String(this.concurrency)]),
      ),
    );
    const sec = (Date.now() - t) / 1000;
    const cpu = cpuSoFar();
    results.forEach((r, i) => {
      if (r.code !== 0)
        throw new Error(
          `dom0 alone: ${phase} on ${jobs[i].host.name} failed (${r.code}): ${r.stderr.slice(0, 2000)}`,
        );
    });
    return { sec, commands: jobs.reduce((n, j) => n + j.commands, 0), concurrency: this.concurrency, cpu };
  }

  create(baseImage: string): Promise<Dom0Run> {
    return this.run("create", (p) => createPlan(p, baseImage));
  }

  destroy(): Promise<Dom0Run> {
    return this.run("destroy", destroyPlan);
  }
}
