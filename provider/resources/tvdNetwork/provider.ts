/**
 * TvdNetwork, declared once: one TVD's bridge and VXLAN on one dom0, both recorded there as the
 * network's. A bridge or VXLAN of those names that is not its own is refused (an existing `br0`
 * is taken over only with adopt: true), and delete removes only what it owns. The bridge, the VNI
 * (the VXLAN's name and id), the local address and the UDP port are fixed when the VXLAN is made:
 * changing one replaces the network. Peers and MTU change in place. Guests' vifs on the bridge are
 * theirs, not the network's: they are not part of its state. A holding bridge (holdingBridge), when
 * declared, is the network's too: made down and kept down, drift when missing or up.
 */
import { defineResource, unmarked, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import { artifactKey, type Artifact } from "../../core/ownership";
import { MemberPorts } from "../../dom0/memberPorts";
import { tvdNetworkSchema, vxlanOf, type TvdNetworkInputs } from "./args";
import { inputsSeen, observeNetwork } from "./observe";

const changes: ChangeClasses<TvdNetworkInputs> = {
  connection: "replace",
  bridge: "replace",
  vni: "replace",
  localIp: "replace",
  holdingBridge: "inPlace",
  peers: "inPlace",
  mtu: "inPlace",
  dstPort: "replace",
  adopt: "inPlace",
};

const bridgeOf = (v: TvdNetworkInputs): Artifact => ({
  type: "bridge",
  name: v.bridge,
  role: "TVD bridge",
  property: "bridge",
});

/** The holding bridge members' vifs come up on, until their MemberPort admits them. */
const holdOf = (name: string): Artifact => ({
  type: "bridge",
  name,
  role: "TVD holding bridge",
  property: "holdingBridge",
});

/** The network's own artifacts: its holding bridge too, when it has one. */
const artifactsOf = (v: TvdNetworkInputs): Artifact[] => [
  bridgeOf(v),
  vxlanLinkOf(v),
  ...(v.holdingBridge ? [holdOf(v.holdingBridge)] : []),
];

const vxlanLinkOf = (v: TvdNetworkInputs): Artifact => ({
  type: "link",
  name: vxlanOf(v),
  role: "TVD VXLAN",
  property: "vni",
});

export const definition: ResourceDefinition<TvdNetworkInputs, object> = {
  kind: "TvdNetwork",
  schema: tvdNetworkSchema,
  shape: tvdNetworkSchema.shape,
  changes,
  artifacts: artifactsOf,
  id: (v) => v.bridge,
  deleteBeforeReplace: true,

  async observe(ctx, v) {
    const { links, fdb } = await ctx.dom0!.readVxlanBridge(v.bridge, vxlanOf(v));
    const seen = observeNetwork(links, fdb, v.bridge, vxlanOf(v), v.holdingBridge);
    return { gone: false, seen: inputsSeen(v, seen), extra: {} };
  },

  /** Both devices are claimed already: absent, or adopted. */
  async create(ctx, v) {
    await ctx.dom0!.ensureVxlanBridge(v);
    if (v.holdingBridge) await (await portsOf(v)).ensureHold(v.holdingBridge, v.mtu);
  },

  /**
   * Peers, MTU, or drift: what is missing is remade, peers and MTU set, only on devices this
   * network owns (a bridge made by someone else since it went missing is refused).
   */
  async update(ctx, v) {
    await ctx.dom0!.claim(ctx.owner, artifactsOf(v), v.adopt);
    await ctx.dom0!.ensureVxlanBridge(v);
    const ports = await portsOf(v);
    if (v.holdingBridge) await ports.ensureHold(v.holdingBridge, v.mtu);
    // A holding bridge renamed or dropped goes once it holds no port (the framework then
    // releases its record).
    const old =
      typeof ctx.olds.holdingBridge === "string"
        ? (unmarked(ctx.olds.holdingBridge) ?? ctx.olds.holdingBridge)
        : undefined;
    if (old && old !== v.holdingBridge) {
      const records = await ctx.dom0!.owners([holdOf(old)]);
      if (records.get(artifactKey(holdOf(old)))?.owner === ctx.owner) await ports.deleteHold(old);
    }
  },

  async delete(ctx, v) {
    // The holding bridge first: while it holds a port, a guest is still there and nothing goes.
    if (v.holdingBridge && ctx.owns(holdOf(v.holdingBridge)))
      await (await portsOf(v)).deleteHold(v.holdingBridge);
    await ctx.dom0!.deleteVxlanBridge(v.bridge, vxlanOf(v), {
      bridge: ctx.owns(bridgeOf(v)),
      vxlan: ctx.owns(vxlanLinkOf(v)),
    });
  },
};

/** The same pooled SSH session as the network's Dom0. */
const portsOf = (v: TvdNetworkInputs) => MemberPorts.connect(v.connection);

export const tvdNetworkLifecycle = defineResource(definition);
