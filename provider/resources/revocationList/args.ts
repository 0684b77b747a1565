import { z } from "zod";
import { pem } from "../memberIdentity/args";
import { validityDays } from "../tvdAuthority/args";

/** The secret input, never kept in state: the CA's key signs each new list. */
export const CRL_SECRETS = ["caKeyPem"] as const;

const serial = z
  .string()
  .regex(
    /^(?:[0-9a-f]{2}){1,20}$/,
    "must be a certificate serial in lowercase hex (MemberIdentity.x509Serial)",
  );

/**
 * TvdRevocationList inputs: the TVD's CA and the serials of the member certificates it stands
 * behind now. Every serial it was given before and is not given now is revoked.
 */
export const revocationListSchema = z.strictObject({
  caCertPem: pem(/CERTIFICATE/, "an X.509 certificate"),
  /** Secret. */
  caKeyPem: pem(/(RSA |EC )?PRIVATE KEY/, "a private key"),
  /** The serials of the current members' certificates (MemberIdentity.x509Serial, ...). */
  memberSerials: z.array(serial),
  /**
   * Serials of members' certificates on hold: their members failed their attestation. Listed with
   * reason certificateHold while given; a later list without one lifts its hold.
   * @default []
   */
  heldSerials: z.array(serial).default([]),
  /**
   * How long members may rely on a list: its nextUpdate. Every change of the members issues a new
   * one; a list past its nextUpdate fails every check, so keep it at least as long as the time
   * between two `up`s.
   * @default 365
   */
  validityDays: validityDays(365),
});

export type RevocationListInputs = z.output<typeof revocationListSchema>;

export interface RevocationListExtra {
  /** The CRL, PEM, signed by the TVD's CA. */
  readonly crlPem: string;
  /** Its number: one more for each new list. */
  readonly crlNumber: number;
  /** Every serial revoked, sorted. */
  readonly revokedSerials: string[];
  /** When each was revoked. */
  readonly revoked: Array<{ serial: string; revokedAt: string }>;
  /** Every serial it was ever given: the ones no longer given are revoked. */
  readonly seenSerials: string[];
  /** The serials on hold, sorted, with when each hold began. */
  readonly held: Array<{ serial: string; heldAt: string }>;
}
