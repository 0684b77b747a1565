/**
 * packetWrites (provider/transport/ssh.ts): the pieces ssh2 writes for one SSH packet in one tick
 * leave as one TCP segment, so that no piece waits behind Nagle's algorithm for the peer's delayed
 * ACK. Real sockets on loopback; the segments a socket sent are the kernel's count
 * (`ss -ti`: data_segs_out), since a reader cannot see where one segment ended.
 */
import { execFileSync } from "node:child_process";
import * as net from "node:net";
import { packetWrites } from "../../provider/transport/ssh";

/** Data segments the kernel sent from this local port so far. */
function dataSegmentsOut(port: number): number {
  const out = execFileSync("ss", ["-tinH", `sport = :${port}`], { encoding: "utf8" });
  // ss leaves the counter out while it is 0.
  if (!/\bsegs_out:\d+/.test(out)) throw new Error(`ss shows no TCP info for port ${port}: ${out}`);
  return Number(/data_segs_out:(\d+)/.exec(out)?.[1] ?? 0);
}

/** Writes each tick's pieces, waits for the server's answer to them; the data segments each tick took. */
async function segmentsPerTick(
  wrap: boolean,
  ticks: Buffer[][],
): Promise<{ segments: number[]; got: Buffer }> {
  const chunks: Buffer[] = [];
  const server = net.createServer((s) => s.on("data", (d) => chunks.push(d) && s.write("k")));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const plain = net.connect({ host: "127.0.0.1", port, noDelay: true });
  const socket = wrap ? packetWrites(plain) : plain;
  await new Promise<void>((r) => socket.once("connect", () => r()));
  const segments: number[] = [];
  try {
    for (const pieces of ticks) {
      const before = dataSegmentsOut(socket.localPort!);
      const answered = new Promise<void>((r) => socket.once("data", () => r()));
      for (const p of pieces) expect(typeof socket.write(p)).toBe("boolean");
      await answered;
      // Every byte was read before the answer came, so every segment was sent.
      segments.push(dataSegmentsOut(socket.localPort!) - before);
    }
  } finally {
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
  return { segments, got: Buffer.concat(chunks) };
}

/** One SSH packet as ssh2 writes it with AES-GCM: its length, the ciphertext, the tag. */
const packet = (n: number) => [
  Buffer.from([0, 0, 0, 20 + n]),
  Buffer.alloc(16 + n, n),
  Buffer.alloc(16, 0xee),
];

describe("packetWrites", () => {
  it("sends the pieces written in one tick as one segment, and each tick's as its own", async () => {
    const { segments, got } = await segmentsPerTick(true, [packet(1), packet(2), packet(3)]);
    expect(segments).toEqual([1, 1, 1]);
    expect(got).toEqual(Buffer.concat([...packet(1), ...packet(2), ...packet(3)]));
  });

  it("is what makes the difference: a plain socket sends each piece as its own segment", async () => {
    const { segments } = await segmentsPerTick(false, [packet(1), packet(2)]);
    for (const n of segments) expect(n).toBeGreaterThan(1);
  });

  it("keeps the socket's own writes working: callbacks run, bytes arrive in order", async () => {
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const socket = packetWrites(
      net.connect({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, noDelay: true }),
    );
    const written: string[] = [];
    let echoed = "";
    socket.on("data", (d) => (echoed += d.toString()));
    await new Promise<void>((r) => socket.once("connect", () => r()));
    await new Promise<void>((r) => {
      socket.write("a", () => written.push("a"));
      socket.write(Buffer.from("b"), () => written.push("b"));
      socket.write("c", "utf8", () => {
        written.push("c");
        r();
      });
    });
    while (echoed.length < 3) await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    expect(written).toEqual(["a", "b", "c"]);
    expect(echoed).toBe("abc");
  });
});
