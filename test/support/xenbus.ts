/**
 * A xenstore wire-protocol client for tests: what a guest's kernel would send down
 * /dev/xen/xenbus, over the lab's per-guest xenbus socket.
 */
import * as net from "node:net";
import { decode, encode, XS, type XsMessage } from "../../lab/xenstore/xenbus";

export { XS };

export interface XsReply {
  readonly type: number;
  /** The payload as text (nuls kept). */
  readonly text: string;
  /** XS_ERROR's errno name ("EACCES"...), else undefined. */
  readonly errno?: string;
}

export class XenbusClient {
  private buf: Buffer = Buffer.alloc(0);
  private nextReq = 1;
  private readonly pending = new Map<number, (r: XsReply) => void>();
  readonly events: Array<{ path: string; token: string }> = [];
  private eventWaiters: Array<() => void> = [];

  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      const { messages, rest } = decode(this.buf);
      this.buf = rest;
      for (const m of messages) this.receive(m);
    });
  }

  static connect(socket: string): Promise<XenbusClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socket, () => resolve(new XenbusClient(sock)));
      sock.once("error", reject);
    });
  }

  private receive(m: XsMessage): void {
    const text = m.payload.toString("utf8");
    if (m.type === XS.WATCH_EVENT) {
      const [path, token] = text.split("\0");
      this.events.push({ path, token });
      for (const w of this.eventWaiters.splice(0)) w();
      return;
    }
    const done = this.pending.get(m.reqId);
    this.pending.delete(m.reqId);
    done?.({ type: m.type, text, errno: m.type === XS.ERROR ? text.replace(/\0$/, "") : undefined });
  }

  request(type: number, payload: string): Promise<XsReply> {
    const reqId = this.nextReq++;
    return new Promise((resolve) => {
      this.pending.set(reqId, resolve);
      this.sock.write(encode({ type, reqId, txId: 0, payload: Buffer.from(payload) }));
    });
  }

  read = (p: string) => this.request(XS.READ, `${p}\0`);
  write = (p: string, value: string) => this.request(XS.WRITE, `${p}\0${value}`);
  directory = (p: string) => this.request(XS.DIRECTORY, `${p}\0`);
  rm = (p: string) => this.request(XS.RM, `${p}\0`);
  watch = (p: string, token: string) => this.request(XS.WATCH, `${p}\0${token}\0`);
  unwatch = (p: string, token: string) => this.request(XS.UNWATCH, `${p}\0${token}\0`);

  /** Waits until an event matching `pred` has arrived (one already here counts). */
  async waitForEvent(
    pred: (e: { path: string; token: string }) => boolean,
    timeoutMs = 5000,
  ): Promise<{ path: string; token: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching watch event; got ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
