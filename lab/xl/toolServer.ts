/**
 * The lab's dom0 tools server: one long-lived Node process per lab host that runs `xl` and
 * `xenstore-*` calls for the thin client (toolClient.c) the host's wrappers exec. A lab host's
 * xl had been a Node process per call: ~25 ms of the ~34 ms of CPU each call cost was Node
 * starting, ~4,700 calls in a run of the test suite, all queued on the host's lock. The client
 * costs about a millisecond and hands the call here, where the emulator's modules are loaded.
 *
 * Calls still run one at a time under the host's lab lock (the client holds it, as xl's wrapper
 * always did), in the caller's working directory, with the output and exit code the call would
 * have had as its own process. Started by the first client that finds no server, inside the
 * host's namespaces, in a session of its own; killed with the host's other processes (a dom0
 * reboot, stopHost). It exits after answering when its own build changed, so the next call
 * starts the new code.
 *
 * Request: u32 n, then n fields (u32 length, bytes): cwd, tool, args...
 * Answer:  u32 exit code, u32 length + stdout, u32 length + stderr.
 */
import { statSync, unlinkSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { runXenstore, type ToolOutput } from "../xenstore/tool";
import { injectedStderr } from "./faults";
import { runXl } from "./xl";

/** The request's fields once all its bytes are in, else undefined. */
export function parseRequest(buf: Buffer): string[] | undefined {
  if (buf.length < 4) return undefined;
  const n = buf.readUInt32BE(0);
  const fields: string[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    if (buf.length < at + 4) return undefined;
    const len = buf.readUInt32BE(at);
    if (buf.length < at + 4 + len) return undefined;
    fields.push(buf.toString("utf8", at + 4, at + 4 + len));
    at += 4 + len;
  }
  return fields;
}

export function encodeAnswer(out: ToolOutput): Buffer {
  const stdout = Buffer.from(out.stdout, "utf8");
  const stderr = Buffer.from(out.stderr, "utf8");
  const head = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  return Buffer.concat([head(out.exitCode), head(stdout.length), stdout, head(stderr.length), stderr]);
}

/** One call, as its own process would have run it (xl's entry point: ./main.ts). */
export function runTool(tool: string, args: string[]): ToolOutput {
  try {
    if (tool === "xl") {
      const out = runXl(args);
      // libxl logs to stderr before xl prints its result; an injected warning goes first too.
      return { ...out, stderr: injectedStderr(args[0]) + out.stderr };
    }
    return runXenstore(tool, args);
  } catch (e) {
    // What Node prints for an uncaught error, and its exit code.
    return { stdout: "", stderr: `${(e as Error).stack ?? String(e)}\n`, exitCode: 1 };
  }
}

const builtFiles = [
  __filename,
  path.join(__dirname, "xl.js"),
  path.join(__dirname, "..", "xenstore", "tool.js"),
];
const mtimes = () => builtFiles.map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0).join(",");

function serve(socketPath: string): void {
  const startedBuild = mtimes();
  try {
    unlinkSync(socketPath);
  } catch {
    // no stale socket
  }
  const server = net.createServer((conn) => {
    let buf = Buffer.alloc(0);
    conn.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const fields = parseRequest(buf);
      if (!fields) return;
      const [cwd, tool, ...args] = fields;
      try {
        process.chdir(cwd);
      } catch {
        process.chdir("/");
      }
      const answer = encodeAnswer(runTool(tool, args));
      const rebuilt = mtimes() !== startedBuild;
      // Closing unlinks the socket and stops listening before the answer goes out, so the next
      // call (queued on the lock behind this one) finds no server and starts the new build.
      if (rebuilt) server.close();
      conn.end(answer, () => rebuilt && process.exit(0));
    });
    conn.on("error", () => {
      // the client went away (killed by its timeout): the call ran to its end regardless
    });
  });
  server.listen(socketPath);
}

if (require.main === module) serve(process.argv[2]);
