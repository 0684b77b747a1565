/**
 * Real Xen lab hosts: Xen 4.17 + a Debian 12 dom0 under QEMU TCG, reachable by SSH on a
 * loopback port through QEMU user networking (see lab/xen/README.md).
 *
 * Per host, under <stateDir>/<name>/:
 *   root.qcow2        overlay of the cached base image (qemu-img create -f qcow2 -F raw -b)
 *   seed.ext4         host key, root's authorized_keys, hostname (mkfs.ext4 -d; no loop mounts),
 *                     read by the dom0's tvd-seed.service before sshd starts
 *   id_ed25519        the client key of the inventory; ssh_host_ed25519_key the pinned host key
 *   console.log       the machine's serial console (Xen + dom0 kernel)
 *   qemu.pid, host.json
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { closeAllSessions } from "../../provider/transport/ssh";
import { run, runChecked } from "../exec";
import { alive } from "../proc";
import { ensureKey, fingerprintOfKeyFile, sessionForHost, waitForSsh } from "../sshd";

/** An inventory entry of a real Xen host: the local lab's format, with kind "xen". */
export interface XenInventoryHost {
  readonly name: string;
  readonly kind: "xen";
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKeyPath: string;
  readonly hostKeyFingerprint: string;
  /** The dom0's eth0 on QEMU's user network; hosts cannot reach each other (see README). */
  readonly underlayIp: string;
}

export interface XenHostOptions {
  readonly name: string;
  readonly index: number;
  readonly stateDir: string;
  readonly port: number;
  /** Machine memory (QEMU -m). @default 1536 */
  readonly memoryMiB?: number;
  /** dom0_mem; the rest is Xen's free memory for domains. @default 768 */
  readonly dom0MemoryMiB?: number;
  /** @default 2 */
  readonly cpus?: number;
  /**
   * QEMU's TCG translation cache (tb-size); QEMU's own default (1 GiB) when 0. Measured: 256
   * costs a few seconds of boot and saves ~570 MiB of RSS per host. @default $TVD_XEN_TB_MIB or 256
   */
  readonly tbSizeMiB?: number;
  /** How long to wait for SSH and `xl info`. @default 600 */
  readonly bootTimeoutSec?: number;
  /** A build dir of build-rootfs.sh; built (or taken from the cache) when not given. */
  readonly buildDir?: string;
  /**
   * The CPU weight of QEMU's session (its autogroup's nice, -20..19), for a host that shares the
   * machine with other work. QEMU daemonizes into a session of its own, and Linux divides CPU
   * between sessions (autogroups) before `nice` counts within one, so the nice of whoever
   * started QEMU does not reach it. Needs root to go below 0; without it QEMU keeps 0, with a
   * note on stdout. @default unchanged (0)
   */
  readonly sessionNice?: number;
}

/** Sets the autogroup nice of the session `pid` leads (see XenHostOptions.sessionNice). */
export function setSessionNice(pid: number, nice: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch (err) {
    console.log(`real-Xen lab: QEMU's session keeps nice 0 (${(err as Error).message})`);
  }
}

export interface XenHostRecord extends XenInventoryHost {
  readonly dir: string;
  readonly pid: number;
  readonly buildDir: string;
  /** Seconds from starting QEMU until SSH answered with the pinned key and `xl info` worked. */
  readonly bootSeconds?: number;
}

/** The checkout this file belongs to (build/lab/xen or lab/xen). */
export function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "lab", "xen"))) return dir;
  }
  return path.resolve(".");
}

export function defaultXenStateDir(): string {
  return path.join(repoRoot(), "lab", "state", "xen");
}

export function xenHostName(i: number): string {
  return `xen-${String.fromCharCode("a".charCodeAt(0) + i)}`;
}

/** Runs lab/xen/build-rootfs.sh (a no-op when its recipe is built) and returns its build dir. */
export async function buildRootfs(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const script = path.join(repoRoot(), "lab", "xen", "build-rootfs.sh");
  const r = await run(["bash", script], { env });
  if (r.code !== 0) throw new Error(`build-rootfs.sh exited ${r.code}:\n${r.stderr.trim()}`);
  const dir = r.stdout.trim().split("\n").pop() ?? "";
  if (!existsSync(path.join(dir, "done"))) throw new Error(`build-rootfs.sh gave no build dir:\n${r.stderr}`);
  return dir;
}

const recordPath = (dir: string) => path.join(dir, "host.json");

export function readXenHost(dir: string): XenHostRecord | undefined {
  const p = recordPath(dir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as XenHostRecord) : undefined;
}

