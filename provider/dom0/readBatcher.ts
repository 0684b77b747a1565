/**
 * The shell of coalesced reads (readBatch.ts is the pure core): one batcher per host connection
 * collects the reads asked of that host at once and sends them as one round trip. A refresh then
 * costs one round trip per host per wave of reads the engine issues, not one per resource.
 */
import type { ExecResult, SshSession } from "../transport/ssh";
import { newFrameMark, readBatchArgv, renderReadBatch, splitReadBatch } from "./readBatch";

/**
 * How long a batch waits for one more read. The engine's reads of one wave reach the provider a
 * few milliseconds apart (each its own gRPC call, its inputs parsed first), further apart on a
 * loaded machine; so a batch goes once no read came for this long, and a round trip costs tens to
 * hundreds.
 */
const QUIET_MS = 10;
/** The longest a batch waits for more, however steadily reads keep coming. */
const COLLECT_MAX_MS = 100;

/** A batch's size bound: its stdin and its output stay a few MiB at most. */
const MAX_READS_PER_BATCH = 256;

interface PendingRead {
  readonly argv: readonly string[];
  readonly resolve: (r: ExecResult) => void;
  readonly reject: (e: unknown) => void;
}

class ReadBatcher {
  private pending: PendingRead[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the batch being collected got its first read. */
  private collectingSince = 0;
  private inFlight = false;

  constructor(private readonly session: SshSession) {}

  /**
   * Runs a read-only argv as part of the next batch; resolves with its own result whatever its
   * exit code, as SshSession.run does. One read's failure is that read's result alone.
   */
  run(argv: readonly string[]): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ argv, resolve, reject });
      // Reads that arrive while a batch is out go together as soon as it is back.
      if (!this.inFlight) this.collect();
    });
  }

  /** (Re)arms the timer: the batch goes after QUIET_MS without a new read, or at COLLECT_MAX_MS. */
  private collect(): void {
    const now = Date.now();
    if (this.timer) clearTimeout(this.timer);
    else this.collectingSince = now;
    const wait = Math.min(QUIET_MS, this.collectingSince + COLLECT_MAX_MS - now);
    this.timer = setTimeout(() => void this.flush(), Math.max(0, wait));
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    const reads = this.pending.splice(0, MAX_READS_PER_BATCH);
    if (!reads.length) return;
    this.inFlight = true;
    try {
      await this.send(reads);
    } finally {
      this.inFlight = false;
      if (this.pending.length) void this.flush();
    }
  }

  private async send(reads: PendingRead[]): Promise<void> {
    // Identical reads of one batch (every inspection's `xl list -l`) run once and share the result.
    const distinct = [...new Map(reads.map((r) => [JSON.stringify(r.argv), r.argv])).entries()];
    const index = new Map(distinct.map(([key], i) => [key, i]));
    try {
      // A lone read goes as itself: the same command, step label and fault patterns as before.
      const results =
        distinct.length === 1
          ? [await this.session.run(distinct[0][1])]
          : await this.batch(distinct.map(([, argv]) => argv));
      for (const read of reads) read.resolve(results[index.get(JSON.stringify(read.argv))!]);
    } catch (e) {
      // The connection itself failed: every read on it did.
      for (const read of reads) read.reject(e);
    }
  }

  /** Runs distinct reads as one READ_BATCH; a read the batch did not report gets a result that says so. */
  private async batch(argvs: ReadonlyArray<readonly string[]>): Promise<ExecResult[]> {
    const mark = newFrameMark();
    const batch = await this.session.run(readBatchArgv(), { stdin: renderReadBatch(argvs, mark) });
    return splitReadBatch(batch.stdout, argvs.length, mark).map(
      (result) =>
        result ?? {
          stdout: "",
          stderr:
            `no result: the batch of ${argvs.length} reads it was part of ended early ` +
            `(exit ${batch.exitCode ?? "signal"})${batch.stderr.trim() ? `: ${batch.stderr.trim()}` : ""}`,
          exitCode: null,
        },
    );
  }
}

const batchers = new WeakMap<SshSession, ReadBatcher>();

/** The batcher of one host connection (shared, as the connection is, by every resource on it). */
export function readBatcherFor(session: SshSession): ReadBatcher {
  let batcher = batchers.get(session);
  if (!batcher) batchers.set(session, (batcher = new ReadBatcher(session)));
  return batcher;
}
