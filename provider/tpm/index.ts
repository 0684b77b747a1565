/**
 * The dom0 side of member attestation, pure: TPM 1.2 and 2.0 public keys as a member's agent
 * reports them, credential activation, and quotes (agent/PROTOCOL.md). No I/O here: the
 * resources that talk to xenstore call these.
 *
 * Quotes: `makeQuoteRequest` gives a request with a fresh 32-byte nonce; `verifyQuote` checks
 * the agent's answer with node's crypto against the AK activation certified (TPM 1.2
 * `TPM_Quote`: RSASSA-PKCS1-v1_5 SHA-1 over TPM_QUOTE_INFO "QUOT" || SHA-1(composite) ||
 * SHA-1(nonce); TPM 2.0 `TPM2_Quote`: the TPMT_SIGNATURE over TPMS_ATTEST, magic, type, extraData
 * = nonce, selection, pcrDigest over the values given) and returns the PCRs it proved, or throws
 * QuoteVerificationError naming the check that failed. `checkPcrBaseline` then compares them
 * with the baseline `replayPcrs(pvGrubMeasurements(...), bank)` and throws PcrBaselineError
 * naming each PCR that left it, with the expected and the found value.
 */
export { TpmCredentialError, TpmFormatError } from "./errors";
export { publicKeyFingerprint } from "./keys";
export {
  makeTpm12Credential,
  marshalTpm12PubKey,
  parseTpm12PubKey,
  tpm12PubKeyFromKeyBlob,
  type Tpm12Credential,
  type Tpm12PubKey,
  type Tpm12PublicKey,
} from "./tpm12";
export {
  decodeObjectAttributes,
  kdfa,
  makeTpm2Credential,
  marshalTpm2Public,
  parseTpm2Public,
  tpm2Name,
  unwrapTpm2bPublic,
  type Tpm2Credential,
  type Tpm2ObjectAttributes,
  type Tpm2Public,
  type Tpm2PublicKey,
} from "./tpm2";
export {
  AgentMessageError,
  checkResponse,
  makeChallenge,
  parseReport,
  type Challenge,
  type Tpm12Challenge,
  type Tpm2Challenge,
  type MemberReport,
  type ResponseCheck,
  type TpmPublicKey,
} from "./challenge";
export {
  extendPcr,
  grubLegacyRead,
  PCR_SIZE,
  PV_GRUB_CMDLINE_PCR,
  PV_GRUB_KERNEL_PCR,
  pvGrubMeasurements,
  replayPcrs,
  type BootMeasurementInput,
  type MeasurementEvent,
  type PcrBank,
} from "./pvgrub";
export {
  checkPcrBaseline,
  makeQuoteRequest,
  PcrBaselineError,
  QuoteVerificationError,
  verifyQuote,
  verifyTpm12Quote,
  verifyTpm2Quote,
  type PcrDeparture,
  type ProvedPcrs,
  type QuoteCheck,
  type QuoteRequest,
} from "./quote";
