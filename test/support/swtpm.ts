/**
 * A throwaway swtpm (TPM 1.2 or 2.0) on a Unix socket in its own temporary directory, for tests
 * of the TPM code against a real TPM. Stopped by its own pid; the directory goes with it.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface Swtpm {
  readonly dir: string;
  /** The server socket: tpm2-tools' `swtpm:path=`, the agent's `--tpm`. */
  readonly socket: string;
  stop(): Promise<void>;
}

export async function startSwtpm(
  version: "1.2" | "2.0",
  prepare?: (stateDir: string) => Promise<void>,
): Promise<Swtpm> {
  const dir = await mkdtemp(path.join(tmpdir(), "tvd-swtpm-"));
  const state = path.join(dir, "state");
  await mkdir(state);
  if (prepare) await prepare(state);
  const socket = path.join(dir, "tpm.sock");
  const args = [
    "socket",
    ...(version === "2.0" ? ["--tpm2"] : []),
    "--server",
    `type=unixio,path=${socket}`,
    "--ctrl",
    `type=unixio,path=${socket}.ctrl`,
    "--flags",
    "not-need-init,startup-clear",
    "--tpmstate",
    `dir=${state}`,
  ];
  const child: ChildProcess = spawn("swtpm", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100 && !existsSync(socket); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!existsSync(socket)) {
    await stop();
    throw new Error(`swtpm ${args.join(" ")} did not open its socket: ${stderr.trim()}`);
  }
  return { dir, socket, stop };
}

/** Runs a command; the error names it, its exit code and its stderr. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; allowFailure?: boolean } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env: { ...process.env, ...options.env }, cwd: options.cwd, maxBuffer: 16 << 20, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error && !(options.allowFailure && typeof error.code === "number")) {
          reject(
            new Error(
              `${command} ${args.join(" ")} failed (${error.code ?? error.signal}): ${stderr.trim()}`,
            ),
          );
        } else {
          resolve({ stdout, stderr, code: typeof error?.code === "number" ? error.code : 0 });
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Sends one raw TPM command over the swtpm's server socket and resolves with the whole response. */
export async function tpmCommand(socket: string, command: Buffer): Promise<Buffer> {
  // swtpm serves one client at a time and listens with a backlog of 1 (`ss -xl` shows it). Once,
  // in a loaded fresh-clone run, every connect to a live, listening swtpm was refused at once
  // after it started (ECONNREFUSED; the same socket took connections later). A refused client
  // tries again, for up to 10 s, as a TPM client of a busy swtpm must.
  for (let attempt = 0; ; attempt++) {
    try {
      return await tpmCommandOnce(socket, command);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!(code === "ECONNREFUSED" || code === "EAGAIN") || attempt >= 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function tpmCommandOnce(socket: string, command: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let answer = Buffer.alloc(0);
    conn.on("error", reject);
    conn.on("data", (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      if (answer.length >= 6 && answer.length >= answer.readUInt32BE(2)) {
        conn.end();
        resolve(answer);
      }
    });
    conn.write(command);
  });
}

/**
 * Extends one PCR the way pv-grub does (provider/tpm/pvgrub.ts): TPM 1.2 `TPM_Extend` with the
 * SHA-1 digest; TPM 2.0 `TPM2_PCR_Extend` (password session, empty auth) with each bank's digest.
 */
export async function extendPcr(
  tpm: Swtpm,
  version: "1.2" | "2.0",
  pcr: number,
  digests: { sha1: Buffer; sha256?: Buffer },
): Promise<void> {
  const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  const frame = (tag: number, code: number, body: Buffer): Buffer =>
    Buffer.concat([u16(tag), u32(10 + body.length), u32(code), body]);
  let command: Buffer;
  if (version === "1.2") {
    command = frame(0x00c1, 0x14, Buffer.concat([u32(pcr), digests.sha1]));
  } else {
    const values = [
      Buffer.concat([u16(0x0004), digests.sha1]),
      ...(digests.sha256 ? [Buffer.concat([u16(0x000b), digests.sha256])] : []),
    ];
    // TPM_RS_PW, empty nonce, no attributes, empty password.
    const session = Buffer.concat([u32(0x40000009), u16(0), Buffer.from([0]), u16(0)]);
    command = frame(
      0x8002,
      0x182,
      Buffer.concat([u32(pcr), u32(session.length), session, u32(values.length), ...values]),
    );
  }
  const response = await tpmCommand(tpm.socket, command);
  const rc = response.readUInt32BE(6);
  if (rc !== 0) throw new Error(`TPM ${version} extend of PCR ${pcr} returned 0x${rc.toString(16)}`);
}
