/**
 * The order Jest hands test files to its workers (scripts/test runs several). The real-Xen files
 * go first: they are the longest, and one worker runs them (QEMU on its core) while the others
 * take the rest. Then the longest first, so that no worker is left with a long file at the end:
 * seconds from Jest's own timing cache when this machine ran the file before, else from the
 * profile in bench/results/test-suite.json (a fresh clone has no cache), else unknown, which go
 * first (a new file may be long).
 */
const { readFileSync } = require("node:fs");
const path = require("node:path");
const Sequencer = require("@jest/test-sequencer").default;

const root = path.resolve(__dirname, "..");

/** Per-file seconds of the last profile: { "test/e2e/tvd.test.ts": 128.1, ... }. */
function profiledSeconds() {
  try {
    const profile = JSON.parse(readFileSync(path.join(root, "bench", "results", "test-suite.json"), "utf8"));
    return Object.fromEntries(
      Object.entries(profile.files ?? {}).map(([file, runs]) => [file, runs.after ?? runs.before]),
    );
  } catch {
    return {};
  }
}

class SuiteSequencer extends Sequencer {
  sort(tests) {
    const profiled = profiledSeconds();
    const known = (test) => {
      const ms = this.time(test);
      if (ms != null) return ms;
      const seconds = profiled[path.relative(root, test.path)];
      return seconds == null ? undefined : seconds * 1000;
    };
    const isXen = (test) => test.context.config.displayName?.name === "xen";
    const rows = tests.map((test) => {
      test.duration = known(test);
      return { test, xen: isXen(test), ms: test.duration ?? Number.POSITIVE_INFINITY };
    });
    rows.sort(
      (a, b) =>
        Number(b.xen) - Number(a.xen) ||
        (a.ms === b.ms ? 0 : a.ms < b.ms ? 1 : -1) ||
        a.test.path.localeCompare(b.test.path),
    );
    return rows.map((r) => r.test);
  }
}

module.exports = SuiteSequencer;
