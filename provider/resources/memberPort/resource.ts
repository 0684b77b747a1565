import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";

export interface MemberPortArgs {
  /** How to reach the member's dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /** The member's vif backend interface in dom0: its Guest's vif `vifname`. */
  readonly port: pulumi.Input<string>;
  /** The member's domain (its Guest's name). */
  readonly domain: pulumi.Input<string>;
  /** The TVD bridge (the TvdNetwork's `bridge`). */
  readonly bridge: pulumi.Input<string>;
  /** The TVD's holding bridge (the TvdNetwork's `holdingBridge`), where the guest's vif comes up. */
  readonly holdingBridge: pulumi.Input<string>;
  /**
   * What the admission rests on: the member's attested PCR digest (MemberAttestation.pcrDigest),
   * required to admit it. Being an output of the attestation, it makes the port wait for it.
   */
  readonly admission?: pulumi.Input<string | undefined>;
  /**
   * When that attestation was made (MemberAttestation.attestedAt): each new one places the port
   * again, so a member held after a failed attestation rejoins once it proves its baseline.
   * @default - none
   */
  readonly attestedAt?: pulumi.Input<string>;
  /**
   * Whether the member is admitted now (MemberAttestation.attested): false puts the port back on
   * the holding bridge.
   * @default true
   */
  readonly admitted?: pulumi.Input<boolean>;
  /**
   * Why the member is not admitted (MemberAttestation.refusal): with admitted false, the port is
   * held and the step fails with it.
   * @default - none
   */
  readonly refusal?: pulumi.Input<string>;
  /**
   * The TVD's CRL (TvdRevocationList.crlPem): an admitted member holds it in its xenstore data
   * path (data/tvd/crl) and rejects the certificates it lists.
   * @default - none
   */
  readonly crlPem?: pulumi.Input<string>;
}

/**
 * A TVD member's admission to its TVD's network: its port (the guest's vif, which comes up on the
 * TVD's holding bridge, where it reaches nothing) moved onto the TVD bridge once the member's
 * attestation passed. A refresh reports a port back on hold (the guest restarted) as `admitted`
 * false, and `up` admits it again after the attestation re-ran; deleting it puts the port back on
 * hold. It moves only a port its own stack's Guest owns between the bridges its own stack's
 * TvdNetwork owns, and refuses anything else, naming what is there.
 */
export class MemberPort extends TvdResource {
  declare public readonly port: pulumi.Output<string>;
  declare public readonly bridge: pulumi.Output<string>;
  declare public readonly admitted: pulumi.Output<boolean>;
  /** The bridge the port was on when last read; null when it does not exist. */
  declare public readonly portBridge: pulumi.Output<string | null>;

  constructor(name: string, args: MemberPortArgs, opts?: pulumi.CustomResourceOptions) {
    super("MemberPort", name, args, { outputs: ["portBridge"] }, opts);
  }
}
