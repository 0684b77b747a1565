/**
 * The work done by a hand-written script that starts one `ssh` process per remote command, which
 * is what `@pulumi/command` or a shell loop costs: a full SSH handshake per command. Hosts run in
 * parallel, each host's commands one after the other (as Ansible's linear strategy does).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "../../lab/exec";
import { cpuMeter, type CpuFigures } from "../common";
import {
  configOf,
  imageOf,
  MANAGER,
  MANAGER_IMAGE_MIB,
  overlayOf,
  VTPM_IMAGE_MIB,
  vtpmOf,
  xlConfig,
  type Placement,
} from "./workload";

/**
 * $1 known_hosts, then per host: user@address, port, private key file, commands file (one a line).
 * Prints what the commands print; fails naming the first command that failed.
 */
const RUNNER = `set -u
known=$1; shift
pids=()
while [ $# -gt 0 ]; do
  dest=$1 port=$2 key=$3 cmds=$4; shift 4
  (
    while IFS= read -r c; do
      ssh -n -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$known" \\
        -o LogLevel=ERROR -i "$key" -p "$port" "$dest" "$c" || { echo "$dest:$port: failed: $c" >&2; exit 1; }
    done < "$cmds"
  ) &
  pids+=($!)
done
rc=0
for p in "\${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
`;

/** A file's content as a printf format that writes it (configs hold no %, backslash or single quote). */
function printfOf(content: string): string {
  if (/[%\\']/.test(content)) throw new Error(`content cannot go through printf as is: ${content}`);
  return `printf '${content.replace(/\n/g, "\\n")}'`;
}

/**
 * A host's share of a phase as commands: `first` in order, then each guest's list in order (the
 * guests independent of each other), then `last`. The ssh script runs them all one after another;
 * the dom0-alone way (peers/dom0Way.ts) runs the guests' lists side by side.
 */
export interface CommandPlan {
  readonly first: readonly string[];
  readonly perGuest: readonly (readonly string[])[];
  readonly last: readonly string[];
}

/** Every command of a plan, in the order one process runs them. */
export function inOrder(plan: CommandPlan): string[] {
  return [...plan.first, ...plan.perGuest.flat(), ...plan.last];
}

/** The commands that create a host's share. */
export function createPlan(p: Placement, baseImage: string): CommandPlan {
  const stubdom = (name: string, config: string, sizeMiB: number) => [
    `mkdir -p /var/lib/xen/vtpm && dd if=/dev/zero of=${imageOf(name)} bs=1M count=${sizeMiB} conv=excl status=none`,
    `${printfOf(config)} > ${configOf(name)}`,
    `xl create ${configOf(name)}`,
  ];
  return {
    first: stubdom(MANAGER, xlConfig.manager(), MANAGER_IMAGE_MIB),
    perGuest: p.guests.map((g) => [
      ...stubdom(vtpmOf(g), xlConfig.vtpm(g), VTPM_IMAGE_MIB),
      `qemu-img create -q -f qcow2 -F raw -b ${baseImage} ${overlayOf(g)}`,
      `${printfOf(xlConfig.guest(g))} > ${configOf(g)}`,
      `xl create ${configOf(g)}`,
    ]),
    last: [],
  };
}

/** Each command prints one `<what>:<name>` line when what it reads is as created. */
function readCommands(p: Placement): string[] {
  const check = (name: string, config: string, file: string, kind: string) => [
    `test -f ${file} && echo ${kind}:${name}`,
    `${printfOf(config)} | cmp -s - ${configOf(name)} && echo config:${name}`,
    `xl list ${name} >/dev/null 2>&1 && echo domain:${name}`,
  ];
  return [
    ...check(MANAGER, xlConfig.manager(), imageOf(MANAGER), "image"),
    ...p.guests.flatMap((g) => [
      ...check(vtpmOf(g), xlConfig.vtpm(g), imageOf(vtpmOf(g)), "image"),
      ...check(g, xlConfig.guest(g), overlayOf(g), "overlay"),
    ]),
  ];
}

/** The commands that remove a host's share. */
export function destroyPlan(p: Placement): CommandPlan {
  return {
    first: [],
    perGuest: p.guests.map((g) => [
      `xl destroy ${g}`,
      `xl destroy ${vtpmOf(g)}`,
      `rm -f ${configOf(g)}`,
      `rm -f ${overlayOf(g)}`,
      `rm -f ${configOf(vtpmOf(g))}`,
      `rm -f ${imageOf(vtpmOf(g))}`,
    ]),
    last: [`xl destroy ${MANAGER}`, `rm -f ${configOf(MANAGER)}`, `rm -f ${imageOf(MANAGER)}`],
  };
}

export interface SshRun {
  readonly sec: number;
  /** ssh processes started (one per command). */
  readonly sshProcesses: number;
  readonly stdout: string;
  readonly cpu: CpuFigures;
}

export class SshPerCommandWay {
  constructor(
    private readonly workDir: string,
    private readonly knownHostsFile: string,
    private readonly placements: readonly Placement[],
  ) {
    mkdirSync(workDir, { recursive: true });
  }

  private async run(phase: string, commandsOf: (p: Placement) => string[]): Promise<SshRun> {
    const args: string[] = [];
    let sshProcesses = 0;
    for (const p of this.placements) {
      const file = path.join(this.workDir, `${phase}-${p.host.name}.cmds`);
      const commands = commandsOf(p);
      sshProcesses += commands.length;
      writeFileSync(file, commands.join("\n") + "\n");
      args.push(`${p.host.user}@${p.host.host}`, String(p.host.port), p.host.privateKeyPath, file);
    }
    const t = Date.now();
    const cpuSoFar = cpuMeter();
    const r = await run(["bash", "-c", RUNNER, "ssh-per-command", this.knownHostsFile, ...args], {
      timeoutMs: 60 * 60_000,
    });
    const sec = (Date.now() - t) / 1000;
    const cpu = cpuSoFar();
    if (r.code !== 0)
      throw new Error(`ssh-per-command ${phase} failed (${r.code}): ${r.stderr.slice(0, 2000)}`);
    return { sec, sshProcesses, stdout: r.stdout, cpu };
  }

  create(baseImage: string): Promise<SshRun> {
    return this.run("create", (p) => inOrder(createPlan(p, baseImage)));
  }

  /** Reads everything back; throws unless each image, config and domain was found as created. */
  async readBack(): Promise<SshRun & { found: number }> {
    const r = await this.run("read", readCommands);
    const found = r.stdout.split("\n").filter((l) => /^(image|overlay|config|domain):/.test(l));
    const want = this.placements.reduce((n, p) => n + 3 * (1 + 2 * p.guests.length), 0);
    if (found.length !== want)
      throw new Error(`ssh-per-command read back ${found.length} things as created, expected ${want}`);
    return { ...r, found: found.length };
  }

  destroy(): Promise<SshRun> {
    return this.run("destroy", (p) => inOrder(destroyPlan(p)));
  }
}
