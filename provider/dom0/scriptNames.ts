/**
 * Short names for the remote steps pulumi-tvd takes, for the transport's record
 * ($PULUMI_TVD_STATS) and the tests that replay a lifecycle step by step. A label is made of the
 * command's first words only (the program, an `xl` subcommand, flags), or for a constant script
 * (`sh -c SCRIPT <$0> args...`) of the script's name: never of an argument's value, so it holds
 * no path, name or secret.
 */
import * as ownership from "../core/ownership";
import { probeFactsArgv } from "./facts";
import * as scripts from "./scripts";

/** The scripts exported by these modules: every constant that holds more than one line. */
function scriptsOf(module: Record<string, unknown>): Array<[string, string]> {
  return Object.entries(module).filter(
    (e): e is [string, string] => typeof e[1] === "string" && e[1].includes("\n"),
  );
}

/** Every constant script a Dom0 runs, by name (CLAIM, WRITE_FILE_ATOMIC, TVD_NET_CREATE...). */
export const SCRIPTS: Readonly<Record<string, string>> = Object.fromEntries([
  ...scriptsOf(ownership),
  ...scriptsOf(scripts),
  ["PROBE_FACTS", probeFactsArgv("")[2]],
]);

const names = new Map(Object.entries(SCRIPTS).map(([name, text]) => [text, name]));

/** The name of a constant script, or "?" for any other (an ad-hoc script names nothing). */
export function scriptName(text: string): string {
  return names.get(text) ?? "?";
}

/** A flag (`-f`, `--`, `-l`), never a value: no `=`, no path. */
const FLAG = /^(--?[A-Za-z][A-Za-z-]*|--)$/;

/**
 * The step label of an argv: `xl create`, `xl list -l`, `rm -f --`, `sh -c CLAIM`; a command
 * run under Dom0's dom0-side lock (`sh -c <lock script> lock <lock file> argv...`) is
 * `flock <label of argv>`.
 */
export function stepLabel(argv: readonly string[]): string {
  if (argv[0] === "sh" && argv[1] === "-c" && argv.length >= 3) {
    if (argv[3] === "lock" && argv[2].includes("flock") && argv.length > 5)
      return `flock ${stepLabel(argv.slice(5))}`;
    return `sh -c ${scriptName(argv[2])}`;
  }
  const words = [argv[0] ?? ""];
  let i = 1;
  if (argv[0] === "xl" && argv[1] !== undefined && /^[a-z][a-z-]*$/.test(argv[1])) words.push(argv[i++]);
  for (; i < argv.length && FLAG.test(argv[i]); i++) words.push(argv[i]);
  return words.join(" ");
}
