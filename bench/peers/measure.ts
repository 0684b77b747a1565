/**
 * One size of the peers benchmark: the same work (bench/peers/workload.ts) done four ways on one
 * lab, each way checked to have created and read back everything and to have left the lab clean
 * before the next starts; and done by the dom0s alone, with no tool in front, which is what every
 * way pays the hosts. Shared by bench/peers.ts and its CI slice (test/e2e/peers.slice.test.ts).
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { inHost, type LabHostRecord } from "../../lab/host";
import { AnsibleWay, type AnsibleRun } from "./ansibleWay";
import { Dom0AloneWay, type Dom0Run } from "./dom0Way";
import { PulumiWay, type PulumiOp } from "./pulumiWay";
import { SshPerCommandWay, type SshRun } from "./sshWay";
import {
  assertClean,
  assertCreated,
  knownHosts,
  LAB_BASE_IMAGE,
  MANAGER,
  place,
  type Placement,
} from "./workload";

/** pulumi-tvd's own records on a dom0 (ownership, locks, archived keys). */
export const PULUMI_TVD_DIR = "/var/lib/xen/pulumi-tvd";

/**
 * What pulumi-tvd leaves after `destroy`, by design: the vTPM manager's image, archived (it holds
 * every vTPM's keys; the provider never deletes it), its ownership record (role "archived ..."),
 * and empty lock files. Throws on anything else, then removes it, as an operator who means to wipe
 * the host would.
 */
async function removeArchivedManagerKeys(hosts: readonly LabHostRecord[]): Promise<void> {
  const script = `set -eu
dir=$1; kept="file:$1/archive/$2.img."
find "$dir" -type f ! \\( -name "*.lock" -empty \\) 2>/dev/null | while IFS= read -r f; do
  case $f in
    "$dir/archive/$2.img."*) continue ;;
    "$dir/owners/"*)
      case "$(sed -n 1p -- "$f")|$(sed -n 3p -- "$f")" in "$kept"*"|archived "*) continue ;; esac ;;
  esac
  echo "pulumi-tvd left other files than the manager's archived image: $f ($(head -c 200 -- "$f" | tr '\\n' ' '))" >&2
  exit 1
done
rm -rf -- "$dir"`;
  for (const h of hosts) {
    const r = await inHost(h, ["sh", "-c", script, "sh", PULUMI_TVD_DIR, MANAGER]);
    if (r.code !== 0) throw new Error(`${h.name}: ${r.stderr}`);
  }
}

export interface PulumiFigures {
  readonly up: PulumiOp;
  readonly preview: PulumiOp;
  readonly previewRefresh: PulumiOp;
  readonly refresh: PulumiOp;
  readonly destroy: PulumiOp;
}

export interface AnsibleFigures {
  readonly create: AnsibleRun;
  readonly check: AnsibleRun & { itemsVerified: number };
  readonly destroy: AnsibleRun;
}

export interface SshFigures {
  readonly create: SshRun;
  readonly readBack: SshRun & { found: number };
  readonly destroy: SshRun;
}

export interface Dom0Figures {
  readonly create: Dom0Run;
  readonly destroy: Dom0Run;
}

/** The ways a run can measure (`bench:peers -- --ways`); a run measures all of them unless told. */
export const WAYS = ["pulumi-tvd", "ansible-defaults", "ansible-pipelining", "ssh", "dom0"] as const;
export type Way = (typeof WAYS)[number];

/** What one size measured: every way the run was asked for (all five in a full run). */
export interface SizeFigures {
  readonly hosts: number;
  readonly guests: number;
  readonly resources: number;
  readonly pulumiTvd?: PulumiFigures;
  readonly ansibleDefaults?: AnsibleFigures;
  readonly ansiblePipelining?: AnsibleFigures;
  readonly sshPerCommand?: SshFigures;
  /** The ssh script's commands run on the dom0s themselves, no SSH: what any way pays the hosts. */
  readonly dom0Alone?: Dom0Figures;
  /** pulumi-tvd `up` of the same guests on sparse base images of these sizes (GiB). */
  readonly baseImageUp: Record<string, { baseImage: string; up: PulumiOp }>;
}

