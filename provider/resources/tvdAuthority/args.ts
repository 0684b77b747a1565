import { z } from "zod";
import { domainName } from "../../names";

const VALIDITY = "must be a whole number of days from 1 to 36500 (100 years)";

/** How long a certificate is valid, in days, with the default a resource documents. */
export function validityDays(defaultDays: number) {
  return z.number().int(VALIDITY).min(1, VALIDITY).max(36500, VALIDITY).default(defaultDays);
}

/** TvdAuthority inputs: which TVD the CA anchors, and for how long. */
export const tvdAuthoritySchema = z.strictObject({
  /** Names the CA: `CN=<tvdName> TVD CA`, and the SSH CA key's comment. */
  tvdName: domainName,
  /** @default - 3650 (ten years) */
  validityDays: validityDays(3650),
});

export type TvdAuthorityInputs = z.output<typeof tvdAuthoritySchema>;

/** The outputs beyond the inputs: the CA, made once at create and kept in the state only. */
export interface TvdAuthorityExtra {
  readonly caCertPem: string;
  /** Secret. */
  readonly caKeyPem: string;
  /** Lowercase hex. */
  readonly caSerial: string;
  readonly sshCaPublicKey: string;
  /** Secret. */
  readonly sshCaPrivateKey: string;
  readonly sshCaFingerprint: string;
}
