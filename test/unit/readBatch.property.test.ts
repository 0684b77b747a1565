/**
 * Coalesced reads (provider/dom0/readBatch.ts): the batch a host's concurrent reads share is
 * rendered and split by pure functions; here the real READ_BATCH script runs under the local
 * /bin/sh (as a dom0's would) on reads that print any mix of output, frames of another batch's
 * mark and framing characters included, and each read gets back exactly its own stdout, stderr
 * and exit code.
 */
import { spawnSync } from "node:child_process";
import * as fc from "fast-check";
import { newFrameMark, readBatchArgv, renderReadBatch, splitReadBatch } from "../../provider/dom0/readBatch";

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

const newMark = newFrameMark;
/** A mark of another batch: what a read could print if it ever saw one (it never does). */
const OTHER = newMark();

/** Runs a batch of reads under the local /bin/sh, as the transport would on a dom0. */
function runBatch(
  reads: readonly (readonly string[])[],
  mark = newMark(),
): { stdout: string; stderr: string; status: number | null; mark: string } {
  const argv = readBatchArgv();
  const r = spawnSync(argv[0], argv.slice(1), { input: renderReadBatch(reads, mark), encoding: "utf8" });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status, mark };
}

/** What splitReadBatch makes of a batch's run. */
function split(r: { stdout: string; mark: string }, count: number) {
  return splitReadBatch(r.stdout, count, r.mark);
}

const noNul = (s: string) => s.replace(/\0/g, "");
const tricky = fc.constantFrom(
  OTHER,
  `${OTHER}\t0\tout\n`,
  `\n${OTHER}\t0\terr\n`,
  `\n${OTHER}\t0\trc\t0\n`,
  "pulumi-tvd-read",
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

it("any mix of outputs, frames of another batch among them, splits back exactly to each read", () => {
  fc.assert(
    fc.property(fc.array(printed, { minLength: 1, maxLength: 12 }), (reads) => {
      const r = runBatch(reads.map(printing));
      expect(r.status).toBe(0);
      expect(split(r, reads.length)).toEqual(reads);
    }),
    { numRuns: 60 },
  );
});

it("runs more reads than it runs at once, in order", () => {
  const reads = Array.from({ length: 21 }, (_, i) => ({ stdout: `out ${i}\n`, stderr: "", exitCode: i % 3 }));
  expect(split(runBatch(reads.map(printing)), reads.length)).toEqual(reads);
});

it("a read the batch did not report whole (it ended early) is undefined, and so is every one after it", () => {
  const reads = [
    printing({ stdout: "a\n", stderr: "", exitCode: 0 }),
    printing({ stdout: "b", stderr: "oops", exitCode: 3 }),
  ];
  const r = runBatch(reads);
  const whole = split(r, 2);
  expect(whole).toEqual([
    { stdout: "a\n", stderr: "", exitCode: 0 },
    { stdout: "b", stderr: "oops", exitCode: 3 },
  ]);
  // Cut anywhere inside the second frame: the first stays, the second is no result.
  const second = r.stdout.indexOf(`${r.mark}\t1\tout`);
  for (let cut = second; cut < r.stdout.length; cut++) {
    expect(splitReadBatch(r.stdout.slice(0, cut), 2, r.mark)).toEqual([whole[0], undefined]);
  }
  // Another batch's output, or frames out of order, are no result.
  expect(splitReadBatch(r.stdout, 2, newMark())).toEqual([undefined, undefined]);
  expect(splitReadBatch(r.stdout.slice(second), 2, r.mark)).toEqual([undefined, undefined]);
  // No mark, no batch: the batcher makes one for every batch.
  expect(() => splitReadBatch(r.stdout, 2, "")).toThrow(/frame mark/);
  expect(() => renderReadBatch([["true"]], "pulumi-tvd-read-x")).toThrow(/frame mark/);
});

it("a read killed on the host reports 128 + its signal, as a lone command's shell would", () => {
  const [killed, next] = split(
    runBatch([["sh", "-c", "kill -9 $$"], printing({ stdout: "x", stderr: "", exitCode: 0 })]),
    2,
  );
  expect(killed).toMatchObject({ stdout: "", exitCode: 137 });
  expect(next).toEqual({ stdout: "x", stderr: "", exitCode: 0 });
});

it("a script read runs as `sh -c` would run it: its arguments, a fresh shell's options and variables, its exit code", () => {
  const script = [
    'printf "%s|" "$#" "$@"',
    // A fresh shell has no `set -u` and none of the batch's variables or functions.
    'printf "%s|" "${unset_here}" "${d-none}" "${n-none}" "${mark-none}" "${script-none}"',
    "command -v read_one >/dev/null || printf 'no functions|'",
    "exit 3",
    "echo never",
  ].join("\n");
  const [read, next] = split(
    runBatch([
      ["sh", "-c", script, "name", "a b", "", "c'd"],
      ["sh", "-c", 'printf %s "$0:$1"', "zero", "one"],
    ]),
    2,
  );
  expect(read).toEqual({ stdout: "3|a b||c'd||none|none|none|none|no functions|", stderr: "", exitCode: 3 });
  // `exit` ends that read alone; the next read runs. Its $0 is the batch's (no read uses $0).
  expect(next).toEqual({ stdout: "pulumi-tvd:one", stderr: "", exitCode: 0 });
});

it("a read that cannot start reports 127 and the shell's message, as a lone command would", () => {
  const [missing] = split(runBatch([["tvd-no-such-command"]]), 1);
  expect(missing).toMatchObject({ stdout: "", exitCode: 127 });
  expect(missing?.stderr).toMatch(/tvd-no-such-command/);
});

it("an empty batch prints nothing and succeeds", () => {
  const r = runBatch([]);
  expect([r.status, r.stdout, r.stderr]).toEqual([0, "", ""]);
});

it("hostile arguments reach each read literally: the batch is quoted as the transport quotes", () => {
  fc.assert(
    fc.property(fc.array(text, { minLength: 1, maxLength: 5 }), (args) => {
      const reads = args.map((a) => ["printf", "%s", a]);
      const out = split(runBatch(reads), reads.length);
      expect(out.map((o) => o?.stdout)).toEqual(args);
    }),
    { numRuns: 40 },
  );
  expect(spawnSync("test", ["-e", "/tmp/tvd-batch-pwned"]).status).toBe(1);
});

it("renders the mark and nothing of a read but its quoted argv, and refuses a NUL as the transport does", () => {
  const mark = newMark();
  const script = renderReadBatch([["xl", "list", "-l", "a'b"]], mark);
  expect(script).toBe(`${mark}\nread_one 0 'xl' 'list' '-l' 'a'\\''b'\n`);
  expect(() => renderReadBatch([["echo", "a\0b"]], mark)).toThrow(/NUL/);
});
