/** A remote command that ran and failed: carries the host, the command, its exit code and stderr's tail. */
export class RemoteCommandError extends Error {
  constructor(
    readonly endpoint: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const tail = stderr.trim().split("\n").slice(-5).join("\n    ");
    super(
      `command failed on ${endpoint} (exit ${exitCode ?? "signal"}): ${command}` +
        (tail ? `\n    ${tail}` : ""),
    );
    this.name = "RemoteCommandError";
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
