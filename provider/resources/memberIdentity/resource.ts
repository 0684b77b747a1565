import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import { CA_SECRETS } from "./args";
import type { TvdAuthority } from "../tvdAuthority/resource";

export interface MemberIdentityArgs {
  /** The CA of the member's TVD; a new CA reissues the member's certificates under it. */
  readonly authority: TvdAuthority;
  /** The member's name: the X.509 CN and the SSH certificate's key ID. Changing it replaces the identity. */
  readonly memberName: pulumi.Input<string>;
  /** DNS names the member is reached by: X.509 SANs and SSH principals. At least one. */
  readonly hostnames: pulumi.Input<pulumi.Input<string>[]>;
  /** IPv4 addresses the member is reached by, also SANs and principals. @default [] */
  readonly ipAddresses?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Change to any other value to reissue both certificates (new serials, same SSH host key).
   * @default "0"
   */
  readonly rotation?: pulumi.Input<string | number>;
  /** How long both certificates are valid, in days, at most as long as the CA. @default 365 */
  readonly validityDays?: pulumi.Input<number>;
}

/**
 * The identity of one TVD member, made where Pulumi runs: an ed25519 SSH host key with a host
 * certificate signed by the TVD's SSH CA, and an X.509 server/client certificate signed by the
 * TVD's CA. The host key is made once and kept; every change but `memberName` reissues the
 * certificates for it.
 */
export class MemberIdentity extends TvdResource {
  declare public readonly memberName: pulumi.Output<string>;
  declare public readonly hostnames: pulumi.Output<string[]>;
  declare public readonly ipAddresses: pulumi.Output<string[]>;
  /** Secret. For /etc/ssh/ssh_host_ed25519_key. */
  declare public readonly sshHostPrivateKey: pulumi.Output<string>;
  declare public readonly sshHostPublicKey: pulumi.Output<string>;
  declare public readonly sshHostKeyFingerprint: pulumi.Output<string>;
  /** One line, for /etc/ssh/ssh_host_ed25519_key-cert.pub (sshd's HostCertificate). */
  declare public readonly sshHostCertificate: pulumi.Output<string>;
  /** Decimal. */
  declare public readonly sshCertSerial: pulumi.Output<string>;
  declare public readonly x509CertPem: pulumi.Output<string>;
  /** Secret. */
  declare public readonly x509KeyPem: pulumi.Output<string>;
  /** Lowercase hex. */
  declare public readonly x509Serial: pulumi.Output<string>;
  /** Secret. The owner auth the member's agent takes its vTPM with (seed.agent.ownerAuth). */
  declare public readonly tpmOwnerAuth: pulumi.Output<string>;
  /** Secret. The SRK auth the member's agent initialises its vTPM's SRK with (seed.agent.srkAuth). */
  declare public readonly tpmSrkAuth: pulumi.Output<string>;

  constructor(name: string, args: MemberIdentityArgs, opts?: pulumi.CustomResourceOptions) {
    const { authority, ...rest } = args;
    super(
      "MemberIdentity",
      name,
      {
        ...rest,
        caCertPem: authority.caCertPem,
        caKeyPem: authority.caKeyPem,
        sshCaPrivateKey: authority.sshCaPrivateKey,
        sshCaPublicKey: authority.sshCaPublicKey,
      },
      {
        secretInputs: CA_SECRETS,
        outputs: [
          "sshHostPublicKey",
          "sshHostKeyFingerprint",
          "sshHostCertificate",
          "sshCertSerial",
          "x509CertPem",
          "x509Serial",
        ],
        secretOutputs: ["sshHostPrivateKey", "x509KeyPem", "tpmOwnerAuth", "tpmSrkAuth"],
      },
      opts,
    );
  }
}
