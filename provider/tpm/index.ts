/**
 * The dom0 side of member attestation, pure: TPM 1.2 and 2.0 public keys as a member's agent
 * reports them, and credential activation (agent/PROTOCOL.md). No I/O here: the resources that
 * talk to xenstore call these.
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
