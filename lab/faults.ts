/**
 * Fault knobs, settable per host while it runs. They act where a real failure would: in the SSH
 * session (failed or slow commands), on the TCP connections, and on the host's filesystem.
 */
import { readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "./exec";
import { inHost, type LabHostRecord } from "./host";
import { XL_STDERR_RULES } from "./xl/faults";

const faultsDir = (h: LabHostRecord) => path.join(h.dir, "root", "var/lib/tvd-lab/faults");

/**
 * What pulumi-tvd's transport puts before every command it sends (`timeout -s KILL <sec>`, so the
 * command dies on the dom0 when it times out), as an awk regex. A pattern anchored with `^` is
 * matched after it, so `^'xl' 'create'` means the xl command whoever sent it.
 */
const TRANSPORT_PREFIX = "('timeout' '-s' 'KILL' '[0-9.]+' )?";

/** The next `count` commands whose command line matches `pattern` (awk extended regex) fail with exit 97. */
export function failNext(h: LabHostRecord, pattern: string, count = 1): void {
  if (/[\n]/.test(pattern)) throw new Error("a fault pattern must be one line");
  const rule = pattern.startsWith("^") ? `^${TRANSPORT_PREFIX}${pattern.slice(1)}` : pattern;
  appendFileSync(path.join(faultsDir(h), "fail-rules"), `${count} ${rule}\n`);
}

/** Commands still to fail, per rule. */
export function pendingFailures(h: LabHostRecord): Array<{ count: number; pattern: string }> {
  try {
    return readFileSync(path.join(faultsDir(h), "fail-rules"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ count: Number(l.slice(0, l.indexOf(" "))), pattern: l.slice(l.indexOf(" ") + 1) }))
      .map((r) => ({ ...r, pattern: r.pattern.replace(`^${TRANSPORT_PREFIX}`, "^") }));
  } catch {
    return [];
  }
}

/** Every command on the host first waits `ms` milliseconds (0 removes the delay). */
export function setLatency(h: LabHostRecord, ms: number): void {
  writeFileSync(path.join(faultsDir(h), "latency-ms"), ms > 0 ? `${ms}\n` : "");
}

/** Cuts every open SSH connection to the host; new connections are accepted as before. */
export async function dropConnections(h: LabHostRecord): Promise<void> {
  // Each connection is one forked socat child of the forwarder.
  await run(["pkill", "-TERM", "-P", String(h.forwarderPid)]);
}

/** Fills the host's /var/lib/xen until no block is free. */
export async function fillDisk(h: LabHostRecord): Promise<void> {
  // fallocate of exactly the free space ends in ENOSPC (metadata) with the blocks taken, so
  // the result is checked, not fallocate's exit code.
  const script = [
    "avail() { df -P --block-size=1 /var/lib/xen | awk 'NR == 2 { print $4 }'; }",
    'fallocate -l "$(avail)" /var/lib/xen/.lab-disk-filler 2>/dev/null',
    "dd if=/dev/zero of=/var/lib/xen/.lab-disk-filler-tail bs=64k 2>/dev/null",
    '[ "$(avail)" -lt 65536 ] || { echo "disk still has $(avail) bytes free" >&2; exit 1; }',
  ].join("\n");
  const r = await inHost(h, ["sh", "-c", script]);
  if (r.code !== 0) throw new Error(`fill-disk on ${h.name} failed: ${r.stderr}`);
}

/** A warning as libxl prints them, on stderr, while xl's output and exit code stay as they were. */
export const LIBXL_WARNING =
  "libxl: warning: tvd-lab.c:1:fault: a warning injected by the lab (xl-stderr fault)";

/**
 * Every later `xl <command>` (e.g. "list") on the host also prints `text` on stderr, as libxl does
 * with its warnings; stdout and the exit code are untouched. The emulator reads the rules in
 * /var/lib/tvd-lab/faults/xl-stderr, lines "<command><TAB><text>".
 */
export function xlStderr(h: LabHostRecord, command: string, text = LIBXL_WARNING): void {
  if (/[\t\n]/.test(command + text)) throw new Error("an xl stderr rule must be one line without tabs");
  appendFileSync(path.join(faultsDir(h), XL_STDERR_RULES), `${command}\t${text}\n`);
}

/** Removes every fault: rules, latency, xl's extra stderr, the disk filler. */
export async function clearFaults(h: LabHostRecord): Promise<void> {
  for (const f of ["fail-rules", "latency-ms", XL_STDERR_RULES])
    rmSync(path.join(faultsDir(h), f), { force: true });
  await inHost(h, ["rm", "-f", "/var/lib/xen/.lab-disk-filler", "/var/lib/xen/.lab-disk-filler-tail"]);
}
