/**
 * The two ways the dom0 side of attestation fails before any TPM is asked: a blob that is not
 * the structure it claims to be, and a credential that cannot be made for the keys given.
 */

/** A TPM structure that does not parse: which structure, which field, at which byte offset. */
export class TpmFormatError extends Error {
  override readonly name = "TpmFormatError";
  constructor(
    readonly structure: string,
    readonly field: string,
    /** Byte offset of the field within the outermost blob being parsed. */
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`${structure}: ${field} at offset ${offset}: ${problem}`);
  }
}

/** The keys given cannot carry a credential (wrong kind of key, unsupported algorithm, size). */
export class TpmCredentialError extends Error {
  override readonly name = "TpmCredentialError";
}
