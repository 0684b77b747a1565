/**
 * What a TvdNetwork's input change means, and what its links on a dom0 say about it. Pure.
 * The bridge, the VNI (the VXLAN's name and id), the local address and the UDP port are fixed
 * when the VXLAN is made: changing one replaces the network. Peers and MTU change in place.
 */
import { classifyChanges, comparableInputs, type ChangeClasses } from "../../dynamic";
import { tvdNetworkShape, type TvdNetworkInputs } from "./args";

const REPLACING = ["bridge", "vni", "localIp", "dstPort", "host"] as const;

export interface TvdNetworkDiff extends ChangeClasses {
  /** Something is missing on the host (bridge, VXLAN, or the VXLAN off the bridge): update remakes it. */
  readonly repair: boolean;
}

/** Inputs as the host sees them; peers are a set (fdb order means nothing). */
function comparable(props: Record<string, unknown>): Record<string, unknown> {
  const v = comparableInputs(tvdNetworkShape, props);
  const c = v.connection as { host?: unknown; port?: unknown } | undefined;
  return {
    ...v,
    peers: Array.isArray(v.peers) ? [...(v.peers as string[])].sort() : v.peers,
    host: c && typeof c === "object" ? `${String(c.host)}:${String(c.port)}` : c,
  };
}

/**
 * `olds` are the stored outputs: after a refresh they hold what read found, so peers removed out
 * of band differ from the declared ones and an update puts them back.
 */
export function diffTvdNetwork(olds: Record<string, unknown>, news: Record<string, unknown>): TvdNetworkDiff {
  const o = comparable(olds);
  // A VXLAN of our name carrying another VNI cannot be fixed in place.
  if (typeof olds.vxlanId === "number" && olds.vxlanId !== o.vni) o.vni = olds.vxlanId;
  const d = classifyChanges(o, comparable(news), REPLACING, []);
  const repair = olds.bridgePresent === false || olds.vxlanPresent === false || olds.vxlanOnBridge === false;
  return { ...d, repair };
}

interface IpLink {
  ifname?: string;
  mtu?: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number } };
}

interface FdbEntry {
  mac?: string;
  dst?: string;
}

/** What a dom0's links (`ip -j -d link show`) and the VXLAN's fdb (`bridge -j fdb show`) hold. */
export interface NetworkObservation {
  readonly bridgePresent: boolean;
  readonly vxlanPresent: boolean;
  readonly vxlanOnBridge: boolean;
  readonly vxlanId?: number;
  readonly localIp?: string;
  readonly dstPort?: number;
  readonly mtu?: number;
  /** Head-end replication targets: the all-zero fdb entries' destinations. */
  readonly peers: string[];
  /** Interfaces on the bridge other than the VXLAN: guests' vifs. */
  readonly ports: string[];
}

export function observeNetwork(
  links: readonly unknown[],
  fdb: readonly unknown[],
  bridge: string,
  vxlan: string,
): NetworkObservation {
  const all = links as IpLink[];
  const br = all.find((l) => l.ifname === bridge && l.linkinfo?.info_kind === "bridge");
  const vx = all.find((l) => l.ifname === vxlan && l.linkinfo?.info_kind === "vxlan");
  const info = vx?.linkinfo?.info_data;
  return {
    bridgePresent: br !== undefined,
    vxlanPresent: vx !== undefined,
    vxlanOnBridge: vx !== undefined && vx.master === bridge,
    vxlanId: info?.id,
    localIp: info?.local,
    dstPort: info?.port,
    mtu: vx?.mtu ?? br?.mtu,
    peers: vx
      ? (fdb as FdbEntry[]).filter((e) => e.mac === "00:00:00:00:00:00" && e.dst).map((e) => e.dst!)
      : [],
    ports: br
      ? all
          .filter((l) => l.master === bridge && l.ifname !== vxlan)
          .map((l) => l.ifname!)
          .sort()
      : [],
  };
}

/**
 * The inputs the host's links stand for: what is there, in place of what was declared. Peers
 * keep the declared order, then any extra ones, so that an untouched network reads back equal.
 */
export function inputsSeen(v: TvdNetworkInputs, seen: NetworkObservation): TvdNetworkInputs {
  const declared = v.peers.filter((p) => seen.peers.includes(p));
  const extra = seen.peers.filter((p) => !v.peers.includes(p)).sort();
  return {
    ...v,
    vni: seen.vxlanId ?? v.vni,
    localIp: seen.localIp ?? v.localIp,
    dstPort: seen.dstPort ?? v.dstPort,
    mtu: seen.mtu ?? v.mtu,
    peers: [...declared, ...extra],
  };
}
