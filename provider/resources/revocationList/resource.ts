import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import type { TvdAuthority } from "../tvdAuthority/resource";
import { CRL_SECRETS } from "./args";

export interface TvdRevocationListArgs {
  /** The TVD's CA: it signs the list. */
  readonly authority: TvdAuthority;
  /**
   * The X.509 serials of the certificates of the TVD's members now (each MemberIdentity's
   * `x509Serial`). A serial given before and not now is revoked.
   */
  readonly memberSerials: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Serials of certificates on hold: their members failed their attestation. Listed with reason
   * certificateHold while given; a later list without one lifts its hold.
   * @default []
   */
  readonly heldSerials?: pulumi.Input<pulumi.Input<string>[]>;
  /** How long members may rely on one list (its nextUpdate), days. @default 365 */
  readonly validityDays?: pulumi.Input<number>;
}

/**
 * The TVD's certificate revocation list: every member certificate its CA issued and no longer
 * stands behind (a member removed from the TVD, a certificate reissued by a rotation), as a CRL
 * signed by the CA that members check (`openssl verify -crl_check`, a TLS stack's CRL file); and
 * the certificates of members failing their attestation, on hold (certificateHold) until they
 * prove their baseline again.
 * Computed where Pulumi runs; the state is the list.
 */
export class TvdRevocationList extends TvdResource {
  /** The CRL, PEM. */
  declare public readonly crlPem: pulumi.Output<string>;
  declare public readonly crlNumber: pulumi.Output<number>;
  declare public readonly revokedSerials: pulumi.Output<string[]>;
  /** The serials on hold, with when each hold began. */
  declare public readonly held: pulumi.Output<Array<{ serial: string; heldAt: string }>>;

  constructor(name: string, args: TvdRevocationListArgs, opts?: pulumi.CustomResourceOptions) {
    const { authority, ...rest } = args;
    super(
      "TvdRevocationList",
      name,
      { ...rest, caCertPem: authority.caCertPem, caKeyPem: authority.caKeyPem },
      {
        secretInputs: [...CRL_SECRETS],
        outputs: ["crlPem", "crlNumber", "revokedSerials", "revoked", "seenSerials", "held"],
      },
      opts,
    );
  }
}
