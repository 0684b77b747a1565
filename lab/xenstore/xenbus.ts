/**
 * A guest's xenbus: a Unix socket that speaks the xenstore wire protocol (Xen's xs_wire.h), one
 * long-running server per guest (`node xenbus.js <domid> <socket>`), started by `xl create` and
 * stopped with the domain. It works on the host's one xenstore tree (store.ts), so what the guest
 * writes, dom0's `xenstore-read` sees, and what dom0 writes fires the guest's watches.
 *
 * A guest may read, write, remove and watch only under its own /local/domain/<domid>/data (the
 * node libxl makes writable by the domain): EACCES anywhere else. Paths are checked as
 * xenstored checks them first (EINVAL for characters outside [A-Za-z0-9-/_@], "//" or a trailing
 * "/"), so `..` can never walk out of the guest's subtree.
 *
 * Writes take the host's lab lock, as every xl and xenstore-* call does; reads need none (the tree
 * file is replaced by rename, so any read sees a whole tree). Watches are served by polling the
 * tree file.
 */
import { spawn } from "node:child_process";
import { statSync, unlinkSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { LAB_DIR } from "../xl/state";
import { loadTree, lookup, remove, saveTree, write, type XsNode } from "./store";

export const XS = {
  DIRECTORY: 1,
  READ: 2,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  WATCH_EVENT: 15,
  ERROR: 16,
  RESET_WATCHES: 21,
} as const;

export const HEADER_LEN = 16;
/** XENSTORE_PAYLOAD_MAX */
export const PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX */
const ABS_PATH_MAX = 3072;
const POLL_MS = 100;

export interface XsMessage {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Buffer;
}

/** struct xsd_sockmsg: type, req_id, tx_id, len, all little-endian uint32, then the payload. */
export function encode(m: XsMessage): Buffer {
  const head = Buffer.alloc(HEADER_LEN);
  head.writeUInt32LE(m.type, 0);
  head.writeUInt32LE(m.reqId, 4);
  head.writeUInt32LE(m.txId, 8);
  head.writeUInt32LE(m.payload.length, 12);
  return Buffer.concat([head, m.payload]);
}

/** Splits whole messages off the front of `buf`; returns them and what is left. */
export function decode(buf: Buffer): { messages: XsMessage[]; rest: Buffer } {
  const messages: XsMessage[] = [];
  while (buf.length >= HEADER_LEN) {
    const len = buf.readUInt32LE(12);
    if (buf.length < HEADER_LEN + len) break;
    messages.push({
      type: buf.readUInt32LE(0),
      reqId: buf.readUInt32LE(4),
      txId: buf.readUInt32LE(8),
      payload: buf.subarray(HEADER_LEN, HEADER_LEN + len),
    });
    buf = buf.subarray(HEADER_LEN + len);
  }
  return { messages, rest: buf };
}

class XsErrno extends Error {
  constructor(readonly errno: string) {
    super(errno);
  }
}

/** The payload split at its nuls: "a\0b\0" gives ["a", "b", ""]. */
function strings(payload: Buffer): string[] {
  return payload.toString("utf8").split("\0");
}

function oneArg(payload: Buffer): string {
  const parts = strings(payload);
  // Exactly one nul, at the end, as xenstored's onearg() wants.
  if (parts.length !== 2 || parts[1] !== "") throw new XsErrno("EINVAL");
  return parts[0];
}

const VALID = /^[A-Za-z0-9\-/_@]*$/;

/** A guest's view of the tree: its home, what it may touch, and paths as xenstored reads them. */
export class GuestView {
  readonly home: string;
  readonly data: string;

  constructor(readonly domid: number) {
    this.home = `/local/domain/${domid}`;
    this.data = `${this.home}/data`;
  }

  /** The absolute path of `p` (relative paths resolve against the home), checked as xenstored does. */
  absolute(p: string): string {
    if (p === "" || !VALID.test(p)) throw new XsErrno("EINVAL");
    const abs = p.startsWith("/") ? p : `${this.home}/${p}`;
    if (abs.includes("//") || (abs.endsWith("/") && abs !== "/") || abs.length > ABS_PATH_MAX)
      throw new XsErrno("EINVAL");
    return abs;
  }

  /** The absolute path of `p`, if the guest may read and write it. */
  permitted(p: string): string {
    const abs = this.absolute(p);
    if (abs !== this.data && !abs.startsWith(`${this.data}/`)) throw new XsErrno("EACCES");
    return abs;
  }

  /** How an event names `abs` to a watch registered with `given`: relative stays relative. */
  eventPath(abs: string, given: string): string {
    return given.startsWith("/") ? abs : abs.slice(this.home.length + 1);
  }
}

/** Every node under `node` (itself included) as path -> value. */
function flatten(node: XsNode | undefined, at: string, out = new Map<string, string>()): Map<string, string> {
  if (!node) return out;
  out.set(at, node.value);
  for (const [name, child] of Object.entries(node.children)) flatten(child, `${at}/${name}`, out);
  return out;
}

/** The nodes written, made or removed between two snapshots (a removed subtree by its top). */
export function changedPaths(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) changed.push(p);
  const removed = [...before.keys()].filter((p) => !after.has(p));
  for (const p of removed) {
    if (!removed.includes(p.slice(0, p.lastIndexOf("/")))) changed.push(p);
  }
  return changed;
}

