/**
 * Fault knobs, settable per host while it runs. They act where a real failure would: in the SSH
 * session (failed or slow commands), on the TCP connections, and on the host's filesystem.
 */
import { readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "./exec";
import { inHost, type LabHostRecord } from "./host";

const faultsDir = (h: LabHostRecord) => path.join(h.dir, "root", "var/lib/tvd-lab/faults");

/** The next `count` commands whose command line matches `pattern` (awk extended regex) fail with exit 97. */
export function failNext(h: LabHostRecord, pattern: string, count = 1): void {
  if (/[\n]/.test(pattern)) throw new Error("a fault pattern must be one line");
  appendFileSync(path.join(faultsDir(h), "fail-rules"), `${count} ${pattern}\n`);
}

/** Commands still to fail, per rule. */
export function pendingFailures(h: LabHostRecord): Array<{ count: number; pattern: string }> {
  try {
    return readFileSync(path.join(faultsDir(h), "fail-rules"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ count: Number(l.slice(0, l.indexOf(" "))), pattern: l.slice(l.indexOf(" ") + 1) }));
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

/** Removes every fault: rules, latency, the disk filler. */
export async function clearFaults(h: LabHostRecord): Promise<void> {
  for (const f of ["fail-rules", "latency-ms"]) rmSync(path.join(faultsDir(h), f), { force: true });
  await inHost(h, ["rm", "-f", "/var/lib/xen/.lab-disk-filler", "/var/lib/xen/.lab-disk-filler-tail"]);
}
