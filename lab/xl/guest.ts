/**
 * What a started guest does, as far as pulumi-tvd can see it from dom0:
 *  - its xenbus: a xenstore server on a Unix socket of its own (../xenstore/xenbus.ts), standing in
 *    for /dev/xen/xenbus inside the guest;
 *  - cloud-init's part for the member agent: a guest with a vtpm device and a NoCloud seed disk (a
 *    FAT image labelled "cidata") whose seed holds `tvd-agent` and whose user-data writes
 *    /etc/tvd/agent.json runs `tvd-agent run` against its vTPM and its xenbus, in its own network
 *    namespace, logging to its console, until the domain stops.
 * Both are daemons of their own (like swtpm), so they outlive the xl call and an sshd restart.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import { alive } from "../proc";
import { XlError } from "./specs";
import {
  type DiskConfig,
  type DomainRecord,
  type HostSettings,
  type HostState,
  LAB_DIR,
  LOG_DIR,
} from "./state";

/** Where a guest's runtime lives on the host: `run/` is made afresh per start, `agent-state/` kept. */
export const guestDir = (name: string) => path.join(LAB_DIR, "guest", name);
export const xenbusSocket = (name: string) => path.join(guestDir(name), "run", "xenbus.sock");

/** The file the seed's user-data writes for the agent (agent/PROTOCOL.md). */
const AGENT_CONFIG = "/etc/tvd/agent.json";
const AGENT_BINARY = "tvd-agent";

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function consoleLine(name: string, line: string): void {
  appendFileSync(path.join(LOG_DIR, "console", `guest-${name}.log`), `${line}\n`);
}

/** Starts argv as a daemon (its own session, so no SSH session's end reaches it); its pid. */
function daemon(argv: string[], log: string): number {
  const fd = openSync(log, "a");
  try {
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
    child.unref();
    if (!child.pid) throw new XlError([`lab: cannot start ${argv[0]}`], 1);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Stops a daemon this module started, unless its pid now belongs to another process. */
function stopDaemon(pid: number | undefined, mark: string): void {
  if (!alive(pid)) return;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(mark)) return;
    process.kill(pid!, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 100 && alive(pid); i++) sleepMs(20);
  if (alive(pid)) process.kill(pid!, "SIGKILL");
}

/** The volume label in a FAT boot sector (FAT12/16 or FAT32), if `disk` starts with one. */
function fatLabel(file: string): string | undefined {
  const head = Buffer.alloc(512);
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    if (readSync(fd, head, 0, 512, 0) < 512 || head.readUInt16LE(510) !== 0xaa55) return undefined;
  } finally {
    closeSync(fd);
  }
  const at = (typeOff: number, labelOff: number) =>
    head.toString("latin1", typeOff, typeOff + 3) === "FAT"
      ? head.toString("latin1", labelOff, labelOff + 11).trimEnd()
      : undefined;
  return at(54, 43) ?? at(82, 71);
}

/** The guest's NoCloud seed: a raw disk whose FAT label is cidata (cloud-init also takes CIDATA). */
export function seedDisk(disks: readonly DiskConfig[]): string | undefined {
  return disks.find((d) => d.format === "raw" && fatLabel(d.pdev_path)?.toLowerCase() === "cidata")
    ?.pdev_path;
}

function mcopy(image: string, name: string, to: string): boolean {
  const r = spawnSync("mcopy", ["-n", "-i", image, `::${name}`, to], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    encoding: "utf8",
  });
  return r.status === 0;
}

/**
 * The content of /etc/tvd/agent.json as cloud-init's write_files would write it, parsed by PyYAML
 * as cloud-init parses user-data.
 */
const WRITE_FILE_PY = `
import base64, gzip, json, sys, yaml
doc = yaml.safe_load(sys.stdin) or {}
for f in doc.get("write_files") or []:
    if f.get("path") != sys.argv[1]:
        continue
    content = f.get("content") or ""
    enc = (f.get("encoding") or "").lower()
    data = content.encode() if isinstance(content, str) else bytes(content)
    if enc in ("b64", "base64"):
        data = base64.b64decode(data)
    elif enc in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        data = gzip.decompress(base64.b64decode(data))
    elif enc in ("gz", "gzip"):
        data = gzip.decompress(data)
    sys.stdout.buffer.write(data)
    sys.exit(0)
sys.exit(3)
`;