export interface Lab {
  readonly hosts: readonly LabHostRecord[];
  /** A scratch directory for the ways' files (programs, playbooks, command lists). */
  readonly workDir: string;
  /** Base images the work may use besides the lab's own (they count as part of a clean host). */
  readonly bases: readonly string[];
}

const log = (s: string) => process.stderr.write(`[peers] ${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** pulumi-tvd: up, the reads, destroy; the lab clean afterwards. */
async function pulumiTvd(
  lab: Lab,
  placements: Placement[],
  base: string,
  dir: string,
): Promise<PulumiFigures> {
  const way = await PulumiWay.create(dir, placements, base);
  try {
    const up = await way.up();
    await assertCreated("pulumi-tvd", placements, lab.bases, PULUMI_TVD_DIR);
    const preview = await way.preview();
    const previewRefresh = await way.previewRefresh();
    const refresh = await way.refresh();
    const destroy = await way.destroy();
    await removeArchivedManagerKeys(lab.hosts);
    await assertClean("pulumi-tvd", lab.hosts, lab.bases);
    return { up, preview, previewRefresh, refresh, destroy };
  } finally {
    await way.dispose();
  }
}

/** pulumi-tvd `up` alone (then destroy), for the base-image comparison. */
export async function pulumiUpOnly(
  lab: Lab,
  placements: Placement[],
  base: string,
  dir: string,
): Promise<PulumiOp> {
  const way = await PulumiWay.create(dir, placements, base);
  try {
    const up = await way.up();
    await assertCreated(`pulumi-tvd on ${base}`, placements, lab.bases, PULUMI_TVD_DIR);
    await way.destroy();
    await removeArchivedManagerKeys(lab.hosts);
    await assertClean(`pulumi-tvd on ${base}`, lab.hosts, lab.bases);
    return up;
  } finally {
    await way.dispose();
  }
}

async function ansible(
  lab: Lab,
  placements: Placement[],
  known: string,
  dir: string,
  pipelining: boolean,
): Promise<AnsibleFigures> {
  const what = pipelining ? "ansible (pipelining)" : "ansible (defaults)";
  const way = new AnsibleWay(dir, known, placements, LAB_BASE_IMAGE, pipelining);
  const create = await way.create();
  await assertCreated(what, placements, lab.bases);
  const check = await way.check();
  const destroy = await way.destroy();
  await assertClean(what, lab.hosts, lab.bases);
  return { create, check, destroy };
}

async function sshPerCommand(
  lab: Lab,
  placements: Placement[],
  known: string,
  dir: string,
): Promise<SshFigures> {
  const way = new SshPerCommandWay(dir, known, placements);
  const create = await way.create(LAB_BASE_IMAGE);
  await assertCreated("ssh per command", placements, lab.bases);
  const readBack = await way.readBack();
  const destroy = await way.destroy();
  await assertClean("ssh per command", lab.hosts, lab.bases);
  return { create, readBack, destroy };
}

/** A size's guests placed on the hosts, its scratch directory, and the lab checked clean. */
async function startSize(lab: Lab, guests: number): Promise<{ placements: Placement[]; dir: string }> {
  const placements = place(lab.hosts, guests);
  const dir = path.join(lab.workDir, `g${guests}`);
  mkdirSync(dir, { recursive: true });
  await assertClean("the lab before the run", lab.hosts, lab.bases);
  return { placements, dir };
}

/**
 * pulumi-tvd's column alone (`bench:peers -- --pulumi-tvd-only`): a change's before and after
 * on one machine. The ratios need every way in one run, so this makes none.
 */
export async function measurePulumiTvdOnly(lab: Lab, guests: number): Promise<PulumiFigures> {
  const { placements, dir } = await startSize(lab, guests);
  log(`${guests} guests: pulumi-tvd`);
  return pulumiTvd(lab, placements, LAB_BASE_IMAGE, path.join(dir, "pulumi"));
}

/** The dom0s alone: the ssh script's commands in the hosts' namespaces; the lab clean afterwards. */
async function dom0Alone(lab: Lab, placements: Placement[], dir: string): Promise<Dom0Figures> {
  const way = new Dom0AloneWay(dir, placements);
  const create = await way.create(LAB_BASE_IMAGE);
  await assertCreated("the dom0s alone", placements, lab.bases);
  const destroy = await way.destroy();
  await assertClean("the dom0s alone", lab.hosts, lab.bases);
  return { create, destroy };
}

/**
 * Runs the ways asked for (all of them unless told) at one size, then, when pulumi-tvd is among
 * them and `baseImages` names any, pulumi-tvd `up` on each of those base images. The lab must be
 * clean when it starts; it is clean when it returns.
 */
export async function measureSize(
  lab: Lab,
  guests: number,
  baseImages: Record<string, string> = {},
  ways: readonly Way[] = WAYS,
): Promise<SizeFigures> {
  const { placements, dir } = await startSize(lab, guests);
  const known = path.join(dir, "known_hosts");
  writeFileSync(known, knownHosts(lab.hosts));
  const asked = <T>(way: Way, what: string, measure: () => Promise<T>): Promise<T | undefined> => {
    if (!ways.includes(way)) return Promise.resolve(undefined);
    log(`${guests} guests: ${what}`);
    return measure();
  };
  try {
    const pulumi = await asked("pulumi-tvd", "pulumi-tvd", () =>
      pulumiTvd(lab, placements, LAB_BASE_IMAGE, path.join(dir, "pulumi")),
    );
    const ansibleDefaults = await asked("ansible-defaults", "ansible, defaults", () =>
      ansible(lab, placements, known, path.join(dir, "ansible-defaults"), false),
    );
    const ansiblePipelining = await asked("ansible-pipelining", "ansible, pipelining", () =>
      ansible(lab, placements, known, path.join(dir, "ansible-pipelining"), true),
    );
    const ssh = await asked("ssh", "ssh per command", () =>
      sshPerCommand(lab, placements, known, path.join(dir, "ssh")),
    );
    const dom0 = await asked("dom0", "the dom0s alone", () =>
      dom0Alone(lab, placements, path.join(dir, "dom0")),
    );
    const baseImageUp: SizeFigures["baseImageUp"] = {};
    for (const [label, baseImage] of Object.entries(ways.includes("pulumi-tvd") ? baseImages : {})) {
      log(`${guests} guests: pulumi-tvd up on ${baseImage}`);
      baseImageUp[label] = {
        baseImage,
        up: await pulumiUpOnly(lab, placements, baseImage, path.join(dir, `pulumi-${label}`)),
      };
    }
    return {
      hosts: lab.hosts.length,
      guests,
      resources: lab.hosts.length + 2 * guests,
      pulumiTvd: pulumi,
      ansibleDefaults,
      ansiblePipelining,
      sshPerCommand: ssh,
      dom0Alone: dom0,
      baseImageUp,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `preview` of a 3-resource program (one manager, one vTPM, one guest) on a deployed stack: the fixed cost. */
export async function smallProgramPreview(lab: Lab): Promise<PulumiOp> {
  const placements: Placement[] = [{ host: lab.hosts[0], guests: ["g0"] }];
  const dir = path.join(lab.workDir, "small");
  const way = await PulumiWay.create(dir, placements, LAB_BASE_IMAGE);
  try {
    await way.up();
    const preview = await way.preview();
    await way.destroy();
    await removeArchivedManagerKeys(lab.hosts);
    await assertClean("pulumi-tvd (3 resources)", lab.hosts, lab.bases);
    return preview;
  } finally {
    await way.dispose();
  }
}
