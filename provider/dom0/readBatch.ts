/**
 * Coalesced reads: the reads one host is asked for at once (a refresh reads every resource) go
 * as one round trip, READ_BATCH, instead of one each. Rendering the batch and splitting its
 * output back into each read's result are pure; ReadBatcher (readBatcher.ts) is the shell.
 */
import type { ExecResult } from "../transport/ssh";
import { joinArgv } from "../transport/quote";
import { READ_BATCH } from "./scripts";

/** Starts each frame of READ_BATCH's output. */
export const READ_BATCH_DELIMITER = "pulumi-tvd-read";

/**
 * How many reads of a batch run at once on the dom0: as many as the transport's channels would
 * have run side by side before the reads were coalesced.
 */
export const READS_AT_ONCE = 8;

/** The argv of the batch itself; the reads go on its stdin (renderReadBatch). */
export function readBatchArgv(): string[] {
  return ["sh", "-c", READ_BATCH, "pulumi-tvd", String(READS_AT_ONCE)];
}

/**
 * READ_BATCH's stdin: one line per read, its argv quoted by the transport's one quoting function
 * (joinArgv), as the SSH exec request of a lone read would carry it. No read's value goes into
 * the script any other way; a NUL is refused as the transport refuses it.
 */
export function renderReadBatch(reads: readonly (readonly string[])[]): string {
  return reads.map((argv, i) => `read_one ${i} ${joinArgv(argv)}\n`).join("");
}

const FRAME = new RegExp(
  `^${READ_BATCH_DELIMITER}\\t(\\d+)\\t(\\d*)\\t([A-Za-z0-9+/=]*)\\t([A-Za-z0-9+/=]*)$`,
);

/**
 * Each read's result from READ_BATCH's stdout, by index; undefined for a read the output does
 * not report whole (the batch ended early). Decoded as the transport decodes a lone command's
 * output (UTF-8); a read with no exit code (the batch was killed as it ended) has exitCode null.
 */
export function splitReadBatch(stdout: string, count: number): Array<ExecResult | undefined> {
  const results: Array<ExecResult | undefined> = new Array<ExecResult | undefined>(count).fill(undefined);
  for (const line of stdout.split("\n")) {
    const m = FRAME.exec(line);
    if (!m) continue;
    const i = Number(m[1]);
    if (i >= count) continue;
    results[i] = {
      stdout: Buffer.from(m[3], "base64").toString("utf8"),
      stderr: Buffer.from(m[4], "base64").toString("utf8"),
      exitCode: m[2] === "" ? null : Number(m[2]),
    };
  }
  return results;
}
