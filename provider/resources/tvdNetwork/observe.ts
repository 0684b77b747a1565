/**
 * What a dom0's links say about a TvdNetwork, as the inputs they stand for. Pure. The bridge and
 * the VXLAN are made by the network: one missing, or the VXLAN off the bridge, is drift on the
 * input that places it (`bridge`, `vni`), remade in place. A VXLAN of our name set up otherwise
 * (another id, local address or port) reports those values, whose change replaces the network.
 * Peers and MTU report what the host has; `up` sets them back in place.
 */
import { driftMarker } from "../../core/define";
import type { TvdNetworkInputs } from "./args";

interface IpLink {
  ifname?: string;
  flags?: string[];
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
  readonly bridgeMtu?: number;
  readonly vxlanMtu?: number;
  /** Head-end replication targets: the all-zero fdb entries' destinations. */
  readonly peers: string[];
  /** The holding bridge, when one is declared: whether it exists, and whether it is up. */
  readonly hold?: { readonly present: boolean; readonly up: boolean };
}

export function observeNetwork(
  links: readonly unknown[],
  fdb: readonly unknown[],
  bridge: string,
  vxlan: string,
  holdingBridge?: string,
): NetworkObservation {
  const all = links as IpLink[];
  const hold = holdingBridge
    ? all.find((l) => l.ifname === holdingBridge && l.linkinfo?.info_kind === "bridge")
    : undefined;
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
    bridgeMtu: br?.mtu,
    vxlanMtu: vx?.mtu,
    peers: vx
      ? (fdb as FdbEntry[]).filter((e) => e.mac === "00:00:00:00:00:00" && e.dst).map((e) => e.dst!)
      : [],
    ...(holdingBridge
      ? { hold: { present: hold !== undefined, up: hold?.flags?.includes("UP") === true } }
      : {}),
  };
}

/**
 * The inputs the host's links stand for, where they differ from the declaration. Peers keep the
 * declared order, then any extra ones, so that an untouched network reads back equal. The MTU is
 * the devices' MTU; when the bridge's and the VXLAN's differ, it is drift on the declared one.
 */
export function inputsSeen(v: TvdNetworkInputs, seen: NetworkObservation): Partial<TvdNetworkInputs> {
  const out: Record<string, unknown> = {};
  if (!seen.bridgePresent) out.bridge = driftMarker(v.bridge, "missing");
  if (!seen.vxlanPresent) out.vni = driftMarker(v.vni, "missing", `no VXLAN vx${v.vni}`);
  else if (seen.vxlanId !== undefined && seen.vxlanId !== v.vni) out.vni = seen.vxlanId;
  else if (!seen.vxlanOnBridge) out.vni = driftMarker(v.vni, "changed", `vx${v.vni} is not on ${v.bridge}`);
  if (seen.localIp !== undefined) out.localIp = seen.localIp;
  if (seen.dstPort !== undefined) out.dstPort = seen.dstPort;
  const { bridgeMtu: br, vxlanMtu: vx } = seen;
  if (br !== undefined && vx !== undefined && br !== vx)
    out.mtu = driftMarker(v.mtu, "changed", `${v.bridge} has MTU ${br}, vx${v.vni} ${vx}`);
  else if ((br ?? vx) !== undefined) out.mtu = br ?? vx;
  if (v.holdingBridge && seen.hold && !seen.hold.present)
    out.holdingBridge = driftMarker(v.holdingBridge, "missing");
  else if (v.holdingBridge && seen.hold?.up)
    out.holdingBridge = driftMarker(
      v.holdingBridge,
      "changed",
      `${v.holdingBridge} is up: held ports could reach one another`,
    );
  if (seen.vxlanPresent) {
    const declared = v.peers.filter((p) => seen.peers.includes(p));
    const extra = seen.peers.filter((p) => !v.peers.includes(p)).sort();
    out.peers = [...declared, ...extra];
  }
  return out as Partial<TvdNetworkInputs>;
}
