/**
 * The member agent (agent/, `tvd-agent`) as a seed carries it: the static binary as a file of the
 * seed volume, its config (the TPM auth values the TVD holds) and a systemd unit that installs the
 * binary from the seed volume and runs it at every boot. See agent/PROTOCOL.md.
 */
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

/** The binary's name on the seed volume (a vfat file next to user-data). */
export const AGENT_SEED_FILE = "tvd-agent";

/** Where the agent lives and keeps its state in the member. */
export const AGENT_PATHS = {
  config: "/etc/tvd/agent.json",
  unit: "/etc/systemd/system/tvd-agent.service",
  binary: "/usr/local/sbin/tvd-agent",
  state: "/var/lib/tvd-agent",
} as const;

/** The TPM auth values of one member, 32 bytes each as lowercase hex. Secrets. */
export interface SeedAgent {
  readonly ownerAuth: string;
  readonly srkAuth: string;
}

/** The agent's config file: only the auth values, read from a 0600 file, never from argv. */
export function agentConfig(a: SeedAgent): string {
  return `${JSON.stringify({ version: 1, ownerAuth: a.ownerAuth, srkAuth: a.srkAuth })}\n`;
}

/**
 * The unit: the binary is copied from the seed volume (NoCloud's `cidata` label) at each start,
 * so a new seed brings a new agent; the TPM is the kernel's resource manager when there is one.
 */
export const AGENT_UNIT = `[Unit]
Description=pulumi-tvd member agent: this member's TPM identity, reported to dom0 through xenstore
ConditionPathExists=${AGENT_PATHS.config}
After=local-fs.target

[Service]
Type=simple
ExecStartPre=/bin/sh -c 'd=$(mktemp -d) && mount -o ro LABEL=cidata "$d" && install -m 0755 "$d/${AGENT_SEED_FILE}" ${AGENT_PATHS.binary}; r=$?; umount "$d" 2>/dev/null; rmdir "$d"; exit $r'
ExecStart=/bin/sh -c 'tpm=/dev/tpmrm0; [ -e "$tpm" ] || tpm=/dev/tpm0; exec ${AGENT_PATHS.binary} run --tpm "$tpm" --xenbus /dev/xen/xenbus --config ${AGENT_PATHS.config} --state ${AGENT_PATHS.state}'
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
`;

/** cloud-init's runcmd entries that start the agent at first boot (the unit starts it after). */
export const AGENT_RUNCMD: readonly (readonly string[])[] = [
  ["systemctl", "daemon-reload"],
  ["systemctl", "enable", "--now", "tvd-agent.service"],
];

let cached: Buffer | undefined;

/**
 * The agent binary built by `bash agent/build` (agent/bin/tvd-agent in the package). Looked up from
 * this module's place, in the sources (ts-jest) and in dist/ alike.
 */
export function agentBinary(): Buffer {
  if (cached) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "agent", "bin", AGENT_SEED_FILE);
    if (existsSync(path.join(dir, "package.json")) && existsSync(candidate))
      return (cached = readFileSync(candidate));
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    "the member agent binary agent/bin/tvd-agent is not built: run `bash agent/build` in the pulumi-tvd package (needs Go), or leave the seed's agent unset",
  );
}
