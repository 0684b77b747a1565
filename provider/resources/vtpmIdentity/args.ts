import { z } from "zod";
import { domainName } from "../../names";
import { connectionSchema } from "../../transport/connection";
import { pem } from "../memberIdentity/args";
import { validityDays } from "../tvdAuthority/args";

/**
 * VtpmIdentity inputs: which member's vTPM (the guest domain on the dom0 of `connection`), the CA
 * that certifies its EK and AK, and how long the certificates last. `rotation` exists only to be
 * changed: a new value reissues both certificates without asking the TPM anything.
 */
export const vtpmIdentitySchema = z.strictObject({
  connection: connectionSchema,
  /** The member's guest domain, whose agent speaks for its vTPM (agent/PROTOCOL.md). */
  guest: domainName,
  /** @default - the guest's name: the certificates' CN is "<memberName> EK" / "<memberName> AK" */
  memberName: domainName.optional(),
  caCertPem: pem(/CERTIFICATE/, "an X.509 certificate"),
  /** Secret; never stored in this resource's state. */
  caKeyPem: pem(/(RSA |EC )?PRIVATE KEY/, "a private key"),
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
  /**
   * How long to wait for the member's agent to report (it starts with the guest's boot).
   * @default - 180
   */
  readyTimeoutSec: z
    .number()
    .int("must be a whole number of seconds")
    .min(1, "must be at least 1 second")
    .max(3600, "must be at most 3600 seconds")
    .default(180),
  /**
   * Accept a vTPM that now presents another identity (it was wiped or reset: a new EK) and certify
   * the new one. Without it such a vTPM is drift that `up` refuses.
   * @default false
   */
  allowStateReset: z.boolean().default(false),
});

export type VtpmIdentityInputs = z.output<typeof vtpmIdentitySchema>;

/** Kept out of the state: the TVD's CA key lives in the TvdAuthority's state only. */
export const CA_SECRETS = ["caKeyPem"] as const;

/** The outputs beyond the inputs: the vTPM's keys as its agent reported them, and their certificates. */
export interface VtpmIdentityExtra {
  readonly tpmVersion: "1.2" | "2.0";
  /** The EK's public part as the TPM gives it (TPM 1.2 TPM_PUBKEY, TPM 2.0 TPMT_PUBLIC), base64. */
  readonly ekPublic: string;
  /** The AK's, the same way. */
  readonly akPublic: string;
  /** The SRK's, the same way: the storage root the agent made with the member's srkAuth. */
  readonly srkPublic: string;
  /** SHA-256 of the key's SubjectPublicKeyInfo (DER), lowercase hex. */
  readonly ekFingerprint: string;
  readonly akFingerprint: string;
  readonly srkFingerprint: string;
  /** TPM 2.0: the AK's Name (nameAlg ‖ digest), hex; TPM 1.2: SHA-1 of its TPM_PUBKEY. */
  readonly akName: string;
  readonly ekCertPem: string;
  /** Lowercase hex. */
  readonly ekCertSerial: string;
  readonly akCertPem: string;
  readonly akCertSerial: string;
}
