/** What the benchmarks share: a process's memory figures from /proc, their result files, their entry point. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
