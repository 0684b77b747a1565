/**
 * The emulated hypervisor's state on one lab host: its settings (host.json) and its domains
 * (domains.json), both under /var/lib/tvd-lab inside the host. Every xl invocation runs under
 * `flock /var/lib/tvd-lab/xl.lock` (see the wrapper the lab installs), so parallel calls from
 * many SSH channels see consistent state.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { DomainKind, VifSpec } from "./specs";

export interface HostSettings {
  readonly name: string;
  readonly totalMemoryMiB: number;
  readonly dom0MemoryMiB: number;
  readonly nrCpus: number;
  /** Seconds before a vtpmmgr's console prints "Waiting for commands". */
  readonly managerReadyDelaySec: number;
  /** How long `xl shutdown` waits for a domain that ignores it (the manager). */
  readonly shutdownAckTimeoutSec: number;
  /** vTPMs are TPM 2.0 unless a domain says otherwise (Xen's own are TPM 1.2). */
  readonly tpm2: boolean;
  /** The libxlutil helper, the node binary and this emulator's entry point. */
  readonly xlcfg: string;
  readonly node: string;
  readonly xlMain: string;
}

export interface DiskConfig {
  readonly pdev_path: string;
  readonly vdev: string;
  readonly format: string;
  readonly readwrite: number;
  readonly is_cdrom: number;
}

export interface DomainConfig {
  readonly name: string;
  readonly kind: DomainKind;
  readonly memoryMiB: number;
  readonly maxmemMiB: number;
  readonly vcpus: number;
  readonly uuid: string;
  readonly kernel?: string;
  readonly ramdisk?: string;
  readonly cmdline?: string;
  readonly bootloader?: string;
  readonly disks: DiskConfig[];
  readonly nics: VifSpec[];
  readonly iomem: string[];
  readonly onPoweroff: string;
  readonly onReboot: string;
  readonly onCrash: string;
  /** TPM version of a vtpm-stubdom's swtpm. */
  readonly tpm2: boolean;
}

export interface VtpmDevice {
  readonly devid: number;
  readonly backendName: string;
  readonly backendDomid: number;
  readonly uuid: string;
}

export interface SwtpmProcess {
  readonly pid: number;
  readonly server: string;
  readonly ctrl: string;
  readonly tpm2: boolean;
  /** The loop device the vTPM image is attached to while swtpm runs. */
  readonly loop: string;
}

/** A guest's stand-in network: a namespace held open by a process, one veth pair per vif. */
export interface GuestNetns {
  readonly pid: number;
  /** Backend interfaces in dom0, vif<domid>.<devid>, as Xen names them. */
  readonly vifs: string[];
}

/** A guest's xenbus server (its xenstore connection) and the agent its seed starts. */
export interface GuestXenbus {
  readonly pid: number;
  readonly socket: string;
}

export interface DomainRecord {
  readonly domid: number;
  readonly name: string;
  readonly config: DomainConfig;
  readonly configFile: string;
  readonly createdAt: number;
  vtpms: VtpmDevice[];
  /** The manager printed "Waiting for commands" (only then may it be destroyed safely). */
  ready: boolean;
  swtpm?: SwtpmProcess;
  netns?: GuestNetns;
  xenbus?: GuestXenbus;
  agent?: { readonly pid: number };
}

export interface HostState {
  nextDomid: number;
  domains: DomainRecord[];
  /** Manager images whose manager was destroyed while busy: their content may be inconsistent. */
  dirtyImages: string[];
}

export const LAB_DIR = process.env.TVD_LAB_DIR ?? "/var/lib/tvd-lab";
export const LOG_DIR = process.env.TVD_LAB_LOG_DIR ?? "/var/log/xen";

const statePath = () => path.join(LAB_DIR, "domains.json");

export function loadSettings(): HostSettings {
  return JSON.parse(readFileSync(path.join(LAB_DIR, "host.json"), "utf8")) as HostSettings;
}

export function loadState(): HostState {
  if (!existsSync(statePath())) return { nextDomid: 1, domains: [], dirtyImages: [] };
  return JSON.parse(readFileSync(statePath(), "utf8")) as HostState;
}

/** Written whole and renamed into place, so a killed xl never leaves half a state file. */
export function saveState(state: HostState): void {
  mkdirSync(LAB_DIR, { recursive: true });
  const tmp = `${statePath()}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 1));
  renameSync(tmp, statePath());
}
