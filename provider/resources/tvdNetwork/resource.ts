import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";

export interface TvdNetworkArgs {
  /** How to reach the dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /**
   * The TVD's bridge on this dom0, which its guests' vifs join: a Linux interface name of at most
   * 15 characters, e.g. "tvd-red". A bridge of that name that pulumi-tvd did not make for this
   * network is refused (unless `adopt`).
   */
  readonly bridge: pulumi.Input<string>;
  /** The TVD's VXLAN network identifier (1 to 16777215), the same on every host it spans, and unique per TVD. */
  readonly vni: pulumi.Input<number>;
  /**
   * A holding bridge on this dom0 for the TVD's members, e.g. "tvh-red": their vifs are declared
   * on it and come up there at every start; it is kept down, so a held port reaches nothing, and
   * a MemberPort moves an attested member's port onto the TVD bridge.
   * @default - none: guests join the TVD bridge directly
   */
  readonly holdingBridge?: pulumi.Input<string>;
  /** This dom0's address on the underlay between hosts; the VXLAN's packets leave from it. */
  readonly localIp: pulumi.Input<string>;
  /** The underlay addresses of the TVD's other hosts. @default [] (a TVD on one host) */
  readonly peers?: pulumi.Input<pulumi.Input<string>[]>;
  /** The bridge's and VXLAN's MTU. @default 1450 (a 1500-byte underlay less VXLAN's 50 bytes) */
  readonly mtu?: pulumi.Input<number>;
  /** The VXLAN's UDP port. @default 4789 */
  readonly dstPort?: pulumi.Input<number>;
  /**
   * Take over a bridge (such as an existing `br0`) or VXLAN of these names that pulumi-tvd did not
   * make: its MTU and peers are set as declared, and deleting the network removes it. One that
   * another resource owns is refused whatever this says.
   * @default false
   */
  readonly adopt?: pulumi.Input<boolean>;
}

/**
 * One Trusted Virtual Domain's network on one dom0: a bridge for the TVD's guests, linked to the
 * TVD's other hosts (and only to them) by a VXLAN `vx<vni>` that replicates to every peer. Two
 * TVDs on the same hosts share neither bridge nor VNI, so neither sees the other's traffic.
 * Both devices are recorded on the dom0 as this network's: one that exists and is not its own is
 * refused, and delete removes only its own. A bridge or VXLAN missing on the host shows as drift
 * on `bridge` or `vni`, peers and MTU changed out of band on `peers` and `mtu`; `up` puts them
 * back in place. Deleting it is refused while guests' vifs are still on the bridge.
 */
export class TvdNetwork extends TvdResource {
  declare public readonly bridge: pulumi.Output<string>;
  declare public readonly holdingBridge: pulumi.Output<string | undefined>;
  declare public readonly vni: pulumi.Output<number>;
  declare public readonly localIp: pulumi.Output<string>;
  declare public readonly peers: pulumi.Output<string[]>;
  declare public readonly mtu: pulumi.Output<number>;
  declare public readonly dstPort: pulumi.Output<number>;

  constructor(name: string, args: TvdNetworkArgs, opts?: pulumi.CustomResourceOptions) {
    super("TvdNetwork", name, args, { outputs: [] }, opts);
  }
}
