import { z } from "zod";
import { domainName } from "../../names";
import { validityDays } from "../tvdAuthority/args";

/** A DNS host name: dot-separated labels of letters, digits and inner hyphens, no wildcard. */
const dnsName = z
  .string()
  .max(253, "must be at most 253 characters")
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    "must be a DNS name such as web1.tvd.example: labels of letters, digits and inner '-', joined by '.'",
  );

const ipv4 = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
    "must be an IPv4 address without prefix length, such as 10.50.0.11",
  );

/** A PEM block of `label`, the content not a path: what a TvdAuthority's outputs hold. */
export function pem(label: RegExp, what: string) {
  return z
    .string()
    .regex(
      new RegExp(`^\\s*-----BEGIN ${label.source}-----\\r?\\n[\\s\\S]+-----END ${label.source}-----\\s*$`),
      {
        message: `must be ${what} in PEM (pass a TvdAuthority's outputs)`,
      },
    );
}

/**
 * MemberIdentity inputs: who the member is, the names it is reached by, and the CA material of
 * its TVD (from a TvdAuthority). `rotation` exists only to be changed: a new value reissues both
 * certificates.
 */
export const memberIdentitySchema = z.strictObject({
  /** The member's name: the certificates' CN and the SSH certificate's key ID. */
  memberName: domainName,
  /** The SANs of the X.509 certificate and principals of the SSH host certificate. */
  hostnames: z.array(dnsName).min(1, "must hold at least one DNS name the member is reached by"),
  /** @default - [] */
  ipAddresses: z.array(ipv4).default([]),
  caCertPem: pem(/CERTIFICATE/, "an X.509 certificate"),
  /** Secret. */
  caKeyPem: pem(/(RSA |EC )?PRIVATE KEY/, "a private key"),
  /** Secret. */
  sshCaPrivateKey: pem(/OPENSSH PRIVATE KEY/, "an OpenSSH private key"),
  sshCaPublicKey: z
    .string()
    .regex(
      /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( [^\n]*)?\n?$/,
      "must be one OpenSSH public key line such as 'ssh-ed25519 AAAA... comment'",
    ),
  /**
   * Compared as a string: 1 and "1" are the same rotation.
   * @default - "0"
   */
  rotation: z
    .union([z.string().max(256, "must be at most 256 characters"), z.number()])
    .transform((r) => String(r))
    .default("0"),
  /** @default - 365 */
  validityDays: validityDays(365),
});

export type MemberIdentityInputs = z.output<typeof memberIdentitySchema>;

/** Kept out of the member's state: the TVD's CA keys live in the TvdAuthority's state only. */
export const CA_SECRETS = ["caKeyPem", "sshCaPrivateKey"] as const;

/** The outputs beyond the inputs. */
export interface MemberIdentityExtra {
  /** Secret. Made once at create and kept: the host key is the member's identity. */
  readonly sshHostPrivateKey: string;
  readonly sshHostPublicKey: string;
  readonly sshHostKeyFingerprint: string;
  readonly sshHostCertificate: string;
  /** Decimal: OpenSSH serials are 64-bit, beyond what a JavaScript number holds. */
  readonly sshCertSerial: string;
  readonly x509CertPem: string;
  /** Secret. */
  readonly x509KeyPem: string;
  /** Lowercase hex. */
  readonly x509Serial: string;
  /** Secret. The owner auth of the member's vTPM, 64 hex digits: made at create and kept. */
  readonly tpmOwnerAuth: string;
  /** Secret. The SRK auth of the member's vTPM, 64 hex digits: made at create and kept. */
  readonly tpmSrkAuth: string;
}

/** The SSH host certificate's principals: every name and address clients may use. */
export function principalsOf(v: Pick<MemberIdentityInputs, "hostnames" | "ipAddresses">): string[] {
  return [...v.hostnames, ...v.ipAddresses];
}

/** Splits a certificate's principals back into host names and IPv4 addresses. */
export function namesOfPrincipals(principals: readonly string[]): {
  hostnames: string[];
  ipAddresses: string[];
} {
  const isIp = (p: string) => ipv4.safeParse(p).success;
  return { hostnames: principals.filter((p) => !isIp(p)), ipAddresses: principals.filter(isIp) };
}
