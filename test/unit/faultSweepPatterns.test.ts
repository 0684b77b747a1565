/**
 * The fault sweep (test/lab/faults.sweep.test.ts) finds each step of a lifecycle by a pattern made
 * from the step's label alone. Each pattern, as the lab's session wrapper applies it (mawk, the
 * transport's prefix in front), matches the command line of its own step and of no other step.
 */
import { spawnSync } from "node:child_process";
import { withLock } from "../../provider/dom0/dom0";
import { SCRIPTS, stepLabel } from "../../provider/dom0/scriptNames";
import { remoteCommand } from "../../provider/transport/ssh";
import { stepPattern } from "../support/faultSweep";

/** Whether awk, as the lab's session wrapper runs it, finds `pattern` in `cmd`. */
function awkMatches(pattern: string, cmd: string): boolean {
  const rule = pattern.startsWith("^") ? `^('timeout' '-s' 'KILL' '[0-9.]+' )?${pattern.slice(1)}` : pattern;
  const r = spawnSync("awk", ["-v", `cmd=${cmd}`, "-v", `re=${rule}`, "BEGIN { exit !(cmd ~ re) }"]);
  return r.status === 0;
}

/** Steps as Dom0 sends them: each script with arguments, under the dom0-side lock or not, and xl and rm. */
const commands: Array<readonly string[]> = [
  ...Object.values(SCRIPTS).map((text) => ["sh", "-c", text, "pulumi-tvd", "/var/lib/xen/x", "0600"]),
  withLock("sw-vtpm", ["sh", "-c", SCRIPTS.WRITE_FILE_ATOMIC, "pulumi-tvd", "/etc/xen/sw.cfg", "0600"]),
  ["xl", "create", "/etc/xen/sw-vtpm.cfg"],
  withLock("vtpmmgr", ["xl", "create", "/etc/xen/sw-vtpm.cfg"]),
  ["xl", "destroy", "sw-vtpm"],
  ["xl", "list", "-l"],
  ["rm", "-f", "--", "/etc/xen/sw-vtpm.cfg"],
];

describe("step labels and the fault patterns made from them", () => {
  it("labels a step by its command's first words or its script's name, never by an argument", () => {
    expect(commands.map(stepLabel)).toEqual([
      ...Object.keys(SCRIPTS).map((name) => `sh -c ${name}`),
      "flock sh -c WRITE_FILE_ATOMIC",
      "xl create",
      "flock xl create",
      "xl destroy",
      "xl list -l",
      "rm -f --",
    ]);
    expect(stepLabel(["sh", "-c", "echo secret", "sh", "hunter2"])).toBe("sh -c ?");
  });

  it.each(commands.map((argv) => [stepLabel(argv), argv] as const))(
    "%s: its pattern matches its own command line and no other step's",
    (label, argv) => {
      const lines = commands.map((c) => remoteCommand(300, c));
      const matched = lines.map((line) => awkMatches(stepPattern(label), line));
      const own = commands.map((c) => stepPattern(stepLabel(c)) === stepPattern(label));
      expect(matched).toEqual(own);
      expect(matched[commands.indexOf(argv)]).toBe(true);
    },
  );
});
