import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { runChecked } from "./exec";

/** One lab host as Pulumi programs and tests see it (the inventory entry). */
export interface LabHostEntry {
  readonly name: string;
  readonly kind: "sim";
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKeyPath: string;
  readonly hostKeyFingerprint: string;
}

/** A private mount inside the host's mount namespace. */
export type HostMount =
  /** A size-limited tmpfs: gone when the host stops (tests). */
  | { readonly kind: "tmpfs"; readonly path: string; readonly sizeMiB: number }
  /** A directory of the host's state dir bound over `path`: survives restarts. */
  | { readonly kind: "bind"; readonly path: string; readonly source: string };

export interface SshdHostOptions {
  readonly name: string;
  /** Directory holding this host's keys, config and logs (a subdirectory per host is made). */
  readonly stateDir: string;
  readonly port: number;
  /** @default "127.0.0.1" */
  readonly address?: string;
  /** Private mounts inside the host's mount namespace, applied in order. */
  readonly mounts?: readonly HostMount[];
  /** Extra sshd_config lines (e.g. SetEnv). */
  readonly sshdConfig?: readonly string[];
  /**
   * Leave sshd running after this process exits (the lab CLI); otherwise it is a child that
   * stop() ends (tests).
   * @default false
   */
  readonly detached?: boolean;
}

export interface SshdHost extends LabHostEntry {
  readonly pid: number;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

async function ensureKey(file: string, comment: string): Promise<void> {
  if (!existsSync(file)) {
    await runChecked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  }
}

/** `SHA256:...` of a public key file, as `ssh-keygen -lf` prints it. */
export async function fingerprintOfKeyFile(pubFile: string): Promise<string> {
  const { stdout } = await runChecked(["ssh-keygen", "-l", "-E", "sha256", "-f", pubFile]);
  const fp = stdout.split(/\s+/)[1];
  if (!fp?.startsWith("SHA256:")) throw new Error(`unexpected ssh-keygen -l output: ${stdout}`);
  return fp;
}

function renderSshdConfig(o: {
  address: string;
  port: number;
  dir: string;
  extra: readonly string[];
}): string {
  return [
    `ListenAddress ${o.address}:${o.port}`,
    `HostKey ${o.dir}/ssh_host_ed25519_key`,
    `PidFile ${o.dir}/sshd.pid`,
    `AuthorizedKeysFile ${o.dir}/authorized_keys`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    // The state dir lives under a world-readable checkout or /tmp.
    "StrictModes no",
    "MaxSessions 10",
    "MaxStartups 100:30:200",
    "LogLevel ERROR",
    ...o.extra,
    "",
  ].join("\n");
}

/** Waits until something on host:port speaks SSH. */
export async function waitForSsh(host: string, port: number, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const s = net.connect({ host, port });
      let data = "";
      s.setTimeout(1000, () => s.destroy());
      s.on("data", (d) => {
        data += d.toString("latin1");
        if (data.includes("\n")) s.destroy();
      });
      s.on("close", () => resolve(data));
      s.on("error", () => resolve(""));
    });
    if (banner.startsWith("SSH-2.0-")) return;
    if (Date.now() > deadline)
      throw new Error(`nothing answered SSH on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/**
 * Starts a real OpenSSH sshd with its own host key and key-only login, inside its own mount
 * namespace so that its tmpfs mounts are private to it.
 */
export async function startSshdHost(opts: SshdHostOptions): Promise<SshdHost> {
  const address = opts.address ?? "127.0.0.1";
  const dir = path.resolve(opts.stateDir, opts.name);
  mkdirSync(dir, { recursive: true });
  mkdirSync("/run/sshd", { recursive: true });
  await ensureKey(path.join(dir, "ssh_host_ed25519_key"), `${opts.name}-host`);
  await ensureKey(path.join(dir, "id_ed25519"), `pulumi-tvd-lab@${opts.name}`);
  writeFileSync(path.join(dir, "authorized_keys"), readFileSync(path.join(dir, "id_ed25519.pub")));
  writeFileSync(
    path.join(dir, "sshd_config"),
    renderSshdConfig({ address, port: opts.port, dir, extra: opts.sshdConfig ?? [] }),
  );
  await runChecked([SSHD, "-t", "-f", path.join(dir, "sshd_config")]);

  // Mount targets and sources travel as positional arguments, never inside the script text.
  const mountArgs: string[] = [];
  for (const m of opts.mounts ?? []) {
    if (m.kind === "tmpfs") mountArgs.push("tmpfs", m.path, `size=${m.sizeMiB}m`);
    else {
      mkdirSync(m.source, { recursive: true });
      mountArgs.push("bind", m.path, m.source);
    }
  }
  const script = [
    "cfg=$1; shift",
    'while [ "$#" -gt 0 ]; do',
    '  mkdir -p "$2"',
    '  case "$1" in',
    '    tmpfs) mount -t tmpfs -o "$3" tmpfs "$2" ;;',
    '    bind) mount --bind "$3" "$2" ;;',
    "  esac || exit 1",
    "  shift 3",
    "done",
    `exec ${SSHD} -D -e -f "$cfg"`,
  ].join("\n");
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "sh",
      "-c",
      script,
      "sshd-host",
      path.join(dir, "sshd_config"),
      ...mountArgs,
    ],
    {
      stdio: ["ignore", "ignore", opts.detached ? openSync(path.join(dir, "sshd.log"), "a") : "pipe"],
      detached: true,
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.unref();
  (child.stderr as net.Socket | null)?.unref?.();
  try {
    await Promise.race([
      waitForSsh(address, opts.port),
      exited.then(() => {
        const log = opts.detached ? readFileSync(path.join(dir, "sshd.log"), "utf8") : stderr;
        throw new Error(`sshd for ${opts.name} exited: ${log.trim()}`);
      }),
    ]);
  } catch (err) {
    child.kill("SIGTERM");
    throw err;
  }

  return {
    name: opts.name,
    kind: "sim",
    host: address,
    port: opts.port,
    user: "root",
    privateKeyPath: path.join(dir, "id_ed25519"),
    hostKeyFingerprint: await fingerprintOfKeyFile(path.join(dir, "ssh_host_ed25519_key.pub")),
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, "SIGTERM");
        await exited;
      }
    },
  };
}
