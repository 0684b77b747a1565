/**
 * bench/results/reliability.json: the figures issue 12 asks for, written by the tests that
 * measure them (the whole sweep in `npm run bench:reliability`; a test run's slice, in the same
 * format, to test/.work/reliability.json).
 * Each measuring test owns one section and replaces it whole; sections are merged under a lock
 * file so that test files running one after another (or a bench run) never drop each other's.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Where the figures go: the repository's bench/results/reliability.json for the whole sweep
 * (`npm run bench:reliability`), and test/.work/ (not kept in git) for the slice an ordinary
 * test run executes, which would otherwise overwrite the full figures with the slice's.
 */
export const RELIABILITY_FILE =
  reliabilityScope() === "full"
    ? path.resolve(__dirname, "..", "..", "bench", "results", "reliability.json")
    : path.resolve(__dirname, "..", ".work", "reliability.json");

/** The sections, one per kind of proof. */
export type ReliabilitySection = "faults" | "reboot" | "concurrency" | "hostile" | "secrets";

export interface ReliabilityFile {
  readonly format: 1;
  readonly sections: Partial<Record<ReliabilitySection, SectionRecord>>;
}

export interface SectionRecord {
  /** "ci" for the slice the test run executes, "full" for `npm run bench:reliability`. */
  readonly scope: "ci" | "full";
  readonly at: string;
  readonly machine: { readonly cpus: number; readonly memGiB: number; readonly node: string };
  /** The figures: counts, each named for what it counts (e.g. imagesLost, casesConverged). */
  readonly figures: Record<string, number>;
  /** Anything else worth keeping: seeds, per-kind breakdowns, the cases that ran. */
  readonly details?: unknown;
}

function withLock<T>(fn: () => T): T {
  const lock = `${RELIABILITY_FILE}.lock`;
  mkdirSync(path.dirname(RELIABILITY_FILE), { recursive: true });
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(lock, "wx"));
      break;
    } catch {
      if (i > 200) rmSync(lock, { force: true }); // a crashed writer's lock, after ~10 s
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

export function readReliability(): ReliabilityFile {
  if (!existsSync(RELIABILITY_FILE)) return { format: 1, sections: {} };
  return JSON.parse(readFileSync(RELIABILITY_FILE, "utf8")) as ReliabilityFile;
}

/** Replaces one section of the results file, atomically. */
export function recordReliability(
  section: ReliabilitySection,
  scope: "ci" | "full",
  figures: Record<string, number>,
  details?: unknown,
): void {
  withLock(() => {
    const current = readReliability();
    const record: SectionRecord = {
      scope,
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      figures,
      ...(details === undefined ? {} : { details }),
    };
    const next: ReliabilityFile = { format: 1, sections: { ...current.sections, [section]: record } };
    const tmp = `${RELIABILITY_FILE}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(next, null, 2) + "\n");
    renameSync(tmp, RELIABILITY_FILE);
  });
}

/** "full" when the bench runs the whole sweep (RELIABILITY_SCOPE=full), else the CI slice. */
export function reliabilityScope(): "ci" | "full" {
  return process.env.RELIABILITY_SCOPE === "full" ? "full" : "ci";
}
