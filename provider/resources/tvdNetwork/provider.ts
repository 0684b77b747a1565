/**
 * TvdNetwork, declared once: one TVD's bridge and VXLAN on one dom0, both recorded there as the
 * network's. A bridge or VXLAN of those names that is not its own is refused (an existing `br0`
 * is taken over only with adopt: true), and delete removes only what it owns. The bridge, the VNI
 * (the VXLAN's name and id), the local address and the UDP port are fixed when the VXLAN is made:
 * changing one replaces the network. Peers and MTU change in place. Guests' vifs on the bridge are
 * theirs, not the network's: they are not part of its state.
 */
import { defineResource, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import type { Artifact } from "../../core/ownership";
import { tvdNetworkSchema, vxlanOf, type TvdNetworkInputs } from "./args";
import { inputsSeen, observeNetwork } from "./observe";

const changes: ChangeClasses<TvdNetworkInputs> = {
  connection: "replace",
  bridge: "replace",
  vni: "replace",
  localIp: "replace",
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
  artifacts: (v) => [bridgeOf(v), vxlanLinkOf(v)],
  id: (v) => v.bridge,
  deleteBeforeReplace: true,

  async observe(ctx, v) {
    const { links, fdb } = await ctx.dom0!.readVxlanBridge(v.bridge, vxlanOf(v));
    return { gone: false, seen: inputsSeen(v, observeNetwork(links, fdb, v.bridge, vxlanOf(v))), extra: {} };
  },

  /** Both devices are claimed already: absent, or adopted. */
  async create(ctx, v) {
    await ctx.dom0!.ensureVxlanBridge(v);
  },

  /**
   * Peers, MTU, or drift: what is missing is remade, peers and MTU set, only on devices this
   * network owns (a bridge made by someone else since it went missing is refused).
   */
  async update(ctx, v) {
    await ctx.dom0!.claim(ctx.owner, [bridgeOf(v), vxlanLinkOf(v)], v.adopt);
    await ctx.dom0!.ensureVxlanBridge(v);
  },

  async delete(ctx, v) {
    await ctx.dom0!.deleteVxlanBridge(v.bridge, vxlanOf(v), {
      bridge: ctx.owns(bridgeOf(v)),
      vxlan: ctx.owns(vxlanLinkOf(v)),
    });
  },
};

export const tvdNetworkLifecycle = defineResource(definition);
