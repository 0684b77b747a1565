import { readFileSync } from "node:fs";

/**
 * Whether a process still runs. A zombie does not: daemons (swtpm, sshd) are reparented to this
 * machine's init, which may take its time to reap them, and kill(pid, 0) succeeds on a zombie.
 */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