function qemuPid(dir: string): number | undefined {
  const p = path.join(dir, "qemu.pid");
  if (!existsSync(p)) return undefined;
  const pid = Number(readFileSync(p, "utf8").trim());
  if (!alive(pid)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

export function entryOfXen(h: XenHostRecord): XenInventoryHost {
  const { name, kind, host, port, user, privateKeyPath, hostKeyFingerprint, underlayIp } = h;
  return { name, kind, host, port, user, privateKeyPath, hostKeyFingerprint, underlayIp };
}

/**
 * Xen's speculative-execution mitigations, off on the lab's own throwaway host. Under TCG, Xen
 * believes the emulated Nehalem is Meltdown- and L1TF-vulnerable, so it turns on XPTI for every
 * 64-bit PV domain (dom0 and guests) without PCID: each kernel entry and exit switches page
 * tables, and QEMU flushes its whole software TLB each time. Nothing the tests check depends on
 * them (xl's answers are the same); a production dom0 keeps Xen's defaults.
 */
export const XEN_LAB_NO_MITIGATIONS = "spec-ctrl=no xpti=no pv-l1tf=no";

/** The QEMU command line measured in DESIGN.md section 6 (TCG, -cpu Nehalem). */
export function qemuArgv(o: {
  dir: string;
  buildDir: string;
  name: string;
  port: number;
  memoryMiB: number;
  dom0MemoryMiB: number;
  cpus: number;
  tbSizeMiB?: number;
}): string[] {
  const b = (f: string) => path.join(o.buildDir, f);
  const d = (f: string) => path.join(o.dir, f);
  // -initrd is a comma-separated module list, so neither command line may hold a comma.
  // mitigations=off: see XEN_LAB_NO_MITIGATIONS below; dom0's own kernel pays them on every entry too.
  const dom0Cmdline = "root=/dev/vda ro console=hvc0 net.ifnames=0 quiet mitigations=off";
  return [
    "qemu-system-x86_64",
    "-name",
    `tvd-xen-${o.name}`,
    "-accel",
    // QEMU's default translation cache is 1 GiB, and it fills.
    o.tbSizeMiB ? `tcg,tb-size=${o.tbSizeMiB}` : "tcg",
    "-cpu",
    "Nehalem",
    "-m",
    String(o.memoryMiB),
    "-smp",
    String(o.cpus),
    "-nodefaults",
    "-display",
    "none",
    "-monitor",
    "none",
    "-no-reboot",
    "-serial",
    `file:${d("console.log")}`,
    "-kernel",
    b("xen"),
    "-append",
    // bootscrub=0: Xen would otherwise write all free memory at boot, and QEMU would hold it all.
    `console=com1 dom0_mem=${o.dom0MemoryMiB}M,max:${o.dom0MemoryMiB}M noreboot bootscrub=0 ${XEN_LAB_NO_MITIGATIONS}`,
    "-initrd",
    `${b("vmlinuz")} ${dom0Cmdline},${b("initrd.img")}`,
    "-drive",
    `file=${d("root.qcow2")},if=virtio,format=qcow2,cache=unsafe`,
    "-drive",
    `file=${d("seed.ext4")},if=virtio,format=raw,readonly=on`,
    "-netdev",
    `user,id=n0,hostfwd=tcp:127.0.0.1:${o.port}-:22`,
    "-device",
    "virtio-net-pci,netdev=n0",
    "-daemonize",
    "-pidfile",
    d("qemu.pid"),
  ];
}

async function prepareDisks(dir: string, name: string, buildDir: string): Promise<void> {
  const overlay = path.join(dir, "root.qcow2");
  const prev = readXenHost(dir);
  // An overlay of another build's base image is useless: start that host over.
  if (existsSync(overlay) && prev?.buildDir !== buildDir) rmSync(overlay);
  if (!existsSync(overlay)) {
    await runChecked([
      "qemu-img",
      "create",
      "-q",
      "-f",
      "qcow2",
      "-F",
      "raw",
      "-b",
      path.join(buildDir, "base.raw"),
      overlay,
    ]);
  }
  await ensureKey(path.join(dir, "ssh_host_ed25519_key"), `${name} host key`);
  await ensureKey(path.join(dir, "id_ed25519"), `pulumi-tvd xen lab client for ${name}`);
  const seed = path.join(dir, "seed");
  rmSync(seed, { recursive: true, force: true });
  mkdirSync(seed);
  for (const f of ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]) {
    writeFileSync(path.join(seed, f), readFileSync(path.join(dir, f)), { mode: 0o600 });
  }
  writeFileSync(path.join(seed, "authorized_keys"), readFileSync(path.join(dir, "id_ed25519.pub")));
  writeFileSync(path.join(seed, "hostname"), `${name}\n`);
  await runChecked([
    "mkfs.ext4",
    "-q",
    "-F",
    "-L",
    "tvd-seed",
    "-d",
    seed,
    path.join(dir, "seed.ext4"),
    "4M",
  ]);
  rmSync(seed, { recursive: true, force: true });
}

/** Opens a session with the pinned host key, as the provider would. */
export async function xenSession(h: XenInventoryHost) {
  return sessionForHost(h, { connectTimeoutSec: 20, commandTimeoutSec: 120 });
}

/** Waits until SSH answers with the pinned key and `xl info` succeeds. */
async function waitReady(h: XenInventoryHost, deadline: number): Promise<void> {
  await waitForSsh(h.host, h.port, Math.max(1000, deadline - Date.now()));
  let last = "";
  while (Date.now() < deadline) {
    try {
      const s = await xenSession(h);
      const r = await s.run(["xl", "info"], { timeoutSec: 60 });
      if (r.exitCode === 0 && /xen_version/.test(r.stdout)) return;
      last = `xl info exited ${r.exitCode}: ${r.stderr.trim()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${h.name} (127.0.0.1:${h.port}) not ready: ${last}`);
}

/**
 * Boots one Xen host (idempotent: a running host is only checked) and returns its record once
 * SSH answers with the pinned host key and `xl info` works.
 */
export async function bootXenHost(o: XenHostOptions): Promise<XenHostRecord> {
  const dir = path.join(o.stateDir, o.name);
  mkdirSync(dir, { recursive: true });
  const buildDir = o.buildDir ?? (await buildRootfs());
  const timeoutMs = (o.bootTimeoutSec ?? 600) * 1000;
  const entry = async (): Promise<XenInventoryHost> => ({
    name: o.name,
    kind: "xen",
    host: "127.0.0.1",
    port: o.port,
    user: "root",
    privateKeyPath: path.join(dir, "id_ed25519"),
    hostKeyFingerprint: await fingerprintOfKeyFile(path.join(dir, "ssh_host_ed25519_key.pub")),
    underlayIp: "10.0.2.15",
  });
  const running = qemuPid(dir);
  const prev = readXenHost(dir);
  if (running && prev && prev.buildDir === buildDir && prev.port === o.port) {
    await waitReady(prev, Date.now() + timeoutMs);
    return { ...prev, pid: running };
  }
  if (running) await stopXenHost(dir);
  await prepareDisks(dir, o.name, buildDir);
  const e = await entry();
  rmSync(path.join(dir, "console.log"), { force: true });
  const started = Date.now();
  await runChecked(
    qemuArgv({
      dir,
      buildDir,
      name: o.name,
      port: o.port,
      memoryMiB: o.memoryMiB ?? 1536,
      dom0MemoryMiB: o.dom0MemoryMiB ?? 768,
      cpus: o.cpus ?? 2,
      tbSizeMiB: o.tbSizeMiB ?? Number(process.env.TVD_XEN_TB_MIB ?? 256),
    }),
  );
  const pid = qemuPid(dir);
  if (!pid) throw new Error(`QEMU for ${o.name} did not stay up; see ${path.join(dir, "console.log")}`);
  if (o.sessionNice !== undefined) setSessionNice(pid, o.sessionNice);
  const record: XenHostRecord = { ...e, dir, pid, buildDir };
  writeFileSync(recordPath(dir), JSON.stringify(record, null, 2) + "\n");
  try {
    await waitReady(e, started + timeoutMs);
  } catch (err) {
    const tail = existsSync(path.join(dir, "console.log"))
      ? readFileSync(path.join(dir, "console.log"), "utf8").split("\n").slice(-15).join("\n")
      : "";
    throw new Error(`${(err as Error).message}\nconsole.log tail:\n${tail}`);
  }
  const done: XenHostRecord = { ...record, bootSeconds: (Date.now() - started) / 1000 };
  writeFileSync(recordPath(dir), JSON.stringify(done, null, 2) + "\n");
  return done;
}

/** Powers a host off: flushes dom0's disks if it answers, then stops QEMU. Files stay. */
export async function stopXenHost(dir: string): Promise<void> {
  const pid = qemuPid(dir);
  if (!pid) return;
  const h = readXenHost(dir);
  if (h) {
    let timer: NodeJS.Timeout | undefined;
    try {
      const s = await Promise.race([
        xenSession(h),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("timeout")), 10000))),
      ]);
      await s.run(["sync"], { timeoutSec: 30 });
    } catch {
      // A host that does not answer is powered off all the same.
    } finally {
      clearTimeout(timer);
    }
  }
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, "SIGKILL");
  rmSync(path.join(dir, "qemu.pid"), { force: true });
}

/** Memory of a running QEMU: RSS and PSS in MiB from /proc/<pid>/smaps_rollup. */
export function qemuMemory(pid: number): { rssMiB: number; pssMiB: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { rssMiB: Math.round(kb("Rss") / 1024), pssMiB: Math.round(kb("Pss") / 1024) };
}

export { closeAllSessions };
