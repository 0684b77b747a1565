/**
 * The local dom0 lab: several stand-in Xen hosts on loopback (see host.ts), described by an
 * inventory file that Pulumi programs and tests read.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import {
  alive,
  attachToUnderlay,
  ensureHost,
  ensureUnderlay,
  inHost,
  seedXenData,
  stopHost,
  stopUnderlay,
  underlayIpOf,
  type LabHostOptions,
  type LabHostRecord,
} from "./host";
import type { LabHostEntry } from "./sshd";
import type { HostState } from "./xl/state";

/** An inventory entry: how to reach the host, and its address on the lab's underlay. */
export interface InventoryHost extends LabHostEntry {
  readonly underlayIp: string;
}

export interface Inventory {
  readonly hosts: InventoryHost[];
}

export interface LabOptions {
  readonly hosts: number;
  /** @default 2201 */
  readonly firstPort?: number;
  /** Memory each emulated hypervisor accounts for. @default 65536 */
  readonly memoryMiB?: number;
  /** Size of each host's /var/lib/xen filesystem (sparse). @default 4096 */
  readonly diskMiB?: number;
  /** vTPMs are TPM 2.0 instead of Xen's TPM 1.2. @default false */
  readonly tpm2?: boolean;
  /** @default 1 */
  readonly managerReadyDelaySec?: number;
  /** @default 60, as real xl */
  readonly shutdownAckTimeoutSec?: number;
}

interface LabState {
  readonly options: Required<LabOptions>;
  readonly hosts: LabHostRecord[];
}

export function defaultStateDir(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "lab"))) {
      return path.join(dir, "lab", "state");
    }
  }
  return path.resolve("lab", "state");
}

export function hostName(i: number): string {
  return `dom0-${String.fromCharCode("a".charCodeAt(0) + i)}`;
}

const statePath = (stateDir: string) => path.join(stateDir, "lab.json");
export const inventoryPath = (stateDir: string) => path.join(stateDir, "inventory.json");

function readState(stateDir: string): LabState | undefined {
  const p = statePath(stateDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as LabState) : undefined;
}

function entryOf(h: LabHostRecord): InventoryHost {
  const { name, kind, host, port, user, privateKeyPath, hostKeyFingerprint, underlayIp } = h;
  return { name, kind, host, port, user, privateKeyPath, hostKeyFingerprint, underlayIp };
}

/** Starts whatever is not running until `hosts` hosts answer SSH; returns the inventory. */
export async function labUp(stateDir: string, opts: LabOptions): Promise<Inventory> {
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 26) {
    throw new Error(`--hosts must be a whole number from 1 to 26, got ${opts.hosts}`);
  }
  const previous = readState(stateDir);
  const options = {
    firstPort: 2201,
    memoryMiB: 65536,
    diskMiB: 4096,
    tpm2: false,
    managerReadyDelaySec: 1,
    shutdownAckTimeoutSec: 60,
    ...previous?.options,
    ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as LabOptions),
  } as Required<LabOptions>;
  mkdirSync(stateDir, { recursive: true });
  const hostOpts = (i: number): LabHostOptions => ({
    name: hostName(i),
    stateDir,
    port: options.firstPort + i,
    memoryMiB: options.memoryMiB,
    diskMiB: options.diskMiB,
    tpm2: options.tpm2,
    managerReadyDelaySec: options.managerReadyDelaySec,
    shutdownAckTimeoutSec: options.shutdownAckTimeoutSec,
  });
  const booted = await Promise.all(Array.from({ length: options.hosts }, (_, i) => ensureHost(hostOpts(i))));
  const underlayPid = await ensureUnderlay(stateDir);
  const hosts: LabHostRecord[] = await Promise.all(
    booted.map(async (h, i) => {
      await attachToUnderlay(underlayPid, h, underlayIpOf(i));
      return { ...h, underlayIp: underlayIpOf(i) };
    }),
  );
  for (const extra of previous?.hosts.filter((h) => !hosts.some((k) => k.name === h.name)) ?? []) {
    await stopHost(extra.dir);
  }
  writeFileSync(statePath(stateDir), JSON.stringify({ options, hosts }, null, 2) + "\n");
  const inventory: Inventory = { hosts: hosts.map(entryOf) };
  writeFileSync(inventoryPath(stateDir), JSON.stringify(inventory, null, 2) + "\n");
  return inventory;
}

export interface VtpmStatus {
  readonly domain: string;
  readonly tpm: "1.2" | "2.0";
  readonly server: string;
  readonly ctrl: string;
}

