/**
 * Coalesced reads: the reads one host is asked for at once (a refresh reads every resource) go
 * as one round trip, READ_BATCH, instead of one each. Rendering the batch and splitting its
 * output back into each read's result are pure; ReadBatcher (readBatcher.ts) is the shell.
 */
import { randomBytes } from "node:crypto";
import type { ExecResult } from "../transport/ssh";
import { joinArgv } from "../transport/quote";
import { READ_BATCH } from "./scripts";

/**
 * A batch's frame mark: `pulumi-tvd-read-` and 128 random bits in hex, made by the batcher for
 * one batch. No read's output holds it by chance, and no read is given it: it goes on the
 * batch's stdin, never in an argv a process list on the dom0 shows.
 */
export const FRAME_MARK = /^pulumi-tvd-read-[0-9a-f]{32}$/;

/** A new batch's frame mark (FRAME_MARK). */
export function newFrameMark(): string {
  return `pulumi-tvd-read-${randomBytes(16).toString("hex")}`;
}

/**
 * How many reads of a batch run at once on the dom0: as many as the transport's channels would
 * have run side by side before the reads were coalesced.
 */
export const READS_AT_ONCE = 8;

/** The argv of the batch itself; the reads go on its stdin (renderReadBatch). */
export function readBatchArgv(): string[] {
  return ["sh", "-c", READ_BATCH, "pulumi-tvd", String(READS_AT_ONCE)];
}

function checkedMark(mark: string): string {
  if (!FRAME_MARK.test(mark)) throw new Error(`not a read batch's frame mark: ${JSON.stringify(mark)}`);
  return mark;
}

/**
 * READ_BATCH's stdin: the frame mark, then one line per read, its argv quoted by the transport's
 * one quoting function (joinArgv), as the SSH exec request of a lone read would carry it. No
 * read's value goes into the script any other way; a NUL is refused as the transport refuses it.
 */
export function renderReadBatch(reads: readonly (readonly string[])[], mark: string): string {
  return `${checkedMark(mark)}\n` + reads.map((argv, i) => `read_one ${i} ${joinArgv(argv)}\n`).join("");
}

/**
 * Each read's result from READ_BATCH's stdout, by index: for read i, `<mark>\t<i>\tout\n`, its
 * stdout, `\n<mark>\t<i>\terr\n`, its stderr, `\n<mark>\t<i>\trc\t<code>\n`. Undefined for a read
 * the output does not hold whole, and for every read after it (the batch ended early). Decoded
 * as the transport decodes a lone command's output (UTF-8).
 */
export function splitReadBatch(stdout: string, count: number, mark: string): Array<ExecResult | undefined> {
  checkedMark(mark);
  const results: Array<ExecResult | undefined> = new Array<ExecResult | undefined>(count).fill(undefined);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const outHead = `${mark}\t${i}\tout\n`;
    const errHead = `\n${mark}\t${i}\terr\n`;
    const rcHead = `\n${mark}\t${i}\trc\t`;
    if (!stdout.startsWith(outHead, at)) break;
    const err = stdout.indexOf(errHead, at + outHead.length);
    if (err < 0) break;
    const rc = stdout.indexOf(rcHead, err + errHead.length);
    if (rc < 0) break;
    const end = stdout.indexOf("\n", rc + rcHead.length);
    const code = stdout.slice(rc + rcHead.length, end);
    if (end < 0 || !/^\d+$/.test(code)) break;
    results[i] = {
      stdout: stdout.slice(at + outHead.length, err),
      stderr: stdout.slice(err + errHead.length, rc),
      exitCode: Number(code),
    };
    at = end + 1;
  }
  return results;
}
