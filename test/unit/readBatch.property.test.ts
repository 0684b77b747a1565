/**
 * Coalesced reads (provider/dom0/readBatch.ts): the batch a host's concurrent reads share is
 * rendered and split by pure functions; here the real READ_BATCH script runs under the local
 * /bin/sh (as a dom0's would) on reads that print any mix of output, the delimiter and framing
 * characters included, and each read gets back exactly its own stdout, stderr and exit code.
 */
import { spawnSync } from "node:child_process";
import * as fc from "fast-check";
import {
  READ_BATCH_DELIMITER,
  readBatchArgv,
  renderReadBatch,
  splitReadBatch,
} from "../../provider/dom0/readBatch";

interface Printed {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** A read that prints exactly `p` (argv carries no NUL). */
function printing(p: Printed): string[] {
  return [
    "sh",
    "-c",
    'printf %s "$1"; printf %s "$2" >&2; exit "$3"',
    "read",
    p.stdout,
    p.stderr,
    String(p.exitCode),
  ];
}

/** Runs a batch of reads under the local /bin/sh, as the transport would on a dom0. */
function runBatch(reads: readonly (readonly string[])[]): {
  stdout: string;
  stderr: string;
  status: number | null;
} {
  const argv = readBatchArgv();
  const r = spawnSync(argv[0], argv.slice(1), { input: renderReadBatch(reads), encoding: "utf8" });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const noNul = (s: string) => s.replace(/\0/g, "");
const tricky = fc.constantFrom(
  READ_BATCH_DELIMITER,
  `${READ_BATCH_DELIMITER}\t0\t0\t\t\n`,
  "\n",
  "\t",
  "'",
  '"',
  "$(touch /tmp/tvd-batch-pwned)",
  "\\",
  "",
  "é😀",
);
const text = fc
  .array(fc.oneof(fc.string({ unit: "binary" }).map(noNul), tricky), { maxLength: 4 })
  .map((parts) => parts.join(""));
const printed = fc.record({ stdout: text, stderr: text, exitCode: fc.integer({ min: 0, max: 125 }) });

it("any mix of outputs, the delimiter among them, splits back exactly to each read", () => {
  fc.assert(
    fc.property(fc.array(printed, { minLength: 1, maxLength: 12 }), (reads) => {
      const r = runBatch(reads.map(printing));
      expect(r.status).toBe(0);
      expect(splitReadBatch(r.stdout, reads.length)).toEqual(reads);
    }),
    { numRuns: 60 },
  );
});

it("runs more reads than it runs at once, in order", () => {
  const reads = Array.from({ length: 21 }, (_, i) => ({ stdout: `out ${i}\n`, stderr: "", exitCode: i % 3 }));
  expect(splitReadBatch(runBatch(reads.map(printing)).stdout, reads.length)).toEqual(reads);
});

it("a read the batch did not report (it ended early) is undefined; the others are kept", () => {
  const reads = [
    printing({ stdout: "a", stderr: "", exitCode: 0 }),
    printing({ stdout: "b", stderr: "", exitCode: 0 }),
  ];
  const full = runBatch(reads).stdout;
  const firstOnly = full.split("\n")[0] + "\n";
  expect(splitReadBatch(firstOnly, 2)).toEqual([{ stdout: "a", stderr: "", exitCode: 0 }, undefined]);
  // A frame that is cut short or names no read is no result.
  expect(splitReadBatch(full.slice(0, full.length - 3), 2)[1]).toBeUndefined();
  expect(splitReadBatch(`${READ_BATCH_DELIMITER}\t7\t0\t\t\n`, 2)).toEqual([undefined, undefined]);
});

it("a read killed on the host reports 128 + its signal, as a lone command's shell would", () => {
  const r = runBatch([["sh", "-c", "kill -9 $$"], printing({ stdout: "x", stderr: "", exitCode: 0 })]);
  const [killed, next] = splitReadBatch(r.stdout, 2);
  expect(killed).toMatchObject({ stdout: "", exitCode: 137 });
  expect(next).toEqual({ stdout: "x", stderr: "", exitCode: 0 });
  // A frame without an exit code (the batch was killed as the read ended) has none.
  expect(splitReadBatch(`${READ_BATCH_DELIMITER}\t0\t\t\t\n`, 1)).toEqual([
    { stdout: "", stderr: "", exitCode: null },
  ]);
});

it("hostile arguments reach each read literally: the batch is quoted as the transport quotes", () => {
  fc.assert(
    fc.property(fc.array(text, { minLength: 1, maxLength: 5 }), (args) => {
      const reads = args.map((a) => ["printf", "%s", a]);
      const out = splitReadBatch(runBatch(reads).stdout, reads.length);
      expect(out.map((o) => o?.stdout)).toEqual(args);
    }),
    { numRuns: 40 },
  );
  expect(spawnSync("test", ["-e", "/tmp/tvd-batch-pwned"]).status).toBe(1);
});

it("renders nothing of a read but its quoted argv, and refuses a NUL as the transport does", () => {
  const script = renderReadBatch([["xl", "list", "-l", "a'b"]]);
  expect(script).toBe("read_one 0 'xl' 'list' '-l' 'a'\\''b'\n");
  expect(() => renderReadBatch([["echo", "a\0b"]])).toThrow(/NUL/);
});
