/**
 * One lab host: a stand-in dom0 made of
 *  - a namespace holder: a process in its own mount and network namespaces, with the host's own
 *    /etc/xen, /var/lib/xen (a size-limited ext4 image), /var/log/xen, /usr/lib/xen/boot,
 *    /var/lib/tvd-lab and /usr/local/sbin (the xl emulator and xenstore tools) mounted inside;
 *  - a real OpenSSH sshd inside those namespaces, on the host's own 127.0.0.1:22;
 *  - a socat forwarder on the machine's 127.0.0.1:<port> into that sshd;
 *  - an `eth0` into the lab's underlay, a bridge in a namespace of its own that stands in for
 *    the switch between real dom0s (10.99.0.0/24).
 * Everything lives under <stateDir>/<name>/ and survives restarts of any of the three.
 */
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import { run, runChecked } from "./exec";
import { MEASURED_IMAGE, measuredBootDir, SEED_MEASURED_IMAGE, writeMeasuredBoot } from "./measuredTemplate";
import { alive } from "./proc";
import { ensureKey, fingerprintOfKeyFile, renderSshdConfig, waitForSsh, type LabHostEntry } from "./sshd";
import type { HostSettings } from "./xl/state";

export interface LabHostOptions {
  readonly name: string;
  readonly stateDir: string;
  readonly port: number;
  readonly memoryMiB: number;
  readonly diskMiB: number;
  readonly tpm2: boolean;
  readonly managerReadyDelaySec: number;
  readonly shutdownAckTimeoutSec: number;
}

export interface LabHostRecord extends LabHostEntry {
  readonly holderPid: number;
  readonly forwarderPid: number;
  readonly dir: string;
  /** The host's eth0 address on the lab's underlay. */
  readonly underlayIp: string;
}

/** A host whose own parts run; the lab joins it to the underlay afterwards. */
export type BootedHost = Omit<LabHostRecord, "underlayIp">;

/** Directories bound from the host's state dir over the same path inside its mount namespace. */
export const BOUND_DIRS = [
  "/etc/xen",
  "/var/log/xen",
  "/usr/lib/xen/boot",
  "/var/lib/tvd-lab",
  "/usr/local/sbin",
];
export const XEN_DATA = "/var/lib/xen";

/**
 * Where compiled lab code lives (`npm run build:lab`, tsconfig.lab.json): the emulator runs from
 * build/ whatever runs the lab. The library's dist/ holds no lab code.
 */
function labBuildDir(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return path.join(dir, "build");
  }
  throw new Error("cannot find the pulumi-tvd checkout");
}

export { alive };

/**
 * A pid file's pid, or undefined when there is none. sshd removes its own pid file as it exits, and
 * stopHost signals it (with every process in the host's namespace) just before reading that file:
 * a file that vanishes between the check and the read is a process already gone, not an error.
 */
export function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function writeExecutable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

/** Where a lab host's tool server listens, inside the host. */
export const TOOL_SOCKET = "/var/lib/tvd-lab/tools.sock";

/** The host's /usr/local/sbin: xl, xenstore-*, and the session wrapper that applies fault knobs. */
function installTools(root: string): void {
  const bin = path.join(root, "usr/local/sbin");
  mkdirSync(bin, { recursive: true });
  const build = labBuildDir();
  const lock = "/var/lib/tvd-lab/lab.lock";
  // Every xl and xenstore-* call on the host serializes on one lock, and is handed to the host's
  // tool server (lab/xl/toolServer.ts) by its thin client; flock -o keeps the lock's descriptor
  // out of the call, so a server the client starts does not hold the lock.
  const tool = (name: string) =>
    `#!/bin/sh\n# lab ${name} (pulumi-tvd): the emulator, through the host's tool server.\n` +
    `NODE_COMPILE_CACHE=/var/lib/tvd-lab/node-cache exec flock -o ${lock} ${build}/lab/bin/tvd-lab-tool ` +
    `${TOOL_SOCKET} ${process.execPath} ${build} ${name} "$@"\n`;
  for (const cmd of [
    "xl",
    "xenstore-read",
    "xenstore-write",
    "xenstore-ls",
    "xenstore-list",
    "xenstore-rm",
  ]) {
    writeExecutable(path.join(bin, cmd), tool(cmd));
  }
  writeExecutable(path.join(bin, "tvd-lab-session"), SESSION_WRAPPER);
}

