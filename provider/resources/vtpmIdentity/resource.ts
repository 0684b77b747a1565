import * as pulumi from "@pulumi/pulumi";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";
import { Guest } from "../guest/resource";
import type { TvdAuthority } from "../tvdAuthority/resource";
import { TvdResource } from "../tvdResource";
import { CA_SECRETS } from "./args";

export interface VtpmIdentityArgs {
  /** The dom0 the member runs on. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /**
   * The member: its Guest resource (the identity is then made after it starts) or its domain
   * name. Its seed must carry the agent (SeedImage `seed.agent`, from a MemberIdentity).
   */
  readonly guest: Guest | pulumi.Input<string>;
  /** The CA that certifies the member's EK and AK: its TVD's. */
  readonly authority: TvdAuthority;
  /** The certificates' CN is "<memberName> EK" and "<memberName> AK". @default - the guest's name */
  readonly memberName?: pulumi.Input<string>;
  /** Change to any other value to reissue both certificates (new serials, same keys, TPM untouched). @default "0" */
  readonly rotation?: pulumi.Input<string | number>;
  /** How long both certificates are valid, in days, at most as long as the CA. @default 365 */
  readonly validityDays?: pulumi.Input<number>;
  /** How long create waits for the member's agent to report (it starts as the guest boots). @default 180 */
  readonly readyTimeoutSec?: pulumi.Input<number>;
  /**
   * Accept a vTPM that presents a new identity (a new EK: wiped or reset) and certify it. Without
   * it, such a vTPM shows as drift on `guest` and `up` refuses. @default false
   */
  readonly allowStateReset?: pulumi.Input<boolean>;
}

/**
 * The identity of a member's vTPM, established by the system, not the member's user: the member's
 * agent takes ownership of its vTPM with the auth its MemberIdentity holds and makes an AK; this
 * resource proves by credential activation that the AK lives in the same TPM as the EK, and has
 * the TVD's CA issue an EK certificate and an AK certificate. Read asks the vTPM again: a new EK is
 * drift.
 */
export class VtpmIdentity extends TvdResource {
  declare public readonly guest: pulumi.Output<string>;
  declare public readonly tpmVersion: pulumi.Output<"1.2" | "2.0">;
  /** SHA-256 of the EK's SubjectPublicKeyInfo, hex. */
  declare public readonly ekFingerprint: pulumi.Output<string>;
  declare public readonly akFingerprint: pulumi.Output<string>;
  declare public readonly srkFingerprint: pulumi.Output<string>;
  /** The EK's and AK's public parts as the TPM gives them (TPM_PUBKEY or TPMT_PUBLIC), base64. */
  declare public readonly ekPublic: pulumi.Output<string>;
  declare public readonly akPublic: pulumi.Output<string>;
  declare public readonly srkPublic: pulumi.Output<string>;
  /** TPM 2.0: the AK's Name, hex; TPM 1.2: SHA-1 of its TPM_PUBKEY. */
  declare public readonly akName: pulumi.Output<string>;
  declare public readonly ekCertPem: pulumi.Output<string>;
  /** Lowercase hex. */
  declare public readonly ekCertSerial: pulumi.Output<string>;
  declare public readonly akCertPem: pulumi.Output<string>;
  /** Lowercase hex. */
  declare public readonly akCertSerial: pulumi.Output<string>;

  constructor(name: string, args: VtpmIdentityArgs, opts?: pulumi.CustomResourceOptions) {
    const { authority, ...rest } = args;
    // guest.name is an output of the Guest: the engine makes the identity once the guest runs.
    const guest = args.guest instanceof Guest ? args.guest.name : args.guest;
    super(
      "VtpmIdentity",
      name,
      { ...rest, guest, caCertPem: authority.caCertPem, caKeyPem: authority.caKeyPem },
      {
        secretInputs: CA_SECRETS,
        outputs: [
          "guest",
          "tpmVersion",
          "ekFingerprint",
          "akFingerprint",
          "srkFingerprint",
          "ekPublic",
          "akPublic",
          "srkPublic",
          "akName",
          "ekCertPem",
          "ekCertSerial",
          "akCertPem",
          "akCertSerial",
        ],
      },
      opts,
    );
  }
}
