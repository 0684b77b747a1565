/**
 * Fault knobs, settable per host while it runs. They act where a real failure would: in the SSH
 * session (failed or slow commands), on the TCP connections, and on the host's filesystem.
 */
import { existsSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "./exec";
import { hostProcesses, inHost, startSshd, type LabHostRecord } from "./host";
import { waitForSsh } from "./sshd";
import type { HostState } from "./xl/state";
import { XL_STDERR_RULES } from "./xl/faults";
import { alive } from "./proc";

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

/**
 * A dom0 reboot: the power goes (sshd, every session and every domain's process are killed at
 * once: swtpm, guest network namespaces, xl itself), then what a reboot clears is cleared (the
 * hypervisor's domains and xenstore, the loop devices and vifs the domains held) while files on
 * disk stay as they were, killed writers' temporary files included. After `pauseMs`, sshd starts
 * again with the same host key. A manager that was serving vTPMs or not yet ready loses power
 * while busy: its image is marked as xl destroy under load marks it. Bridges and other network
 * devices of the host stay, as a dom0's configured bridges come back with it.
 */
export async function rebootHost(h: LabHostRecord, pauseMs = 500): Promise<void> {
  for (let i = 0; ; i++) {
    const pids = hostProcesses(h.holderPid);
    if (pids.length === 0) break;
    if (i > 500) throw new Error(`rebooting ${h.name}: processes ${pids.join(" ")} do not die`);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const lab = path.join(h.dir, "root", "var/lib/tvd-lab");
  const domainsFile = path.join(lab, "domains.json");
  const before: HostState = existsSync(domainsFile)
    ? (JSON.parse(readFileSync(domainsFile, "utf8")) as HostState)
    : { nextDomid: 1, domains: [], dirtyImages: [] };
  const busy = before.domains
    .filter((d) => d.config.kind === "vtpmmgr")
    .filter((d) => !d.ready || before.domains.some((x) => x.vtpms.some((v) => v.backendDomid === d.domid)))
    .map((d) => d.config.disks[0]?.pdev_path)
    .filter((image): image is string => image !== undefined);
  // By what they hold, not by the state file: an xl create cut short may not have recorded them.
  const clear = [
    'find /var/lib/xen -type f -exec losetup -l -n -O NAME -j {} \\; | while read -r loop; do losetup -d "$loop"; done',
    "ip -o link show | awk -F': ' '{ sub(/@.*/, \"\", $2); print $2 }' | grep '^vif' | while read -r vif; do ip link del dev \"$vif\"; done",
    "rm -rf /var/lib/tvd-lab/vtpm /var/lib/tvd-lab/netns /var/lib/tvd-lab/xenstore.json /var/lib/tvd-lab/domains.json.tmp-*",
  ].join("\n");
  const r = await inHost(h, ["sh", "-c", clear]);
  if (r.code !== 0) throw new Error(`rebooting ${h.name}: ${r.stderr}`);
  const after: HostState = {
    nextDomid: 1,
    domains: [],
    dirtyImages: [...new Set([...before.dirtyImages, ...busy])],
  };
  writeFileSync(domainsFile, JSON.stringify(after, null, 1));
  await new Promise((r) => setTimeout(r, pauseMs));
  await startSshd(h.holderPid, h.dir);
  await waitForSsh(h.host, h.port);
}

/**
 * Step hooks: a `timeout` in the host's /usr/local/sbin, first on root's PATH, through which every
 * command pulumi-tvd's transport sends passes (`timeout -s KILL <sec> argv...`). It hands the
 * command to the real timeout(1) unless a rule in step-rules matches the command line
 * ($SSH_ORIGINAL_COMMAND, as fail-rules match it). Rules are lines "<skip> <action> <regex>":
 * the first rule whose regex matches counts the command off while skip > 0, and otherwise is used
 * up and acts on it:
 *  fail  the command fails as failNext makes it (exit 97), not run;
 *  gate  the command waits (before it runs) until the gate opens (openStepGate), so that a test
 *        can act at that moment (cut the connection, fill the disk); it then runs as sent;
 *  hang  the command runs to its end on the dom0 (then "worked <pid>" is appended to step-hits),
 *        then holds its channel open until its timeout(1) kills it: dom0 did the work, the
 *        client hears nothing before its timeout (or before the connection is cut).
 * Every use appends "<action> <pid>" to step-hits (the pid is timeout(1)'s, which leads the
 * command's process group and is gone once the command is).
 */
const STEP_HOOK = `#!/bin/sh
# lab step hooks (pulumi-tvd, lab/faults.ts): transparent unless a rule in step-rules matches
faults=/var/lib/tvd-lab/faults
real=/usr/bin/timeout
cmd=\${SSH_ORIGINAL_COMMAND-}
if [ -n "$cmd" ] && [ -z "\${TVD_LAB_STEP-}" ] && [ -s "$faults/step-rules" ] && [ "$1" = -s ] && [ "$#" -ge 4 ]; then
  export TVD_LAB_STEP=1
  act=$(
    flock "$faults/.lock" sh -c '
      f=$1/step-rules
      awk -v cmd="$2" -v out="$f.new" '"'"'
        { skip = $1; act = $2; re = $0; sub(/^[^ ]+ [^ ]+ /, "", re) }
        !done && cmd ~ re { done = 1; if (skip > 0) skip--; else { print act; next } }
        { print skip " " act " " re > out }
        END { close(out) }
      '"'"' "$f"
      if [ -f "$f.new" ]; then mv "$f.new" "$f"; else : >"$f"; fi
    ' step-rules "$faults" "$cmd"
  )
  [ -z "$act" ] || echo "$act $$" >>"$faults/step-hits"
  case $act in
    fail) echo "tvd-lab: injected failure (step rule)" >&2; exit 97 ;;
    gate)
      n=0
      while [ ! -e "$faults/step-gate-open" ] && [ "$n" -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done ;;
    hang)
      sig=$2; sec=$3; shift 3
      exec "$real" -s "$sig" "$sec" sh -c '"$@"; echo "worked $PPID" >>'"$faults/step-hits"'; exec sleep 86400' tvd-lab-hang "$@" ;;
  esac
fi
exec "$real" "$@"
`;

const stepFile = (h: LabHostRecord, f: string) => path.join(faultsDir(h), f);

/** Puts the step hooks in place on the host (idempotent); without rules they change nothing. */
export function installStepHooks(h: LabHostRecord): void {
  writeFileSync(path.join(h.dir, "root", "usr/local/sbin/timeout"), STEP_HOOK, { mode: 0o755 });
}

/**
 * The command matching `pattern` (awk extended regex; `^` anchors after the transport's prefix,
 * as in failNext) is acted on as `action` says, after `skip` earlier matching commands passed.
 */
export function stepRule(
  h: LabHostRecord,
  action: "fail" | "gate" | "hang",
  pattern: string,
  skip = 0,
): void {
  if (/[\n]/.test(pattern)) throw new Error("a step rule's pattern must be one line");
  const rule = pattern.startsWith("^") ? `^${TRANSPORT_PREFIX}${pattern.slice(1)}` : pattern;
  appendFileSync(stepFile(h, "step-rules"), `${skip} ${action} ${rule}\n`);
}

/** The step rules used so far: action and the pid of the command each acted on. */
export function stepHits(h: LabHostRecord): Array<{ action: string; pid: number }> {
  try {
    return readFileSync(stepFile(h, "step-hits"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ action: l.split(" ")[0], pid: Number(l.split(" ")[1]) }));
  } catch {
    return [];
  }
}

/**
 * Waits until a step rule's command reaches `what`: "gate" (it waits at the gate) or "worked" (a
 * hung command did its work). Its pid, or undefined when `settled` (the operation) ends first.
 */
export async function waitForStep(
  h: LabHostRecord,
  what: "gate" | "worked",
  settled: Promise<unknown>,
  timeoutMs = 60_000,
): Promise<number | undefined> {
  let done = false;
  void settled.then(
    () => (done = true),
    () => (done = true),
  );
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const hit = stepHits(h).find((x) => x.action === what);
    if (hit) return hit.pid;
    if (done) return undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no command reached "${what}" of a step rule on ${h.name} within ${timeoutMs} ms`);
}

/** Lets the gated command run. */
export function openStepGate(h: LabHostRecord): void {
  writeFileSync(stepFile(h, "step-gate-open"), "");
}

/** Ends a hung command (its whole process group) before its timeout would. */
export function endHungStep(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ended already
  }
}

/** Waits until the command with this pid (from stepHits) has ended on the host. */
export async function stepEnded(pid: number, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; alive(pid);) {
    if (Date.now() > deadline) throw new Error(`command ${pid} still runs after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Removes the step rules, the gate and the record of hits (the hooks stay, transparent). */
export function clearStepRules(h: LabHostRecord): void {
  for (const f of ["step-rules", "step-hits", "step-gate-open"]) rmSync(stepFile(h, f), { force: true });
}