/**
 * Runs `fn` holding the host's lab lock: `flock` holds it for a child that waits on its stdin,
 * and closing that stdin lets the lock go.
 */
function withLabLock<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "flock",
      [path.join(LAB_DIR, "lab.lock"), "sh", "-c", "echo locked; exec cat >/dev/null"],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    let done = false;
    child.on("error", reject);
    child.on("close", (code) => {
      if (!done) reject(new Error(`flock exited ${code} before it held the lab lock`));
    });
    child.stdout.once("data", () => {
      done = true;
      try {
        resolve(fn());
      } catch (e) {
        reject(e as Error);
      } finally {
        child.stdin.end();
      }
    });
  });
}

interface Watch {
  readonly given: string;
  readonly abs: string;
  readonly token: string;
  snapshot: Map<string, string>;
}

/** The tree as last read, re-read only when the file was replaced (saveTree renames a new one in). */
class TreeCache {
  private key = "";
  private tree: XsNode = { value: "", children: {} };
  /** Counts the re-reads, so the watch poll knows whether anything may have changed. */
  version = 0;

  get(): { tree: XsNode; version: number } {
    let key = "absent";
    try {
      const s = statSync(path.join(LAB_DIR, "xenstore.json"));
      key = `${s.ino}:${s.mtimeMs}:${s.size}`;
    } catch {
      // no tree yet
    }
    if (key !== this.key) {
      this.key = key;
      this.tree = loadTree();
      this.version++;
    }
    return { tree: this.tree, version: this.version };
  }
}

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  readonly watches: Watch[] = [];

  constructor(
    private readonly sock: net.Socket,
    private readonly view: GuestView,
    private readonly cache: TreeCache,
    private readonly serial: (job: () => Promise<void>) => void,
  ) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      const { messages, rest } = decode(this.buf);
      this.buf = rest;
      if (this.buf.length >= HEADER_LEN && this.buf.readUInt32LE(12) > PAYLOAD_MAX) {
        // xenstored drops a connection that announces an oversized message.
        sock.destroy();
        return;
      }
      for (const m of messages) this.serial(() => this.handle(m));
    });
    sock.on("error", () => undefined);
  }

  send(m: XsMessage): void {
    if (!this.sock.destroyed) this.sock.write(encode(m));
  }

  private reply(m: XsMessage, payload: Buffer | string): void {
    this.send({ type: m.type, reqId: m.reqId, txId: m.txId, payload: Buffer.from(payload) });
  }

  event(path: string, token: string): void {
    this.send({ type: XS.WATCH_EVENT, reqId: 0, txId: 0, payload: Buffer.from(`${path}\0${token}\0`) });
  }

  private async handle(m: XsMessage): Promise<void> {
    try {
      if (m.txId !== 0) throw new XsErrno("ENOENT"); // no transaction was started
      await this.dispatch(m);
    } catch (e) {
      if (!(e instanceof XsErrno)) throw e;
      this.send({ type: XS.ERROR, reqId: m.reqId, txId: m.txId, payload: Buffer.from(`${e.errno}\0`) });
    }
  }

  private async dispatch(m: XsMessage): Promise<void> {
    const v = this.view;
    switch (m.type) {
      case XS.READ: {
        const node = lookup(this.cache.get().tree, v.permitted(oneArg(m.payload)));
        if (!node) throw new XsErrno("ENOENT");
        return this.reply(m, node.value);
      }
      case XS.DIRECTORY: {
        const node = lookup(this.cache.get().tree, v.permitted(oneArg(m.payload)));
        if (!node) throw new XsErrno("ENOENT");
        const names = Object.keys(node.children).map((n) => `${n}\0`);
        if (Buffer.byteLength(names.join("")) > PAYLOAD_MAX) throw new XsErrno("E2BIG");
        return this.reply(m, names.join(""));
      }
      case XS.WRITE:
      case XS.MKDIR: {
        const payload = m.payload.toString("utf8");
        const nul = payload.indexOf("\0");
        if (nul < 0) throw new XsErrno("EINVAL");
        const abs = v.permitted(payload.slice(0, nul));
        const value = m.type === XS.WRITE ? payload.slice(nul + 1) : undefined;
        if (m.type === XS.MKDIR && payload.slice(nul + 1) !== "") throw new XsErrno("EINVAL");
        await withLabLock(() => {
          const tree = loadTree();
          if (value !== undefined) write(tree, abs, value);
          else if (!lookup(tree, abs)) write(tree, abs, "");
          saveTree(tree);
        });
        return this.reply(m, "OK\0");
      }
      case XS.RM: {
        const abs = v.permitted(oneArg(m.payload));
        await withLabLock(() => {
          const tree = loadTree();
          if (remove(tree, abs)) return saveTree(tree);
          // Removing what is not there is fine if its parent is, as in xenstored.
          if (!lookup(tree, abs.slice(0, abs.lastIndexOf("/")))) throw new XsErrno("ENOENT");
        });
        return this.reply(m, "OK\0");
      }
      case XS.WATCH: {
        const [given, token, end] = strings(m.payload);
        if (token === undefined || end !== "") throw new XsErrno("EINVAL");
        const abs = v.permitted(given);
        if (this.watches.some((w) => w.given === given && w.token === token)) throw new XsErrno("EEXIST");
        const watch = { given, abs, token, snapshot: flatten(lookup(this.cache.get().tree, abs), abs) };
        this.watches.push(watch);
        this.reply(m, "OK\0");
        // xenstored fires every new watch once, with the path as it was given.
        return this.event(given, token);
      }
      case XS.UNWATCH: {
        const [given, token] = strings(m.payload);
        const i = this.watches.findIndex((w) => w.given === given && w.token === token);
        if (i < 0) throw new XsErrno("ENOENT");
        this.watches.splice(i, 1);
        return this.reply(m, "OK\0");
      }
      case XS.RESET_WATCHES:
        this.watches.length = 0;
        return this.reply(m, "OK\0");
      case XS.GET_DOMAIN_PATH: {
        const id = oneArg(m.payload);
        if (!/^\d+$/.test(id)) throw new XsErrno("EINVAL");
        return this.reply(m, `/local/domain/${Number(id)}\0`);
      }
      case XS.TRANSACTION_START:
      case XS.TRANSACTION_END:
        throw new XsErrno("ENOSYS");
      default:
        throw new XsErrno("EINVAL");
    }
  }

  /** Fires this connection's watches for what changed in `tree`. */
  poll(tree: XsNode): void {
    for (const w of this.watches) {
      const now = flatten(lookup(tree, w.abs), w.abs);
      for (const p of changedPaths(w.snapshot, now)) this.event(this.view.eventPath(p, w.given), w.token);
      w.snapshot = now;
    }
  }
}

