import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import * as net from "node:net";
import { Client, type ClientChannel } from "ssh2";
import { stepLabel } from "../dom0/scriptNames";
import { endpointOf, hostKeyPolicyOf, type Connection } from "./connection";
import { ConnectionError, RemoteCommandError } from "./errors";
import { verifyHostKey } from "./hostKey";
import { joinArgv } from "./quote";

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
}

export interface ExecOptions {
  /** Bytes written to the command's stdin, then closed. */
  readonly stdin?: string | Buffer;
  /** Overrides the connection's commandTimeoutSec (here and on the dom0, where the command is killed). */
  readonly timeoutSec?: number;
  /** Values to replace with *** in error messages (secrets that appear in argv). */
  readonly redact?: readonly string[];
}

/** sshd's MaxSessions defaults to 10 channels per connection; stay below it. */
const DEFAULT_CHANNELS_PER_HOST = 8;
const CONNECT_ATTEMPTS = 4;
const CHANNEL_ATTEMPTS = 8;

/** The server refused one channel; the connection itself is fine. */
class ChannelRefused extends Error {}

/**
 * Appends one line per connect and round trip to $PULUMI_TVD_STATS, for benchmarks and tests. A
 * round trip carries its step: the command's first words or its script's name (stepLabel), never
 * an argument's value.
 */
function recordStat(
  event: "connect" | "exec" | "done",
  endpoint: string,
  argv?: readonly string[],
  extra: { ms?: number; waitMs?: number } = {},
): void {
  const file = process.env.PULUMI_TVD_STATS;
  if (!file) return;
  const step = argv ? { step: stepLabel(argv) } : {};
  appendFileSync(
    file,
    JSON.stringify({ event, endpoint, ...step, pid: process.pid, at: Date.now(), ...extra }) + "\n",
  );
}

/**
 * With $PULUMI_TVD_STATS_TIMES set as well, each round trip also gets a "done" line with its
 * milliseconds on the channel and its wait for one (waitMs): where an operation's time goes.
 */
const recordTimes = () => Boolean(process.env.PULUMI_TVD_STATS && process.env.PULUMI_TVD_STATS_TIMES);

