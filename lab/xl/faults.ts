/**
 * The xl emulator's fault knob (set with xlStderr in lab/faults.ts): extra lines on xl's stderr,
 * as libxl prints warnings around otherwise good output.
 */
import { readFileSync } from "node:fs";

/** The rules' file name in the host's /var/lib/tvd-lab/faults: lines "<xl command><TAB><text>". */
export const XL_STDERR_RULES = "xl-stderr";

/** What the rules add to the stderr of `xl <command>`; empty without rules. */
export function injectedStderr(command: string | undefined, dir = "/var/lib/tvd-lab/faults"): string {
  let rules: string;
  try {
    rules = readFileSync(`${dir}/${XL_STDERR_RULES}`, "utf8");
  } catch {
    return "";
  }
  return rules
    .split("\n")
    .filter((l) => l.includes("\t"))
    .map((l) => [l.slice(0, l.indexOf("\t")), l.slice(l.indexOf("\t") + 1)])
    .filter(([cmd]) => cmd === command)
    .map(([, text]) => text + "\n")
    .join("");
}
