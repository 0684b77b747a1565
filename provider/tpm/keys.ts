/**
 * Public keys from their TPM parts, and the one fingerprint shown for a key whichever TPM
 * version it came from.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { stripLeadingZeros } from "./bytes";
import { TpmFormatError } from "./errors";

/** Both TPM versions write 0 (TPM 1.2: an empty exponent) for the default RSA exponent. */
const DEFAULT_RSA_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);

/** Where a key's numbers were read from, for the error if node refuses them. */
export interface KeySource {
  readonly structure: string;
  readonly field: string;
  readonly offset: number;
}

export function rsaPublicKey(modulus: Buffer, exponent: Buffer, source: KeySource): KeyObject {
  const e = stripLeadingZeros(exponent);
  const effectiveExponent = e.length === 0 || (e.length === 1 && e[0] === 0) ? DEFAULT_RSA_EXPONENT : e;
  const problem = (what: string): TpmFormatError =>
    new TpmFormatError(source.structure, source.field, source.offset, what);
  // Node takes any numbers as an RSA key; a TPM's keys are exactly their declared size, with an
  // odd exponent above 1, and anything else is not a key a TPM made.
  if (modulus.length === 0 || (modulus[0] & 0x80) === 0) {
    throw problem(`the modulus does not have its top bit set, so it is not ${modulus.length * 8} bits long`);
  }
  if (
    (effectiveExponent[effectiveExponent.length - 1] & 1) === 0 ||
    (effectiveExponent.length === 1 && effectiveExponent[0] === 1)
  ) {
    throw problem(`the exponent 0x${effectiveExponent.toString("hex")} is not an odd number above 1`);
  }
  try {
    return createPublicKey({
      key: {
        kty: "RSA",
        n: stripLeadingZeros(modulus).toString("base64url"),
        e: effectiveExponent.toString("base64url"),
      },
      format: "jwk",
    });
  } catch (error) {
    throw new TpmFormatError(
      source.structure,
      source.field,
      source.offset,
      `not a usable RSA public key (${(error as Error).message})`,
    );
  }
}

export type EccCurve = "P-256" | "P-384" | "P-521";

export const ECC_COORDINATE_BYTES: Record<EccCurve, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

export function eccPublicKey(curve: EccCurve, x: Buffer, y: Buffer, source: KeySource): KeyObject {
  const size = ECC_COORDINATE_BYTES[curve];
  // A TPM2B coordinate may come without its leading zero bytes; JWK wants the full field size.
  const pad = (c: Buffer): Buffer => Buffer.concat([Buffer.alloc(Math.max(0, size - c.length)), c]);
  try {
    return createPublicKey({
      key: { kty: "EC", crv: curve, x: pad(x).toString("base64url"), y: pad(y).toString("base64url") },
      format: "jwk",
    });
  } catch (error) {
    throw new TpmFormatError(
      source.structure,
      source.field,
      source.offset,
      `not a point on ${curve} (${(error as Error).message})`,
    );
  }
}

/**
 * SHA-256 of the key's SubjectPublicKeyInfo DER, lowercase hex: the same key gives the same
 * fingerprint whether a TPM 1.2 or a TPM 2.0 reported it, and `openssl pkey -pubin -outform DER
 * | sha256sum` reproduces it.
 */
export function publicKeyFingerprint(key: KeyObject): string {
  return createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest("hex");
}