/** The agent's files from the seed, or why there are none. */
function extractAgent(seed: string, runDir: string): { bin: string; config: string } | string {
  const bin = path.join(runDir, AGENT_BINARY);
  if (!mcopy(seed, AGENT_BINARY, bin)) return `the seed holds no ${AGENT_BINARY}`;
  chmodSync(bin, 0o755);
  const userData = path.join(runDir, "user-data");
  if (!mcopy(seed, "user-data", userData)) return "the seed holds no user-data";
  const r = spawnSync("python3", ["-c", WRITE_FILE_PY, AGENT_CONFIG], { input: readFileSync(userData) });
  rmSync(userData);
  if (r.status === 3) return `user-data does not write ${AGENT_CONFIG}`;
  if (r.status !== 0) return `user-data cannot be read: ${r.stderr.toString().trim()}`;
  const config = path.join(runDir, "agent.json");
  writeFileSync(config, r.stdout, { mode: 0o600 });
  return { bin, config };
}

/**
 * The agent's state directory stands for /var/lib/tvd-agent on the guest's own root disk: kept
 * across restarts of the guest and across new seeds (cloud-init does not wipe a disk for a new
 * instance), emptied when the root disk is another file (an overlay made again: another guest).
 */
function agentStateDir(name: string, disks: readonly DiskConfig[], seed: string): string {
  const dir = path.join(guestDir(name), "agent-state");
  const stamp = path.join(guestDir(name), "root-disk");
  const root = disks.find((d) => d.pdev_path !== seed);
  let identity = "no root disk";
  if (root) {
    try {
      const st = statSync(root.pdev_path);
      identity = `${root.pdev_path} ${st.dev}:${st.ino}`;
    } catch {
      identity = `${root.pdev_path} (missing)`;
    }
  }
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== identity) {
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(stamp, identity);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Starts the guest's xenbus server and, when its seed says so, its agent. */
export function bootGuest(settings: HostSettings, state: HostState, d: DomainRecord): void {
  const runDir = path.join(guestDir(d.name), "run");
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const socket = xenbusSocket(d.name);
  const xenbusMain = path.join(__dirname, "..", "xenstore", "xenbus.js");
  const pid = daemon([settings.node, xenbusMain, String(d.domid), socket], path.join(runDir, "xenbus.log"));
  d.xenbus = { pid, socket };
  for (let i = 0; i < 250 && !existsSync(socket); i++) {
    if (!alive(pid)) break;
    sleepMs(20);
  }
  if (!existsSync(socket)) {
    stopGuest(d);
    throw new XlError(
      [
        `lab: the xenbus of ${d.name} did not start: ${readFileSync(path.join(runDir, "xenbus.log"), "utf8").trim()}`,
      ],
      1,
    );
  }

  const seed = seedDisk(d.config.disks);
  const vtpm = d.vtpms[0] && state.domains.find((x) => x.name === d.vtpms[0].backendName)?.swtpm;
  if (!seed || !vtpm) return;
  const files = extractAgent(seed, runDir);
  if (typeof files === "string") {
    consoleLine(d.name, `cloud-init: no tvd-agent: ${files}`);
    return;
  }
  const args = [
    files.bin,
    "run",
    // By the vTPM's name: the path stays valid when its domain restarts with a new swtpm.
    "--tpm",
    vtpm.server,
    "--xenbus",
    socket,
    "--config",
    files.config,
    "--state",
    agentStateDir(d.name, d.config.disks, seed),
  ];
  // The guest's network, and nothing else: its namespace, or a new empty one if it has no vif.
  const argv = d.netns
    ? ["nsenter", "-t", String(d.netns.pid), "-n", ...args]
    : ["unshare", "--net", "--", ...args];
  consoleLine(d.name, `cloud-init: starting ${AGENT_BINARY} run (vTPM ${d.vtpms[0].backendName})`);
  d.agent = { pid: daemon(argv, path.join(LOG_DIR, "console", `guest-${d.name}.log`)) };
}

/** Stops what bootGuest started; the agent's state directory stays. */
export function stopGuest(d: DomainRecord): void {
  if (d.agent) stopDaemon(d.agent.pid, AGENT_BINARY);
  if (d.xenbus) stopDaemon(d.xenbus.pid, "xenbus.js");
  d.agent = undefined;
  d.xenbus = undefined;
}
