/**
 * The single-host example's `up` and clean `preview --refresh`, timed with their round trips, on
 * the lab (test/e2e/singleHost.test.ts) and on real Xen (test/xen/realXen.test.ts): the same
 * program and pulumi-tvd on both, so what differs is the dom0 — the lab emulator's costs told
 * apart from pulumi-tvd's (issue 14, item 3). Written to bench/results/example-profile.json only
 * when TVD_EXAMPLE_PROFILE is set (`npm run bench:example`); no test asserts on a time.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { OperationResult } from "../e2e/pulumi";

const FILE = path.resolve(__dirname, "..", "..", "bench", "results", "example-profile.json");

/** Round trips and connects a PULUMI_TVD_STATS file holds; zero when there is none. */
export function statsOf(file: string): {
  connects: number;
  roundTrips: number;
  steps: Record<string, number>;
} {
  const lines = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; step?: string })
    : [];
  const steps: Record<string, number> = {};
  for (const l of lines.filter((x) => x.event === "exec"))
    steps[l.step ?? "?"] = (steps[l.step ?? "?"] ?? 0) + 1;
  return {
    connects: lines.filter((l) => l.event === "connect").length,
    roundTrips: lines.filter((l) => l.event === "exec").length,
    steps,
  };
}

/**
 * Runs `op`; with TVD_EXAMPLE_PROFILE set, records its time and the round trips `stats` (the
 * stack's PULUMI_TVD_STATS file, emptied first) counted, under `where` and `name`.
 */
export async function profiled(
  where: "lab" | "realXen",
  name: "up" | "previewRefresh",
  stats: string,
  op: () => Promise<OperationResult>,
): Promise<OperationResult> {
  if (!process.env.TVD_EXAMPLE_PROFILE) return op();
  writeFileSync(stats, "");
  const t = Date.now();
  const result = await op();
  const sec = (Date.now() - t) / 1000;
  const all = existsSync(FILE) ? (JSON.parse(readFileSync(FILE, "utf8")) as Record<string, unknown>) : {};
  const run = (all[where] ?? {}) as Record<string, unknown>;
  all[where] = {
    ...run,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, kernel: os.release() },
    [name]: { sec, exitCode: result.code, ...statsOf(stats) },
  };
  writeFileSync(FILE, JSON.stringify(all, null, 2) + "\n");
  return result;
}
