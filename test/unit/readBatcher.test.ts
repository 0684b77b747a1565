/**
 * When the read batcher sends (provider/dom0/readBatcher.ts), on a fake session under Jest's fake
 * clock: a batch waits until no read came for 10 ms, so reads a loaded machine delivers a few ms
 * apart still go as one round trip, and it never waits more than 100 ms however steadily they come.
 */
import { readBatcherFor } from "../../provider/dom0/readBatcher";
import type { ExecResult, SshSession } from "../../provider/transport/ssh";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** A session that records each round trip: the reads it carried (their markers) and when. */
function fakeSession() {
  const trips: Array<{ at: number; markers: string[] }> = [];
  const session = {
    endpoint: "root@dom0.example:22",
    run: async (argv: readonly string[], opts: { stdin?: string } = {}): Promise<ExecResult> => {
      const text = opts.stdin ?? argv.join(" ");
      // A read's own word only: a batch's frame mark (pulumi-tvd-read-<hex>) is not one.
      trips.push({ at: Date.now(), markers: text.match(/(?<![\w-])read-\d+/g) ?? [] });
      return { stdout: "", stderr: "", exitCode: 0 };
    },
  };
  return { trips, session: session as unknown as SshSession };
}

const read = (n: number) => ["echo", `read-${n}`];

it("reads that arrive 8 ms apart go as one round trip, sent 10 ms after the last", async () => {
  const { trips, session } = fakeSession();
  const batcher = readBatcherFor(session);
  const start = Date.now();
  const done: Array<Promise<ExecResult>> = [];
  for (let i = 0; i < 6; i++) {
    done.push(batcher.run(read(i)));
    await jest.advanceTimersByTimeAsync(8);
  }
  expect(trips).toEqual([]);
  await jest.advanceTimersByTimeAsync(2);
  await Promise.all(done);
  expect(trips).toEqual([
    { at: start + 50, markers: ["read-0", "read-1", "read-2", "read-3", "read-4", "read-5"] },
  ]);
});

it("a read that comes after a quiet 10 ms goes in the next round trip", async () => {
  const { trips, session } = fakeSession();
  const batcher = readBatcherFor(session);
  const first = batcher.run(read(1));
  await jest.advanceTimersByTimeAsync(12);
  const second = batcher.run(read(2));
  await jest.advanceTimersByTimeAsync(12);
  await Promise.all([first, second]);
  expect(trips.map((t) => t.markers)).toEqual([["read-1"], ["read-2"]]);
});

it("never waits more than 100 ms: a steady stream is cut into batches", async () => {
  const { trips, session } = fakeSession();
  const batcher = readBatcherFor(session);
  const start = Date.now();
  const done: Array<Promise<ExecResult>> = [];
  for (let i = 0; i < 30; i++) {
    done.push(batcher.run(read(i)));
    await jest.advanceTimersByTimeAsync(5);
  }
  await jest.advanceTimersByTimeAsync(20);
  await Promise.all(done);
  expect(trips[0].at - start).toBe(100);
  expect(trips[0].markers).toHaveLength(20);
  expect(trips.flatMap((t) => t.markers)).toHaveLength(30);
});
