/**
 * OpenSSH keys and certificates, made by the real `ssh-keygen` where Pulumi runs, so that what a
 * TVD member's sshd loads is exactly what OpenSSH itself writes. Keys pass through files in a
 * private temporary directory, removed whatever happens; a private key never appears in argv, in
 * an error or in a log.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fingerprintOf } from "../transport/hostKey";

const SSH_KEYGEN = "ssh-keygen";
const TIMEOUT_MS = 30_000;

export interface SshKeyPair {
  /** OpenSSH PEM (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted. */
  readonly privateKey: string;
  /** One line, `ssh-ed25519 AAAA... <comment>`. */
  readonly publicKey: string;
  /** `SHA256:...`, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

export interface HostCertificateRequest {
  readonly caPrivateKey: string;
  /** The host's public key line, as in its ssh_host_*_key.pub. */
  readonly hostPublicKey: string;
  /** The key ID, logged by sshd and ssh when the certificate is used. */
  readonly identity: string;
  /** The host names and addresses clients may reach the host by. */
  readonly principals: readonly string[];
  /** @default - a random positive 48-bit number */
  readonly serial?: number;
  readonly validityDays: number;
}

export interface SshCertificateDescription {
  readonly type: "host" | "user";
  /** A decimal string: OpenSSH serials are 64-bit, beyond a JavaScript number. */
  readonly serial: string;
  readonly principals: string[];
  readonly signingCaFingerprint: string;
  readonly keyId: string;
}

/** Runs ssh-keygen; a failure names the command (argv holds paths, never key material) and its stderr. */
async function sshKeygen(args: readonly string[]): Promise<string> {
  const command = [SSH_KEYGEN, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(SSH_KEYGEN, args, {
      stdio: ["ignore", "pipe", "pipe"],
      // A new session has no controlling terminal, and the environment names no agent, askpass
      // or ~/.ssh: a passphrase-protected key fails at once instead of prompting on a tty nobody
      // watches, and nothing of the user's own SSH setup takes part.
      detached: true,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), LC_ALL: "C" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === "ENOENT"
          ? new Error(
              `${command}: ssh-keygen is not on PATH; install openssh-client (apt-get install openssh-client)`,
            )
          : new Error(`${command} could not start: ${e.message}`),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const why = timedOut
        ? `timed out after ${TIMEOUT_MS / 1000}s`
        : code !== null
          ? `exit code ${code}`
          : `signal ${signal}`;
      const lastLines = stderr.trim().split("\n").slice(-5).join("\n").trim();
      reject(new Error(`${command} failed (${why}): ${lastLines || "(no stderr)"}`));
    });
  });
}

