/**
 * Secrets that can show up in text a dom0 prints: a vTPM manager's `owner_auth=` and `srk_auth=`
 * (its `extra=` line, echoed by its console, by `xl list -l` and by xl's errors), and any other
 * `<something>_auth=` or `pass...=` key=value. The value is a quoted string, or runs up to
 * whitespace, a quote, a comma or a semicolon: where a word of the `extra=` line, a JSON string
 * or a shell word ends.
 */
const SECRET_ASSIGNMENT = /\b([A-Za-z0-9_]*_auth|pass[A-Za-z0-9_]*)=("[^"\n]*"|'[^'\n]*'|[^\s"',;]+)/gi;

/**
 * Text from a dom0 (console lines, stderr, xl output, a command line) with every secret
 * key=value shown as `key=***`. Pure; everything that puts dom0 text into an Error goes through it.
 */
export function redactSecrets(text: string): string {
  return text.replace(SECRET_ASSIGNMENT, "$1=***");
}

/** A remote command that ran and failed: carries the host, the command, its exit code and stderr's tail. */
export class RemoteCommandError extends Error {
  readonly command: string;
  readonly stderr: string;

  constructor(
    readonly endpoint: string,
    command: string,
    readonly exitCode: number | null,
    stderr: string,
  ) {
    const safeCommand = redactSecrets(command);
    const safeStderr = redactSecrets(stderr);
    const tail = safeStderr.trim().split("\n").slice(-5).join("\n    ");
    super(
      `command failed on ${endpoint} (exit ${exitCode ?? "signal"}): ${safeCommand}` +
        (tail ? `\n    ${tail}` : ""),
    );
    this.name = "RemoteCommandError";
    // Kept redacted too: callers match on stderr and may put it into messages of their own.
    this.command = safeCommand;
    this.stderr = safeStderr;
  }
}

/** The SSH connection itself failed (refused, timed out, host key rejected, auth failed). */
export class ConnectionError extends Error {
  constructor(
    readonly endpoint: string,
    message: string,
  ) {
    super(`cannot connect to ${endpoint}: ${message}`);
    this.name = "ConnectionError";
  }
}