/**
 * sshd's ForceCommand on lab hosts. It applies the fault knobs in /var/lib/tvd-lab/faults, then
 * runs the client's command exactly as sshd would have ($SHELL -c "<command>").
 *  latency-ms   every command first sleeps this long
 *  fail-rules   lines "<count> <extended regex>": the next <count> commands matching fail (exit 97)
 */
const SESSION_WRAPPER = `#!/bin/sh
faults=/var/lib/tvd-lab/faults
cmd=\${SSH_ORIGINAL_COMMAND-}
if [ -s "$faults/latency-ms" ]; then
  sleep "$(awk '{ printf "%.3f", $1 / 1000 }' "$faults/latency-ms")"
fi
if [ -n "$cmd" ] && [ -s "$faults/fail-rules" ]; then
  # Reading the rules and writing them back is one step under the lock: sessions run in
  # parallel, and a rewrite outside it could drop a rule another session had just kept.
  hit=$(
    flock "$faults/.lock" sh -c '
      f=$1/fail-rules
      awk -v cmd="$2" -v out="$f.new" '"'"'
        { n = $1; re = substr($0, index($0, " ") + 1) }
        !done && n > 0 && cmd ~ re { n--; done = 1; hitre = re }
        n > 0 { print n " " re > out }
        END { close(out); if (done) print hitre }
      '"'"' "$f"
      if [ -f "$f.new" ]; then mv "$f.new" "$f"; else : >"$f"; fi
    ' fault-rules "$faults" "$cmd"
  )
  if [ -n "$hit" ]; then
    echo "tvd-lab: injected failure (rule: $hit)" >&2
    exit 97
  fi
fi
if [ -z "$cmd" ]; then exec "\${SHELL:-/bin/sh}" -l; fi
exec "\${SHELL:-/bin/sh}" -c "$cmd"
`;

