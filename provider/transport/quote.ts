/**
 * The one place where an argv becomes a remote shell command line.
 *
 * OpenSSH hands the command string to the remote user's shell, so every argument is wrapped in
 * single quotes, inside which a POSIX shell interprets nothing; a single quote itself is closed,
 * escaped and reopened. Newlines, `$()`, backticks, globs and unicode pass through literally.
 */
export function quoteArg(arg: string): string {
  if (arg.includes("\0")) {
    // A NUL cannot travel inside a C string argv on the remote side.
    throw new Error(
      `argument contains a NUL byte and cannot be passed to a remote command: ${JSON.stringify(arg)}`,
    );
  }
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Joins an argv into the single command line the SSH exec request carries. */
export function joinArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("cannot run an empty command");
  return argv.map(quoteArg).join(" ");
}
