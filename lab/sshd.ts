import { existsSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { connectionSchema } from "../provider/transport/connection";
import { sessionFor, type SshSession } from "../provider/transport/ssh";
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

export async function ensureKey(file: string, comment: string): Promise<void> {
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

export function renderSshdConfig(o: {
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

/** A session to an inventory host (either lab's), with its pinned host key, as the provider opens one. */
export function sessionForHost(
  h: Pick<LabHostEntry, "host" | "port" | "user" | "privateKeyPath" | "hostKeyFingerprint">,
  timeouts: { connectTimeoutSec?: number; commandTimeoutSec?: number } = {},
): Promise<SshSession> {
  return sessionFor(
    connectionSchema.parse({
      host: h.host,
      port: h.port,
      user: h.user,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
      ...timeouts,
    }),
  );
}