/** Stand-ins for what Debian and the Xen docs put on a dom0, created once per host. */
async function populate(root: string, dataImage: string, opts: LabHostOptions): Promise<void> {
  const boot = path.join(root, "usr/lib/xen/boot");
  mkdirSync(boot, { recursive: true });
  for (const [file, what] of [
    ["vtpmmgr-stubdom.gz", "vtpmmgr-stubdom (mini-os vTPM manager)"],
    ["vtpm-stubdom.gz", "vtpm-stubdom (mini-os vTPM)"],
    ["pv-grub-x86_64.gz", "pv-grub (measures kernel into PCR 4, cmdline and initrd into PCR 5)"],
    ["vmlinuz", "guest kernel"],
    ["initrd.img", "guest initrd"],
  ]) {
    const p = path.join(boot, file);
    if (!existsSync(p)) {
      writeFileSync(p.replace(/\.gz$/, ""), `pulumi-tvd lab stand-in for ${what}\n`);
      if (file.endsWith(".gz")) await runChecked(["gzip", "-n", "-f", p.replace(/\.gz$/, "")]);
    }
  }
  for (const d of ["etc/xen", "var/log/xen/console", "var/lib/tvd-lab/faults"])
    mkdirSync(path.join(root, d), { recursive: true });
  const settings: HostSettings = {
    name: opts.name,
    totalMemoryMiB: opts.memoryMiB,
    dom0MemoryMiB: 2048,
    nrCpus: 2,
    managerReadyDelaySec: opts.managerReadyDelaySec,
    shutdownAckTimeoutSec: opts.shutdownAckTimeoutSec,
    tpm2: opts.tpm2,
    xlcfg: path.join(labBuildDir(), "lab", "bin", "xlcfg"),
    node: process.execPath,
    xlMain: path.join(labBuildDir(), "lab", "xl", "main.js"),
  };
  writeFileSync(path.join(root, "var/lib/tvd-lab/host.json"), JSON.stringify(settings, null, 2) + "\n");
  if (!existsSync(dataImage)) {
    // Sparse: a 4 GiB /var/lib/xen costs only what is written to it. Size-limited so the
    // disk-full fault is real.
    await runChecked(["truncate", "-s", `${opts.diskMiB}M`, dataImage]);
    await runChecked(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", `${opts.name}-xen`, dataImage]);
  }
}

/** Where root's home is on a lab host: its own, so this machine's shell startup files stay out. */
export const LAB_ROOT_HOME = "/var/lib/tvd-lab/home/root";

/**
 * The host's /etc/passwd: this machine's, with root's home moved to LAB_ROOT_HOME. sshd runs
 * commands through root's shell, and bash sources ~/.bashrc for SSH commands; a developer's
 * .bashrc (pyenv, nvm...) can cost a second per command.
 */
function writeHostPasswd(dir: string, root: string): string {
  mkdirSync(path.join(root, LAB_ROOT_HOME), { recursive: true });
  const passwd = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((line) => {
      const f = line.split(":");
      if (f[0] === "root" && f.length === 7) f[5] = LAB_ROOT_HOME;
      return f.join(":");
    })
    .join("\n");
  const file = path.join(dir, "passwd");
  writeFileSync(file, passwd);
  return file;
}

function holderScript(): string {
  // Arguments: <host name> <data image> then pairs of <source> <target> to bind; values arrive as argv.
  return [
    'hostname "$1"; img=$2; shift 2',
    `mkdir -p ${XEN_DATA} && mount -o loop "$img" ${XEN_DATA} || exit 1`,
    'while [ "$#" -gt 0 ]; do { [ -e "$2" ] || mkdir -p "$2"; } && mount --bind "$1" "$2" || exit 1; shift 2; done',
    "ip link set lo up",
    // Holds the namespaces open; everything on the host lives as long as this does.
    "exec sleep infinity",
  ].join("\n");
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function spawnDetached(argv: string[], log: string): number {
  const fd = openSync(log, "a");
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
  child.unref();
  return child.pid!;
}

/** Starts whatever part of the host is not running; idempotent. */
export async function ensureHost(opts: LabHostOptions): Promise<BootedHost> {
  const dir = path.resolve(opts.stateDir, opts.name);
  const root = path.join(dir, "root");
  const dataImage = path.join(dir, "xen-data.ext4");
  mkdirSync(dir, { recursive: true });
  mkdirSync("/run/sshd", { recursive: true });
  await ensureKey(path.join(dir, "ssh_host_ed25519_key"), `${opts.name}-host`);
  await ensureKey(path.join(dir, "id_ed25519"), `pulumi-tvd-lab@${opts.name}`);
  writeFileSync(path.join(dir, "authorized_keys"), readFileSync(path.join(dir, "id_ed25519.pub")));
  installTools(root);
  writeMeasuredBoot(opts.stateDir);
  await populate(root, dataImage, opts);
  writeFileSync(
    path.join(dir, "sshd_config"),
    renderSshdConfig({
      address: "127.0.0.1",
      port: 22,
      dir,
      extra: ["ForceCommand /usr/local/sbin/tvd-lab-session"],
    }),
  );
  await runChecked(["/usr/sbin/sshd", "-t", "-f", path.join(dir, "sshd_config")]);

  let holderPid = readPid(path.join(dir, "holder.pid"));
  if (!alive(holderPid)) {
    const binds = BOUND_DIRS.flatMap((d) => {
      mkdirSync(path.join(root, d), { recursive: true });
      return [path.join(root, d), d];
    });
    binds.push(writeHostPasswd(dir, root), "/etc/passwd");
    holderPid = spawnDetached(
      [
        "unshare",
        "--mount",
        "--net",
        "--uts",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        holderScript(),
        "holder",
        opts.name,
        dataImage,
        ...binds,
      ],
      path.join(dir, "holder.log"),
    );
    writeFileSync(path.join(dir, "holder.pid"), `${holderPid}\n`);
    // Mounted and lo up once `sleep` replaced the shell.
    await waitFor(() => {
      if (!alive(holderPid))
        throw new Error(
          `host ${opts.name} failed to start: ${readFileSync(path.join(dir, "holder.log"), "utf8")}`,
        );
      return readFileSync(`/proc/${holderPid}/cmdline`, "utf8").startsWith("sleep");
    }, `host ${opts.name}'s namespaces`);
  }

  await startSshd(holderPid!, dir);

  let forwarderPid = readPid(path.join(dir, "forwarder.pid"));
  if (!alive(forwarderPid)) {
    forwarderPid = spawnDetached(
      [
        "socat",
        `TCP-LISTEN:${opts.port},bind=127.0.0.1,reuseaddr,fork`,
        `EXEC:nsenter -t ${holderPid} -n socat STDIO TCP\\:127.0.0.1\\:22`,
      ],
      path.join(dir, "forwarder.log"),
    );
    writeFileSync(path.join(dir, "forwarder.pid"), `${forwarderPid}\n`);
  }
  await seedXenData(holderPid!, opts.stateDir);
  await waitForSsh("127.0.0.1", opts.port);
  return {
    name: opts.name,
    kind: "sim",
    host: "127.0.0.1",
    port: opts.port,
    user: "root",
    privateKeyPath: path.join(dir, "id_ed25519"),
    hostKeyFingerprint: await fingerprintOfKeyFile(path.join(dir, "ssh_host_ed25519_key.pub")),
    holderPid: holderPid!,
    forwarderPid: forwarderPid!,
    dir,
  };
}

/** Starts the host's sshd (its config and host key as they are in `dir`) unless it runs. */
export async function startSshd(holderPid: number, dir: string): Promise<void> {
  if (alive(readPid(path.join(dir, "sshd.pid")))) return;
  await runChecked([
    "nsenter",
    "-t",
    String(holderPid),
    "-m",
    "-n",
    "-u",
    "/usr/sbin/sshd",
    "-f",
    path.join(dir, "sshd_config"),
    "-E",
    path.join(dir, "sshd.log"),
  ]);
  await waitFor(() => alive(readPid(path.join(dir, "sshd.pid"))), `sshd in ${dir}`);
}

/** A small base image guests can be built from, on the host's own /var/lib/xen. */
export const BASE_IMAGE = "/var/lib/xen/images/debian-base.raw";

/** Every image the lab seeds on a host: the host's own templates, never a stack's. */
export const SEEDED_IMAGES: readonly string[] = [BASE_IMAGE, MEASURED_IMAGE];

/**
 * Puts the templates in place when /var/lib/xen lacks them (first start, after reset): the plain
 * base image and the measured-boot one, made from the boot files under `stateDir`.
 */
export async function seedXenData(holderPid: number, stateDir: string): Promise<void> {
  const script = [
    'test -e "$1" && exit 0',
    'mkdir -p "$(dirname "$1")"',
    // A real filesystem image, as a template disk would be; 64 MiB keeps the lab small.
    'truncate -s 64M "$1.tmp" && mkfs.ext4 -q -F -L tvd-base "$1.tmp" && mv "$1.tmp" "$1"',
  ].join("\n");
  const r = await inHost({ holderPid }, ["sh", "-c", script, "seed", BASE_IMAGE]);
  if (r.code !== 0) throw new Error(`cannot create the base image: ${r.stderr}`);
  const boot = path.resolve(measuredBootDir(stateDir));
  const m = await inHost({ holderPid }, ["sh", "-c", SEED_MEASURED_IMAGE, "seed", MEASURED_IMAGE, boot]);
  if (m.code !== 0) throw new Error(`cannot create the measured-boot template from ${boot}: ${m.stderr}`);
}

/** Runs argv inside the host's namespaces (as root on that dom0), bypassing SSH. */
export function inHost(record: Pick<LabHostRecord, "holderPid">, argv: string[]) {
  return run(["nsenter", "-t", String(record.holderPid), "-m", "-n", "-u", ...argv]);
}

async function killAndWait(pid: number | undefined): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid!, "SIGTERM");
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid!, "SIGKILL");
}