/** Bounds concurrent channels on one connection. */
class Semaphore {
  private waiters: Array<() => void> = [];
  private free: number;
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return () => {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * One SSH connection to one dom0, shared by every resource on that host. The socket is unref'd
 * while no command runs, so an idle pooled connection never keeps a process alive.
 */
export class SshSession {
  private inFlight = 0;
  private readonly channels = new Semaphore(DEFAULT_CHANNELS_PER_HOST);
  private closed = false;

  private constructor(
    readonly endpoint: string,
    private readonly client: Client,
    private readonly socket: net.Socket,
    private readonly commandTimeoutSec: number,
  ) {
    client.on("close", () => {
      this.closed = true;
    });
    client.on("error", () => {
      this.closed = true;
    });
    socket.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  static async open(conn: Connection): Promise<SshSession> {
    const endpoint = endpointOf(conn);
    if (hostKeyPolicyOf(conn).kind === "insecureAcceptAny") {
      // Loud on purpose: anyone on the path to this host can impersonate it now.
      console.warn(
        `WARNING: pulumi-tvd is NOT verifying the host key of ${endpoint} (insecureSkipHostKeyVerification); ` +
          "set hostKeyFingerprint or knownHosts",
      );
    }
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
      try {
        return await SshSession.connectOnce(conn, endpoint);
      } catch (err) {
        lastError = err as Error;
        // A rejected host key or failed authentication will not get better by retrying.
        if ((err as { permanent?: boolean }).permanent) break;
        if (attempt < CONNECT_ATTEMPTS) await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
      }
    }
    throw new ConnectionError(endpoint, lastError?.message ?? "unknown error");
  }

  private static connectOnce(conn: Connection, endpoint: string): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const policy = hostKeyPolicyOf(conn);
      let hostKeyProblem: string | undefined;
      const socket = packetWrites(net.connect({ host: conn.host, port: conn.port, noDelay: true }));
      const client = new Client();
      const fail = (err: Error, permanent = false) => {
        client.end();
        socket.destroy();
        reject(Object.assign(err, { permanent }));
      };
      socket.once("error", (err) => fail(err));
      client.once("ready", () => {
        recordStat("connect", endpoint);
        resolve(new SshSession(endpoint, client, socket, conn.commandTimeoutSec));
      });
      client.once("error", (err: Error & { level?: string }) => {
        if (hostKeyProblem) fail(new Error(hostKeyProblem), true);
        else if (err.level === "client-authentication")
          fail(
            new Error(`authentication as ${conn.user} failed: the host did not accept the private key`),
            true,
          );
        else fail(err);
      });
      client.connect({
        sock: socket,
        username: conn.user,
        privateKey: conn.privateKey,
        passphrase: conn.passphrase,
        readyTimeout: conn.connectTimeoutSec * 1000,
        keepaliveInterval: 15000,
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(policy, conn.host, conn.port, key);
          if (!verdict.ok) hostKeyProblem = `refusing to connect: ${verdict.reason}`;
          return verdict.ok;
        },
      });
    });
  }

  /** Runs argv on the host; resolves with its output whatever the exit code. */
  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const asked = Date.now();
    const release = await this.channels.acquire();
    const started = Date.now();
    this.inFlight++;
    this.socket.ref();
    try {
      recordStat("exec", this.endpoint, argv);
      // sshd frees a session slot a moment after the channel closes on our side, so a burst can
      // briefly exceed MaxSessions; a refused channel open is retried, a broken connection not.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.execOnce(argv, opts);
        } catch (err) {
          if (!(err instanceof ChannelRefused) || attempt >= CHANNEL_ATTEMPTS || this.closed) {
            throw err instanceof ChannelRefused ? new ConnectionError(this.endpoint, err.message) : err;
          }
          await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
        }
      }
    } finally {
      release();
      if (--this.inFlight === 0) this.socket.unref();
      if (recordTimes())
        recordStat("done", this.endpoint, argv, { ms: Date.now() - started, waitMs: started - asked });
    }
  }

  /** Runs argv and throws RemoteCommandError unless it exits 0. */
  async check(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.run(argv, opts);
    if (result.exitCode !== 0) {
      throw new RemoteCommandError(this.endpoint, redact(argv, opts.redact), result.exitCode, result.stderr);
    }
    return result;
  }

  private execOnce(argv: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const timeoutSec = opts.timeoutSec ?? this.commandTimeoutSec;
    // The command dies on the dom0 when it runs out of time, not only here: a script that went
    // on after we gave up could still link or move its file into place. timeout(1) kills its
    // whole process group (flock, sh, dd...), with SIGKILL so that no trap or handler runs on.
    const command = remoteCommand(timeoutSec, argv);
    const shown = () => redact(argv, opts.redact);
    return new Promise((resolve, reject) => {
      // Before the request goes out, so that it is earlier than the command's start on the dom0.
      const started = Date.now();
      this.client.exec(command, (err: Error | undefined, channel: ClientChannel) => {
        if (err) {
          reject(new ChannelRefused(`could not open a channel: ${err.message}`));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let exitCode: number | null = null;
        let exitSignal: string | undefined;
        const timedOut = (where: string) =>
          new RemoteCommandError(
            this.endpoint,
            shown(),
            null,
            `timed out after ${timeoutSec}s (${where}; raise connection.commandTimeoutSec if the host is slow)`,
          );
        // A backstop for a dom0 that does not answer: the remote kill normally comes first, and
        // the grace covers the time the command took to start there. Before giving up, ask sshd to
        // signal the command, in case it started late (timeout(1) passes TERM to its group).
        const backstop = setTimeout(
          () => {
            try {
              channel.signal("TERM");
            } catch {
              // the channel is gone already; the remote limit still applies
            }
            channel.close();
            reject(timedOut("no answer from the host"));
          },
          (timeoutSec + LOCAL_GRACE_SEC) * 1000,
        );
        channel.on("data", (d: Buffer) => out.push(d));
        channel.stderr.on("data", (d: Buffer) => errOut.push(d));
        channel.on("exit", (code: number | null, signal?: string) => {
          exitCode = code;
          exitSignal = signal ?? undefined;
        });
        channel.on("close", () => {
          clearTimeout(backstop);
          const killed = exitSignal === "SIGKILL" || exitCode === 128 + 9;
          if (killed && Date.now() - started >= timeoutSec * 1000) {
            reject(timedOut("killed on the host"));
            return;
          }
          resolve({
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(errOut).toString("utf8"),
            exitCode,
          });
        });
        if (opts.stdin !== undefined) channel.end(opts.stdin);
        else channel.end();
      });
    });
  }

  close(): void {
    this.closed = true;
    this.client.end();
  }
}