/** A domain's stand-in guest network namespace: `nsenter -t <pid> -n` enters it. */
export interface NetnsStatus {
  readonly domain: string;
  readonly pid: number;
  readonly vifs: string[];
}

/** A guest's xenbus socket (its xenstore connection, as this machine reaches it) and its agent. */
export interface GuestStatus {
  readonly domain: string;
  readonly domid: number;
  readonly xenbus: string;
  /** The pid of its `tvd-agent run`, when its seed started one. */
  readonly agentPid?: number;
}

export interface HostStatus extends InventoryHost {
  readonly running: boolean;
  readonly domains: number;
  readonly vtpms: VtpmStatus[];
  readonly netns: NetnsStatus[];
  readonly guests: GuestStatus[];
}

export function labHosts(stateDir: string): LabHostRecord[] {
  return readState(stateDir)?.hosts ?? [];
}

export function labStatus(stateDir: string): HostStatus[] {
  return labHosts(stateDir).map((h) => {
    const domainsFile = path.join(h.dir, "root", "var/lib/tvd-lab/domains.json");
    const state: HostState = existsSync(domainsFile)
      ? JSON.parse(readFileSync(domainsFile, "utf8"))
      : { nextDomid: 1, domains: [], dirtyImages: [] };
    return {
      ...entryOf(h),
      running: alive(h.holderPid) && alive(h.forwarderPid),
      domains: state.domains.length,
      // Unix sockets are files: this machine reaches them through the host's state dir.
      vtpms: state.domains
        .filter((d) => d.swtpm)
        .map((d) => ({
          domain: d.name,
          tpm: d.swtpm!.tpm2 ? "2.0" : "1.2",
          server: path.join(h.dir, "root", d.swtpm!.server),
          ctrl: path.join(h.dir, "root", d.swtpm!.ctrl),
        })),
      netns: state.domains
        .filter((d) => d.netns)
        .map((d) => ({ domain: d.name, pid: d.netns!.pid, vifs: d.netns!.vifs })),
      guests: state.domains
        .filter((d) => d.xenbus)
        .map((d) => ({
          domain: d.name,
          domid: d.domid,
          xenbus: path.join(h.dir, "root", d.xenbus!.socket),
          agentPid: d.agent?.pid,
        })),
    };
  });
}

/**
 * Destroys every domain on a host, newest first (guests and vTPMs before their manager), so each
 * vTPM's state is flushed to its image and no manager is torn down under its vTPMs.
 */
async function destroyAllDomains(h: LabHostRecord): Promise<void> {
  // A domain already gone (destroyed by someone else meanwhile) is fine; what counts is the end.
  const script = [
    "xl list | awk 'NR > 2 { print $2, $1 }' | sort -rn | while read -r id name; do xl destroy \"$name\" 2>/dev/null; done",
    "left=$(xl list | awk 'NR > 2' | wc -l)",
    '[ "$left" -eq 0 ] || { echo "$left domain(s) still running" >&2; exit 1; }',
  ].join("\n");
  const r = await inHost(h, ["sh", "-c", script]);
  if (r.code !== 0) throw new Error(`destroying the domains of ${h.name} failed: ${r.stderr}`);
}

/**
 * Powers every host off: its domains are destroyed (vTPM state flushed to the images), then its
 * processes stop. Files stay under the state dir until `reset`; `up` boots the hosts again.
 */
export async function labDown(stateDir: string): Promise<void> {
  await Promise.all(
    labHosts(stateDir).map(async (h) => {
      if (alive(h.holderPid)) await destroyAllDomains(h);
      await stopHost(h.dir);
    }),
  );
  await stopUnderlay(stateDir);
  rmSync(inventoryPath(stateDir), { force: true });
}

/**
 * Empties every host: destroys its domains (stopping their vTPMs) and removes everything in
 * its Xen directories, keeping keys, sshd and the stand-in boot files.
 */
export async function labReset(stateDir: string): Promise<void> {
  for (const h of labHosts(stateDir)) {
    await destroyAllDomains(h);
    const script = [
      "rm -rf /var/lib/xen/* /etc/xen/* /var/log/xen/* /var/lib/tvd-lab/faults/*",
      "rm -f /var/lib/tvd-lab/domains.json /var/lib/tvd-lab/xenstore.json",
      "rm -rf /var/lib/tvd-lab/vtpm /var/lib/tvd-lab/guest",
      "mkdir -p /var/log/xen/console",
    ].join("\n");
    const r = await inHost(h, ["sh", "-c", script]);
    if (r.code !== 0) throw new Error(`reset of ${h.name} failed: ${r.stderr}`);
    await seedXenData(h.holderPid, stateDir);
  }
}
