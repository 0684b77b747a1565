import * as pulumi from "@pulumi/pulumi";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";
import type { VtpmIdentity } from "../vtpmIdentity/resource";
import { TvdResource } from "../tvdResource";
import type { PcrBaseline } from "./baseline";

export interface MemberAttestationArgs {
  /** The dom0 the member runs on. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /**
   * The member's certified vTPM identity: its guest, its TPM version and the AK whose quotes
   * alone count. The attestation is made after it.
   */
  readonly identity: VtpmIdentity;
  /**
   * What the member must prove: a bank and the PCR values, e.g. `pvGrubBaseline({ kernel, initrd,
   * cmdline })`, computed in the program from the files it declares.
   */
  readonly baseline: pulumi.Input<PcrBaseline>;
  /**
   * The member's port on its TVD network (its MemberPort's port and bridges): a failed attestation
   * puts it back on the holding bridge before the step fails, so the member reaches nobody.
   * @default - none: a failed attestation fails the step and moves no port
   */
  readonly port?: pulumi.Input<{
    readonly name: pulumi.Input<string>;
    readonly bridge: pulumi.Input<string>;
    readonly holdingBridge: pulumi.Input<string>;
  }>;
  /** How long to wait for the member's agent to quote. @default 60 */
  readonly readyTimeoutSec?: pulumi.Input<number>;
}

/**
 * A member admitted to its TVD by attestation: its vTPM quotes the baseline's PCRs over a fresh
 * nonce with the AK its VtpmIdentity certified; the provider verifies the quote and compares it
 * with the baseline. A member that booted anything else is not admitted: `attested` is false and
 * `refusal` names the PCR with both values (its MemberPort fails the `up` with it, and its TVD puts
 * its certificates on hold); with `port`, that member's port is put back on hold at once. Each refresh attests again: a PCR that left the baseline shows as drift
 * on `baseline`.
 */
export class MemberAttestation extends TvdResource {
  declare public readonly guest: pulumi.Output<string>;
  declare public readonly baseline: pulumi.Output<PcrBaseline>;
  /** True once the member proved the baseline. */
  declare public readonly attested: pulumi.Output<boolean>;
  /** The PCR values the last quote proved, by index, lowercase hex. */
  declare public readonly pcrs: pulumi.Output<Record<string, string>>;
  /** SHA-256 over the proved PCR values in ascending PCR order, lowercase hex. */
  declare public readonly pcrDigest: pulumi.Output<string>;
  /** When the quote was verified, ISO 8601 UTC. */
  declare public readonly attestedAt: pulumi.Output<string>;
  /** Why the member is not admitted (each PCR with both values); empty when it is. */
  declare public readonly refusal: pulumi.Output<string>;

  constructor(name: string, args: MemberAttestationArgs, opts?: pulumi.CustomResourceOptions) {
    const { identity, ...rest } = args;
    super(
      "MemberAttestation",
      name,
      { ...rest, guest: identity.guest, tpmVersion: identity.tpmVersion, akPublic: identity.akPublic },
      { outputs: ["guest", "baseline", "attested", "pcrs", "pcrDigest", "attestedAt", "refusal"] },
      opts,
    );
  }
}