/** Runs `work` in a fresh directory only this user can enter, and removes the directory after. */
async function inPrivateDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "pulumi-tvd-ssh-"));
  try {
    await chmod(dir, 0o700);
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function oneLine(text: string, what: string): string {
  const line = text.trim();
  if (line === "" || line.includes("\n")) throw new Error(`${what} must be exactly one line`);
  return line;
}

/** The OpenSSH fingerprint of a public key or certificate line (`<type> <base64> [comment]`). */
export function publicKeyFingerprint(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1];
  if (!blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) {
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(publicKeyLine.slice(0, 80))}`);
  }
  return fingerprintOf(Buffer.from(blob, "base64"));
}

/** A new ed25519 key pair, unencrypted (a host key is read by sshd at boot, with nobody to type). */
export async function generateSshKeyPair(comment: string): Promise<SshKeyPair> {
  if (/[\p{Cc}]/u.test(comment)) throw new Error("the key comment must not hold control characters");
  return inPrivateDir(async (dir) => {
    const keyPath = path.join(dir, "key");
    await sshKeygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", keyPath]);
    const publicKey = oneLine(await readFile(`${keyPath}.pub`, "utf8"), "the public key");
    return {
      privateKey: await readFile(keyPath, "utf8"),
      publicKey,
      fingerprint: publicKeyFingerprint(publicKey),
    };
  });
}

/** A random positive serial below 2^48, well inside what a JavaScript number holds exactly. */
export function randomSshSerial(): number {
  return randomBytes(6).readUIntBE(0, 6) || 1;
}

/** A host certificate for `hostPublicKey`, signed by the CA key: `ssh-keygen -s -h`. */
export async function signHostCertificate(
  req: HostCertificateRequest,
): Promise<{ certificate: string; serial: number }> {
  const serial = req.serial ?? randomSshSerial();
  if (!Number.isSafeInteger(serial) || serial < 0)
    throw new Error(`serial ${serial} must be a whole number >= 0`);
  if (!Number.isInteger(req.validityDays) || req.validityDays < 1) {
    throw new Error(`validityDays ${req.validityDays} must be a whole number of days, at least 1`);
  }
  if (req.principals.length === 0) throw new Error("a host certificate needs at least one principal");
  // ssh-keygen splits -n on commas; a principal holding one would silently become two.
  const badPrincipal = req.principals.find((p) => p === "" || /[,\s\p{Cc}]/u.test(p));
  if (badPrincipal !== undefined) {
    throw new Error(
      `principal ${JSON.stringify(badPrincipal)} must be non-empty, without commas, spaces or control characters`,
    );
  }
  if (/[\p{Cc}]/u.test(req.identity))
    throw new Error("the certificate identity must not hold control characters");
  const hostPublicKey = oneLine(req.hostPublicKey, "hostPublicKey");
  return inPrivateDir(async (dir) => {
    const caPath = path.join(dir, "ca");
    const pubPath = path.join(dir, "host.pub");
    // ssh-keygen refuses a private key file that others may read.
    await writeFile(caPath, req.caPrivateKey.endsWith("\n") ? req.caPrivateKey : `${req.caPrivateKey}\n`, {
      mode: 0o600,
    });
    await writeFile(pubPath, `${hostPublicKey}\n`, { mode: 0o600 });
    await sshKeygen([
      "-q",
      "-s",
      caPath,
      "-I",
      req.identity,
      "-h",
      "-n",
      req.principals.join(","),
      "-z",
      String(serial),
      // From five minutes ago: a host whose clock lags a little still accepts the certificate.
      "-V",
      `-5m:+${req.validityDays}d`,
      pubPath,
    ]);
    const certificate = oneLine(await readFile(path.join(dir, "host-cert.pub"), "utf8"), "the certificate");
    return { certificate, serial };
  });
}

/** Parses `ssh-keygen -L` output (OpenSSH's own reading of a certificate). */
export function parseCertificateListing(listing: string): SshCertificateDescription {
  const field = (name: string): string => {
    const m = new RegExp(`^\\s*${name}:[ \\t]*(.*)$`, "m").exec(listing);
    if (!m) throw new Error(`ssh-keygen -L printed no "${name}:" line`);
    return m[1].trim();
  };
  const typeMatch = /\b(host|user) certificate$/.exec(field("Type"));
  if (!typeMatch) throw new Error(`unexpected certificate type line: ${field("Type")}`);
  const ca = /(SHA256:[A-Za-z0-9+/]+)/.exec(field("Signing CA"));
  if (!ca) throw new Error(`unexpected Signing CA line: ${field("Signing CA")}`);
  const keyId = field("Key ID").replace(/^"(.*)"$/, "$1");
  // Principals follow their heading one per line, indented deeper than it (a principal such as
  // an IPv6 address may itself look like a "Name:" line).
  const lines = listing.split("\n");
  const start = lines.findIndex((l) => /^\s*Principals:/.test(l));
  const indentOf = (l: string) => l.length - l.trimStart().length;
  const principals: string[] = [];
  if (start >= 0 && field("Principals") === "") {
    for (const l of lines.slice(start + 1)) {
      if (l.trim() === "" || indentOf(l) <= indentOf(lines[start])) break;
      principals.push(l.trim());
    }
  }
  return {
    type: typeMatch[1] as "host" | "user",
    serial: field("Serial"),
    principals,
    signingCaFingerprint: ca[1],
    keyId,
  };
}

/** What OpenSSH reads in a certificate line: `ssh-keygen -L -f`. */
export async function describeCertificate(certLine: string): Promise<SshCertificateDescription> {
  const line = oneLine(certLine, "the certificate");
  return inPrivateDir(async (dir) => {
    const certPath = path.join(dir, "key-cert.pub");
    await writeFile(certPath, `${line}\n`, { mode: 0o600 });
    return parseCertificateListing(await sshKeygen(["-L", "-f", certPath]));
  });
}
