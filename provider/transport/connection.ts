import { z } from "zod";
import type { HostKeyPolicy } from "./hostKey";

const PORT_RANGE = "must be a TCP port between 1 and 65535";

/**
 * A duration input (`...Sec`). Whole seconds only: the dom0's shell arithmetic, `date +%s` and
 * timeout(1) count in seconds, and a fraction that passed `check` would fail on the host, after
 * `xl create`. The message shows the value and the whole number to use instead.
 */
export function wholeSeconds(max: number) {
  return z
    .number()
    .int({
      error: (iss) =>
        `must be a whole number of seconds; got ${String(iss.input)}, use ${Math.ceil(Number(iss.input))} instead`,
    })
    .positive()
    .max(max);
}

const hostname = z
  .string()
  .min(1, "must not be empty: give the dom0's hostname or IP address")
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/, "must be a hostname or IP address (letters, digits, '.', ':', '-')")
  .refine((h) => !h.startsWith("-"), { message: "must not start with '-'" });

/** How to reach one dom0 over SSH. Validated before any host is touched. */
export const connectionSchema = z
  .strictObject({
    host: hostname,
    port: z.number().int().min(1, PORT_RANGE).max(65535, PORT_RANGE).default(22),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, "must be a POSIX user name such as root")
      .default("root"),
    privateKey: z.string().refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), {
      message: "must be a PEM or OpenSSH private key (the file's content, not its path)",
    }),
    passphrase: z.string().optional(),
    hostKeyFingerprint: z
      .string()
      .regex(
        /^SHA256:[A-Za-z0-9+/]{43}$/,
        "must look like SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints",
      )
      .optional(),
    knownHosts: z.string().min(1, "must hold known_hosts lines when given").optional(),
    insecureSkipHostKeyVerification: z.boolean().optional(),
    connectTimeoutSec: wholeSeconds(600).default(20),
    commandTimeoutSec: wholeSeconds(86400).default(300),
  })
  .superRefine((c, ctx) => {
    const ways = [
      c.hostKeyFingerprint !== undefined,
      c.knownHosts !== undefined,
      c.insecureSkipHostKeyVerification === true,
    ];
    const n = ways.filter(Boolean).length;
    if (n === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["hostKeyFingerprint"],
        message:
          "the host key must be verified: set hostKeyFingerprint (SHA256:...) or knownHosts, or set insecureSkipHostKeyVerification: true to accept any key",
      });
    } else if (n > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["hostKeyFingerprint"],
        message: "set only one of hostKeyFingerprint, knownHosts and insecureSkipHostKeyVerification",
      });
    }
  });

/** The SSH connection input of every resource; `privateKey` and `passphrase` are secrets. */
export type ConnectionArgs = z.input<typeof connectionSchema>;
export type Connection = z.output<typeof connectionSchema>;

export function hostKeyPolicyOf(c: Connection): HostKeyPolicy {
  if (c.hostKeyFingerprint !== undefined) return { kind: "fingerprint", fingerprint: c.hostKeyFingerprint };
  if (c.knownHosts !== undefined) return { kind: "knownHosts", knownHosts: c.knownHosts };
  return { kind: "insecureAcceptAny" };
}

/** Identifies one SSH endpoint for the pool: one connection per user@host:port per program run. */
export function endpointOf(c: Connection): string {
  return `${c.user}@${c.host}:${c.port}`;
}
