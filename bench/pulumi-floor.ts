/**
 * Pulumi's own cost per resource on this machine (issue 14: "`preview` ≤ 1 s above a 3-resource
 * program's"): `up` and `preview` of programs of N resources that no host and no pulumi-tvd code
 * serves (bench/pulumi-floor/floor.ts), for each size and kind. Writes
 * bench/results/pulumi-floor.json: each figure, how much each size's preview takes above the
 * smallest's, and the machine.
 *
 *   npm run bench:floor -- [--sizes 3,201] [--previews 5]
 *   (or: npm run build:lab && node build/bench/pulumi-floor.js ...)
 *
 * Builds the library's consumer package (its node_modules hold the @pulumi/pulumi pulumi-tvd's
 * programs run with). Run it alone on the machine.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildConsumer, withLazyTypescript } from "../test/e2e/consumer";
import { runMain, writeResult } from "./common";
import { FLOOR_KINDS, FloorProject, type FloorFigures } from "./pulumi-floor/floor";

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function wholeNumbers(flag: string, text: string, least: number): number[] {
  const xs = text.split(",").map(Number);
  if (!xs.length || xs.some((n) => !Number.isInteger(n) || n < least))
    throw new Error(`${flag} must list whole numbers of at least ${least}, like 3,201; got ${text}`);
  return xs;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const sizes = wholeNumbers("--sizes", option("--sizes") ?? "3,201", 1).sort((a, b) => a - b);
  const [previews] = wholeNumbers("--previews", option("--previews") ?? "5", 1);
  process.stderr.write("[floor] building the consumer package (npm run build, pack, install)\n");
  await buildConsumer();
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-bench-floor-"));
  // As bench/peers runs pulumi-tvd: the compile cache (warmed by the first run) and the preload.
  process.env.NODE_COMPILE_CACHE = path.join(dir, "node-compile-cache");
  process.env.NODE_OPTIONS = withLazyTypescript(process.env.NODE_OPTIONS);
  try {
    const project = new FloorProject(dir);
    const figures: Record<string, Record<string, FloorFigures>> = {};
    const previewAboveSmallestSec: Record<string, Record<string, number>> = {};
    for (const kind of FLOOR_KINDS) {
      figures[kind] = {};
      previewAboveSmallestSec[kind] = {};
      for (const n of sizes) {
        process.stderr.write(`[floor] ${new Date().toISOString().slice(11, 19)} ${kind}, ${n} resources\n`);
        const f = await project.measure(kind, n, previews);
        if (f.resourcesInState !== n)
          throw new Error(
            `${kind} ${n}: the state holds ${f.resourcesInState} resources of the kind after up`,
          );
        figures[kind][n] = f;
        previewAboveSmallestSec[kind][n] = round(
          f.previewMedianSec - figures[kind][sizes[0]].previewMedianSec,
        );
      }
    }
    const result = {
      date: new Date().toISOString(),
      machine: {
        cores: os.cpus().length,
        memoryMiB: Math.round(os.totalmem() / 2 ** 20),
        kernel: os.release(),
      },
      versions: {
        node: process.version,
        pulumi: execFileSync("pulumi", ["version"], { encoding: "utf8" }).trim(),
      },
      sizes,
      previewsPerSize: previews,
      figures,
      previewAboveSmallestSec,
    };
    writeResult("pulumi-floor.json", result);
    console.log(JSON.stringify({ previewAboveSmallestSec }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