export function serve(domid: number, socketPath: string): net.Server {
  const view = new GuestView(domid);
  const cache = new TreeCache();
  const connections = new Set<Connection>();
  // One request at a time across connections: a write and the next read see the tree in order.
  let queue: Promise<void> = Promise.resolve();
  const serial = (job: () => Promise<void>) => {
    queue = queue.then(job).catch((e: Error) => {
      process.stderr.write(`xenbus: ${e.stack ?? e.message}\n`);
    });
  };
  try {
    unlinkSync(socketPath);
  } catch {
    // none left over
  }
  const server = net.createServer((sock) => {
    const c = new Connection(sock, view, cache, serial);
    connections.add(c);
    sock.on("close", () => connections.delete(c));
  });
  server.listen(socketPath);
  let polled = -1;
  const timer = setInterval(() => {
    serial(async () => {
      // Most guests watch nothing (no agent): they cost a timer, not a read of the host's tree.
      if (![...connections].some((c) => c.watches.length)) return;
      const { tree, version } = cache.get();
      if (version === polled) return;
      polled = version;
      for (const c of connections) c.poll(tree);
    });
  }, POLL_MS);
  server.on("close", () => clearInterval(timer));
  return server;
}

if (require.main === module) {
  const [domid, socketPath] = process.argv.slice(2);
  if (!/^\d+$/.test(domid ?? "") || !socketPath) {
    process.stderr.write("usage: xenbus.js <domid> <socket>\n");
    process.exit(2);
  }
  serve(Number(domid), socketPath);
  const stop = () => {
    try {
      unlinkSync(socketPath);
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
