/**
 * Guests' network endpoints. On Xen, each vif gets a backend interface vif<domid>.<devid> in dom0
 * that the vif-bridge hotplug script adds to the spec's bridge, and the guest's own eth<devid>
 * lives in the guest's kernel. The lab runs no guest kernel, so a network namespace per domain,
 * held open by a process, stands in for the guest, joined to dom0 by one veth pair per vif: what
 * reaches a guest's address is real traffic through the host's bridges.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { alive } from "../proc";
import { type VifSpec, XlError } from "./specs";
import { type GuestNetns, LAB_DIR } from "./state";

/** libxl's bridge when a vif spec names none. */
const DEFAULT_BRIDGE = "xenbr0";

/** Where tests and `lab status` find a domain's namespace holder, inside the host. */
export function netnsPidFile(domain: string): string {
  return path.join(LAB_DIR, "netns", `${domain}.pid`);
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) {
    throw new XlError([`lab: ${argv.join(" ")} failed: ${(r.stderr || r.error?.message || "").trim()}`], 1);
  }
  return r.stdout;
}

const bridgeOf = (nic: VifSpec) => nic.bridge ?? DEFAULT_BRIDGE;

function isBridge(name: string): boolean {
  const r = spawnSync("ip", ["-o", "link", "show", "dev", name, "type", "bridge"], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() !== "";
}

/** The first bridge a vif names that does not exist: vif-bridge would fail on it. */
export function missingBridge(nics: readonly VifSpec[]): string | undefined {
  return nics.map(bridgeOf).find((br) => !isBridge(br));
}

const IPV4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;

/**
 * The guest's address from a vif's `ip=`. xl takes a bare address there (for vif-route and
 * antispoofing); the guest side here also needs a prefix, so a CIDR is accepted and a bare
 * address means /24.
 */
export function guestAddress(spec: string): string {
  const [addr, prefix = "24", ...rest] = spec.split("/");
  const n = Number(prefix);
  if (!IPV4.test(addr) || rest.length || !/^\d{1,2}$/.test(prefix) || n > 32) {
    throw new XlError([`lab: vif ip=${spec} is not an IPv4 address (a.b.c.d or a.b.c.d/nn)`], 1);
  }
  return `${addr}/${n}`;
}

function mtuOf(dev: string): number {
  const [link] = JSON.parse(run(["ip", "-j", "link", "show", "dev", dev])) as Array<{ mtu: number }>;
  return link.mtu;
}

/** A namespace with only `lo`, held open by `sleep`; returns the holder's pid once it exists. */
function startHolder(): number {
  const child = spawn("unshare", ["--net", "--", "sh", "-c", "ip link set lo up; exec sleep infinity"], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new XlError(["lab: cannot start a guest network namespace (unshare)"], 1);
  for (let i = 0; i < 250; i++) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep")) return pid;
    } catch {
      throw new XlError(["lab: the guest network namespace holder exited"], 1);
    }
    sleepMs(20);
  }
  process.kill(pid, "SIGKILL");
  throw new XlError(["lab: timed out starting a guest network namespace"], 1);
}

/**
 * Plugs a new domain's vifs: vif<domid>.<devid> in dom0 on the bridge (with the bridge's MTU,
 * as vif-bridge sets it), eth<devid> in the domain's own namespace with the spec's MAC and
 * address. All or nothing: on failure whatever was made is removed.
 */
export function plugVifs(domid: number, domain: string, nics: readonly VifSpec[]): GuestNetns | undefined {
  if (nics.length === 0) return undefined;
  const addresses = nics.map((nic) => (nic.ip === undefined ? undefined : guestAddress(nic.ip)));
  const made: GuestNetns = { pid: startHolder(), vifs: [] };
  const inGuest = (argv: string[]) => run(["nsenter", "-t", String(made.pid), "-n", ...argv]);
  try {
    nics.forEach((nic, devid) => {
      const vif = nic.vifname ?? `vif${domid}.${devid}`;
      const eth = `eth${devid}`;
      const mtu = String(mtuOf(bridgeOf(nic)));
      run(["ip", "link", "add", vif, "type", "veth", "peer", "name", eth, "netns", String(made.pid)]);
      made.vifs.push(vif);
      run(["ip", "link", "set", "dev", vif, "mtu", mtu, "master", bridgeOf(nic), "up"]);
      inGuest(["ip", "link", "set", "dev", eth, "mtu", mtu, ...(nic.mac ? ["address", nic.mac] : [])]);
      if (addresses[devid]) inGuest(["ip", "addr", "add", addresses[devid], "dev", eth]);
      inGuest(["ip", "link", "set", "dev", eth, "up"]);
    });
  } catch (e) {
    unplugVifs(made, domain);
    throw e;
  }
  mkdirSync(path.dirname(netnsPidFile(domain)), { recursive: true });
  writeFileSync(netnsPidFile(domain), `${made.pid}\n`);
  return made;
}

/** Removes a domain's vifs and stops its namespace (the guest sides go with it). */
export function unplugVifs(n: GuestNetns, domain: string): void {
  for (const vif of n.vifs) spawnSync("ip", ["link", "del", "dev", vif]);
  // After a power-off the pid may belong to another process by now.
  let holder = false;
  try {
    holder = readFileSync(`/proc/${n.pid}/cmdline`, "utf8").startsWith("sleep");
  } catch {
    // gone
  }
  if (holder && alive(n.pid)) {
    try {
      process.kill(n.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
    for (let i = 0; i < 100 && alive(n.pid); i++) sleepMs(10);
  }
  rmSync(netnsPidFile(domain), { force: true });
}
