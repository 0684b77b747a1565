import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";

export interface TvdAuthorityArgs {
  /** The TVD this CA anchors; the CA certificate's subject is `CN=<tvdName> TVD CA, O=pulumi-tvd`. */
  readonly tvdName: pulumi.Input<string>;
  /**
   * How long the CA certificate is valid, in days. Changing it makes a new CA, and every member
   * identity is reissued under it.
   * @default 3650
   */
  readonly validityDays?: pulumi.Input<number>;
}

/**
 * The trust anchor of one TVD: an X.509 CA (RSA-2048, self-signed) and an OpenSSH CA key
 * (ed25519), made where Pulumi runs; no dom0 is contacted. The private keys are kept only in the
 * stack's state, as secrets. Changing `tvdName` or `validityDays` replaces the CA.
 */
export class TvdAuthority extends TvdResource {
  declare public readonly tvdName: pulumi.Output<string>;
  declare public readonly validityDays: pulumi.Output<number>;
  declare public readonly caCertPem: pulumi.Output<string>;
  /** Secret. */
  declare public readonly caKeyPem: pulumi.Output<string>;
  /** Lowercase hex. */
  declare public readonly caSerial: pulumi.Output<string>;
  /** One line, for `@cert-authority` in known_hosts and `TrustedUserCAKeys`. */
  declare public readonly sshCaPublicKey: pulumi.Output<string>;
  /** Secret. */
  declare public readonly sshCaPrivateKey: pulumi.Output<string>;
  declare public readonly sshCaFingerprint: pulumi.Output<string>;

  constructor(name: string, args: TvdAuthorityArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "TvdAuthority",
      name,
      args,
      {
        outputs: ["tvdName", "validityDays", "caCertPem", "caSerial", "sshCaPublicKey", "sshCaFingerprint"],
        secretOutputs: ["caKeyPem", "sshCaPrivateKey"],
      },
      opts,
    );
  }
}