/** Every process in the host's mount namespace but its holder (swtpm, sshd and its sessions...). */
export function hostProcesses(holderPid: number): number[] {
  const ns = (pid: number) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      return undefined;
    }
  };
  const hostNs = ns(holderPid);
  if (!hostNs) return [];
  return readdirSync("/proc")
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid !== holderPid && alive(pid) && ns(pid) === hostNs);
}

/** Stops the host: its swtpm processes, sshd, forwarder and namespace holder. Files stay. */
export async function stopHost(dir: string): Promise<void> {
  const holderPid = readPid(path.join(dir, "holder.pid"));
  if (alive(holderPid)) {
    for (const pid of hostProcesses(holderPid!)) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
  await killAndWait(readPid(path.join(dir, "forwarder.pid")));
  await killAndWait(readPid(path.join(dir, "sshd.pid")));
  // The loop device behind /var/lib/xen is released with the namespace's last process.
  await killAndWait(holderPid);
}

/** The underlay's subnet; host i (inventory order) is .i+1. */
export const UNDERLAY_PREFIX = "10.99.0";
export const UNDERLAY_BRIDGE = "underlay0";

export function underlayIpOf(index: number): string {
  return `${UNDERLAY_PREFIX}.${index + 1}`;
}

const underlayDir = (stateDir: string) => path.resolve(stateDir, "underlay");

/**
 * The lab's underlay: a bridge in a network namespace of its own, held open by a process as the
 * hosts' are. It is the only link between hosts, so a TVD's VXLAN is real traffic between
 * namespaces. Starts it unless it runs; returns the holder's pid.
 */
export async function ensureUnderlay(stateDir: string): Promise<number> {
  const dir = underlayDir(stateDir);
  mkdirSync(dir, { recursive: true });
  const pidFile = path.join(dir, "holder.pid");
  let pid = readPid(pidFile);
  if (alive(pid)) return pid!;
  const script = [
    `ip link set lo up && ip link add ${UNDERLAY_BRIDGE} type bridge && ip link set ${UNDERLAY_BRIDGE} up || exit 1`,
    "exec sleep infinity",
  ].join("\n");
  pid = spawnDetached(["unshare", "--net", "--", "sh", "-c", script], path.join(dir, "holder.log"));
  writeFileSync(pidFile, `${pid}\n`);
  await waitFor(() => {
    if (!alive(pid))
      throw new Error(
        `the lab underlay failed to start: ${readFileSync(path.join(dir, "holder.log"), "utf8")}`,
      );
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep");
  }, "the lab underlay");
  return pid;
}

/**
 * Gives a host its `eth0` on the underlay at `ip`/24, unless it already has it. A veth pair
 * dies with either namespace, so after a restart of the host or of the underlay the link is
 * simply missing and made again.
 */
export async function attachToUnderlay(underlayPid: number, host: BootedHost, ip: string): Promise<void> {
  const now = await inHost(host, ["ip", "-o", "-4", "addr", "show", "dev", "eth0", "up"]);
  if (now.code === 0 && now.stdout.includes(` inet ${ip}/24 `)) return;
  // A half-made link from an interrupted up; the underlay side goes with it.
  await inHost(host, ["ip", "link", "del", "eth0"]);
  const port = `up-${host.name}`.slice(0, 15);
  const plug = [
    'ip link del "$1" 2>/dev/null',
    `ip link add "$1" type veth peer name eth0 netns "$2" && ip link set "$1" master ${UNDERLAY_BRIDGE} up`,
  ].join("\n");
  await runChecked([
    "nsenter",
    "-t",
    String(underlayPid),
    "-n",
    "sh",
    "-c",
    plug,
    "plug",
    port,
    String(host.holderPid),
  ]);
  const up = await inHost(host, [
    "sh",
    "-c",
    'ip addr add "$1/24" dev eth0 && ip link set eth0 up',
    "up",
    ip,
  ]);
  if (up.code !== 0) throw new Error(`cannot bring up eth0 on ${host.name}: ${up.stderr}`);
}

/** Stops the underlay; the hosts' eth0 links go with it. */
export async function stopUnderlay(stateDir: string): Promise<void> {
  await killAndWait(readPid(path.join(underlayDir(stateDir), "holder.pid")));
}
