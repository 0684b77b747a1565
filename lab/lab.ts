/**
 * The local dom0 lab: several SSH hosts on loopback that stand in for Xen dom0s. Each host is a
 * real OpenSSH sshd in its own mount namespace with its own Xen directories, so programs and
 * tests reach it exactly as they would reach a dom0.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { type LabHostEntry, startSshdHost, waitForSsh } from "./sshdHost";

export interface Inventory {
  readonly hosts: LabHostEntry[];
}

interface LabState {
  readonly hosts: Array<LabHostEntry & { readonly pid: number }>;
}

/** The directories that are per-host on a dom0 (each host gets its own copy). */
export const HOST_DIRS = ["/etc/xen", "/var/lib/xen", "/var/log/xen", "/usr/lib/xen/boot"] as const;

/** lab/state in the checkout this code belongs to (from lab/ or dist/lab/ alike). */
export function defaultStateDir(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "lab"))) {
      return path.join(dir, "lab", "state");
    }
  }
  return path.resolve("lab", "state");
}

const FIRST_PORT = 2201;

export function hostName(i: number): string {
  return `dom0-${String.fromCharCode("a".charCodeAt(0) + i)}`;
}

function statePath(stateDir: string): string {
  return path.join(stateDir, "lab.json");
}

export function inventoryPath(stateDir: string): string {
  return path.join(stateDir, "inventory.json");
}

function readState(stateDir: string): LabState {
  const p = statePath(stateDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as LabState) : { hosts: [] };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function writeState(stateDir: string, state: LabState): Inventory {
  writeFileSync(statePath(stateDir), JSON.stringify(state, null, 2) + "\n");
  const inventory: Inventory = { hosts: state.hosts.map(({ pid: _pid, ...entry }) => entry) };
  writeFileSync(inventoryPath(stateDir), JSON.stringify(inventory, null, 2) + "\n");
  return inventory;
}

/** Starts hosts until `count` run; hosts already running are kept as they are. */
export async function labUp(stateDir: string, count: number): Promise<Inventory> {
  if (!Number.isInteger(count) || count < 1 || count > 26) {
    throw new Error(`--hosts must be a whole number from 1 to 26, got ${count}`);
  }
  mkdirSync(stateDir, { recursive: true });
  const previous = readState(stateDir);
  const hosts: LabState["hosts"] = [];
  for (let i = 0; i < count; i++) {
    const name = hostName(i);
    const known = previous.hosts.find((h) => h.name === name);
    if (known && alive(known.pid)) {
      await waitForSsh(known.host, known.port);
      hosts.push(known);
      continue;
    }
    const root = path.join(stateDir, name, "root");
    const started = await startSshdHost({
      name,
      stateDir,
      port: FIRST_PORT + i,
      detached: true,
      mounts: HOST_DIRS.map((d) => ({ kind: "bind" as const, path: d, source: path.join(root, d) })),
    });
    const { stop: _stop, ...entry } = started;
    hosts.push(entry);
  }
  for (const extra of previous.hosts.filter((h) => !hosts.some((k) => k.name === h.name))) {
    if (alive(extra.pid)) process.kill(extra.pid, "SIGTERM");
  }
  return writeState(stateDir, { hosts });
}

export interface HostStatus extends LabHostEntry {
  readonly pid: number;
  readonly running: boolean;
}

export function labStatus(stateDir: string): HostStatus[] {
  return readState(stateDir).hosts.map((h) => ({ ...h, running: alive(h.pid) }));
}

/** Stops every host; their files stay under the state dir until `reset`. */
export async function labDown(stateDir: string): Promise<void> {
  for (const h of readState(stateDir).hosts) {
    if (!alive(h.pid)) continue;
    process.kill(h.pid, "SIGTERM");
    for (let i = 0; i < 50 && alive(h.pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(statePath(stateDir), { force: true });
  rmSync(inventoryPath(stateDir), { force: true });
}

/** Empties every host's Xen directories (domains, images, configs, logs), keeping keys and sshd. */
export function labReset(stateDir: string): void {
  for (const h of readState(stateDir).hosts) {
    const root = path.join(stateDir, h.name, "root");
    for (const d of HOST_DIRS) {
      const dir = path.join(root, d);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
    }
  }
}
