#!/usr/bin/env node
/**
 * Folds per-file wall times of a Jest run into bench/results/test-suite.json.
 *
 *   npx jest <files or --selectProjects ...> --json --outputFile=/tmp/run.json
 *   node bench/test-suite-profile.js /tmp/run.json --as after --note "xen + e2e, --maxWorkers=3"
 *
 * A file's seconds run from its start to its end as the JSON report gives them (its beforeAll and
 * afterAll included, so the real-Xen file counts its QEMU boot). `--as before` records the baseline. test/sequencer.js reads the result
 * to hand out the longest files first on a machine with no timing cache of its own.
 */
const { existsSync, readFileSync, writeFileSync } = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const out = path.join(root, "bench", "results", "test-suite.json");

function main(argv) {
  const input = argv[0];
  const flag = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const as = flag("--as") ?? "after";
  if (!input || !["before", "after"].includes(as)) {
    throw new Error("usage: test-suite-profile.js <jest --json output> [--as before|after] [--note text]");
  }
  const run = JSON.parse(readFileSync(input, "utf8"));
  const profile = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : { runs: [], files: {} };
  const ends = run.testResults.map((r) => r.endTime);
  const wallSeconds = (Math.max(...ends) - run.startTime) / 1000;
  for (const r of run.testResults) {
    const file = path.relative(root, r.name);
    const ms = r.endTime - r.startTime;
    profile.files[file] = { ...profile.files[file], [as]: Math.round(ms / 100) / 10 };
  }
  profile.runs.push({
    as,
    at: new Date(run.startTime).toISOString(),
    note: flag("--note") ?? "",
    files: run.testResults.length,
    tests: { passed: run.numPassedTests, failed: run.numFailedTests },
    wallSeconds: Math.round(wallSeconds),
  });
  profile.files = Object.fromEntries(Object.entries(profile.files).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(out, JSON.stringify(profile, null, 2) + "\n");
  console.log(`${run.testResults.length} files as "${as}" in ${out}, run wall ${wallSeconds.toFixed(0)}s`);
}

main(process.argv.slice(2));