/** How much longer than the remote limit we wait for a dom0 to report its command's end. */
const LOCAL_GRACE_SEC = 5;

/**
 * Makes each SSH packet leave as one TCP segment, at once. ssh2 writes a packet in pieces (with
 * AES-GCM: its length, the ciphertext and the tag, each its own `write`). Under Nagle's algorithm
 * the first piece went out alone and the rest waited for its ACK, which sshd delays by up to 40 ms
 * while it waits for the rest of the packet: two such stalls in every round trip (the channel
 * open and the exec request each wait for sshd's answer), 114 ms a round trip of `true` on an idle
 * lab host, 59 ms without them. Writes made in one tick are corked and go as one `writev`, and
 * the socket has TCP_NODELAY, so nothing waits for an ACK.
 */
export function packetWrites(socket: net.Socket): net.Socket {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write(...args);
  }) as typeof socket.write;
  return socket;
}

/**
 * The command line for argv on the dom0: under coreutils' timeout(1), which SIGKILLs the
 * command's whole process group after `timeoutSec`, counted from when the command started there.
 */
export function remoteCommand(timeoutSec: number, argv: readonly string[]): string {
  if (!(timeoutSec > 0)) throw new Error(`a command timeout must be positive, got ${timeoutSec}`);
  return `${joinArgv(["timeout", "-s", "KILL", String(timeoutSec)])} ${joinArgv(argv)}`;
}

function redact(argv: readonly string[], secrets: readonly string[] = []): string {
  const shown = argv.map((a) => (secrets.some((s) => s !== "" && a.includes(s)) ? "***" : a));
  return shown.join(" ");
}

/**
 * All dynamic resources of one Pulumi program run in one Node process; this module-level pool
 * is what gives them one SSH connection per host.
 */
const pool = new Map<string, Promise<SshSession>>();

/**
 * Two resources share a connection only if they would have verified and authenticated it alike,
 * and time their commands out alike (the session applies commandTimeoutSec to each command).
 */
function poolKey(conn: Connection): string {
  const identity = JSON.stringify([
    hostKeyPolicyOf(conn),
    conn.privateKey,
    conn.passphrase ?? "",
    conn.commandTimeoutSec,
  ]);
  return `${endpointOf(conn)}#${createHash("sha256").update(identity).digest("hex").slice(0, 16)}`;
}

export async function sessionFor(conn: Connection): Promise<SshSession> {
  const key = poolKey(conn);
  const existing = pool.get(key);
  if (existing) {
    const session = await existing.catch(() => undefined);
    if (session && !session.isClosed) return session;
    pool.delete(key);
  }
  const opening = SshSession.open(conn);
  pool.set(key, opening);
  opening.catch(() => pool.delete(key));
  return opening;
}

/** Closes every pooled connection (tests, and processes that want a clean exit). */
export async function closeAllSessions(): Promise<void> {
  const sessions = await Promise.allSettled([...pool.values()]);
  pool.clear();
  for (const s of sessions) if (s.status === "fulfilled") s.value.close();
}

// Idle pooled sockets do not keep a process alive; when it is about to exit, say goodbye to
// each dom0 properly instead of dropping the TCP connection.
process.once("beforeExit", () => {
  if (pool.size) void closeAllSessions();
});
