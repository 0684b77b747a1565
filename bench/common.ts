/** What the benchmarks share: a process's memory figures from /proc, their result files, their entry point. */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A `<field>: <n> kB` line of /proc/<pid>/<file> (status, smaps_rollup), in KiB; 0 once the process is gone. */
export function procKiB(pid: number, file: "status" | "smaps_rollup", field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/${file}`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU spent while an operation ran, in CPU-seconds. */
export interface CpuFigures {
  /** By the whole machine (every process: the tool, sshd, the lab's dom0s, their vTPMs). */
  readonly machineCpuSec: number;
  /** By the lab's software TPMs (swtpm) alive when the operation ended: the vTPMs' own work. */
  readonly swtpmCpuSec: number;
}

/** The machine's busy time so far (user, nice, system, irq on every core), in ms. */
function machineBusyMs(): number {
  return os.cpus().reduce((n, c) => n + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
}

/** utime + stime of every swtpm process, in clock ticks (USER_HZ, 100 on Linux), by pid. */
function swtpmTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      // The command sits in parentheses and may hold spaces; the fields after it are fixed.
      const close = stat.lastIndexOf(")");
      if (stat.slice(stat.indexOf("(") + 1, close) !== "swtpm") continue;
      const f = stat.slice(close + 2).split(" ");
      ticks.set(Number(e), Number(f[11]) + Number(f[12]));
    } catch {
      // gone
    }
  }
  return ticks;
}

/**
 * Starts measuring CPU; call the result when the operation ends. A swtpm that exits before then
 * is not counted: measure operations that start vTPMs (a create), not ones that stop them.
 */
export function cpuMeter(): () => CpuFigures {
  const busy = machineBusyMs();
  const before = swtpmTicks();
  return () => {
    let swtpm = 0;
    for (const [pid, t] of swtpmTicks()) swtpm += t - (before.get(pid) ?? 0);
    return {
      machineCpuSec: Math.round((machineBusyMs() - busy) / 100) / 10,
      swtpmCpuSec: Math.round(swtpm * 10) / 1000,
    };
  };
}

/** Writes bench/results/<name> (benchmarks run from build/bench, two levels below the checkout). */
export function writeResult(name: string, data: unknown): void {
  const out = path.resolve(__dirname, "..", "..", "bench", "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, name), JSON.stringify(data, null, 2) + "\n");
}

export function runMain(main: () => Promise<void>): void {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
