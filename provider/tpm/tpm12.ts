/**
 * TPM 1.2 (TPM Main Part 2, "Structures"): the public keys a member's agent reports and the
 * Privacy-CA half of TPM_ActivateIdentity. Field names follow Part 2.
 */
import {
  constants,
  createCipheriv,
  createHash,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { ByteReader, sized16, sized32, u16, u32 } from "./bytes";
import { TpmCredentialError } from "./errors";
import { rsaPublicKey } from "./keys";

export const TPM_ALG_RSA = 0x00000001;
export const TPM_ALG_AES128 = 0x00000006;
export const TPM_ES_NONE = 0x0001;
export const TPM_ES_RSAESOAEP_SHA1_MGF1 = 0x0003;
export const TPM_ES_SYM_CTR = 0x0004;
export const TPM_ES_SYM_OFB = 0x0005;
export const TPM_SS_NONE = 0x0001;
export const TPM_TAG_KEY12 = 0x0028;
/** TPM_STRUCT_VER of a TPM_KEY: major 1, minor 1, revMajor 0, revMinor 0. */
const TPM_KEY_VERSION = 0x01010000;

/** TPM_RSA_KEY_PARMS. */
export interface Tpm12RsaKeyParms {
  /** In bits. */
  readonly keyLength: number;
  readonly numPrimes: number;
  /** Empty means the default, 65537. */
  readonly exponent: Buffer;
}

/** TPM_KEY_PARMS of an RSA key (the only kind an EK, SRK or AIK can be). */
export interface Tpm12KeyParms {
  readonly algorithmID: typeof TPM_ALG_RSA;
  readonly encScheme: number;
  readonly sigScheme: number;
  readonly parms: Tpm12RsaKeyParms;
}

/** TPM_PUBKEY: TPM_KEY_PARMS, then TPM_STORE_PUBKEY (the modulus). */
export interface Tpm12PubKey {
  readonly algorithmParms: Tpm12KeyParms;
  readonly pubKey: Buffer;
}

export interface Tpm12PublicKey {
  readonly tpm: "1.2";
  /** The TPM_PUBKEY as reported. */
  readonly bytes: Buffer;
  readonly structure: Tpm12PubKey;
  readonly key: KeyObject;
  /** SHA-1 of the TPM_PUBKEY: TPM_ASYM_CA_CONTENTS.idDigest when the key is an AIK. */
  readonly digest: Buffer;
}

function readKeyParms(r: ByteReader): Tpm12KeyParms {
  const algAt = r.offset;
  const algorithmID = r.u32("algorithmParms.algorithmID");
  if (algorithmID !== TPM_ALG_RSA) {
    r.fail("algorithmParms.algorithmID", `0x${algorithmID.toString(16)} is not TPM_ALG_RSA`, algAt);
  }
  const encScheme = r.u16("algorithmParms.encScheme");
  const sigScheme = r.u16("algorithmParms.sigScheme");
  const sizeAt = r.offset;
  const parmSize = r.u32("algorithmParms.parmSize");
  if (parmSize > r.remaining) {
    r.fail("algorithmParms.parmSize", `${parmSize} exceeds the ${r.remaining} byte(s) left`, sizeAt);
  }
  const p = r.sub(r.structure, "algorithmParms.parms", parmSize);
  const keyLength = p.u32("algorithmParms.parms.keyLength");
  const numPrimes = p.u32("algorithmParms.parms.numPrimes");
  const exponent = p.sized32("algorithmParms.parms.exponent");
  p.end();
  return { algorithmID, encScheme, sigScheme, parms: { keyLength, numPrimes, exponent } };
}

/** TPM_STORE_PUBKEY, checked against the key length TPM_RSA_KEY_PARMS declared. */
function readStorePubKey(r: ByteReader, parms: Tpm12KeyParms): Buffer {
  const at = r.offset;
  const modulus = r.sized32("pubKey.key");
  if (modulus.length * 8 !== parms.parms.keyLength) {
    r.fail(
      "pubKey.keyLength",
      `${modulus.length} byte(s) of modulus, but algorithmParms.parms.keyLength says ${parms.parms.keyLength} bits`,
      at,
    );
  }
  return modulus;
}

function marshalKeyParms(p: Tpm12KeyParms): Buffer {
  const rsa = Buffer.concat([u32(p.parms.keyLength), u32(p.parms.numPrimes), sized32(p.parms.exponent)]);
  return Buffer.concat([u32(p.algorithmID), u16(p.encScheme), u16(p.sigScheme), sized32(rsa)]);
}

export function marshalTpm12PubKey(pub: Tpm12PubKey): Buffer {
  return Buffer.concat([marshalKeyParms(pub.algorithmParms), sized32(pub.pubKey)]);
}

/** Parses a TPM_PUBKEY (TPM_ReadPubek, TPM_OwnerReadInternalPub, an AIK's public part). */
export function parseTpm12PubKey(bytes: Buffer): Tpm12PublicKey {
  const r = new ByteReader("TPM_PUBKEY", bytes);
  const algorithmParms = readKeyParms(r);
  const keyAt = r.offset;
  const pubKey = readStorePubKey(r, algorithmParms);
  r.end();
  const key = rsaPublicKey(pubKey, algorithmParms.parms.exponent, {
    structure: "TPM_PUBKEY",
    field: "pubKey.key",
    offset: keyAt,
  });
  return {
    tpm: "1.2",
    bytes: Buffer.from(bytes),
    structure: { algorithmParms, pubKey },
    key,
    digest: createHash("sha1").update(bytes).digest(),
  };
}

/**
 * The TPM_PUBKEY of a TPM_KEY or TPM_KEY12 blob (what TPM_MakeIdentity returns for the AIK):
 * its algorithmParms and pubKey, as the TPM itself assembles them for the AIK's digest.
 */
export function tpm12PubKeyFromKeyBlob(blob: Buffer): Buffer {
  const isKey12 = blob.length >= 2 && blob.readUInt16BE(0) === TPM_TAG_KEY12;
  const r = new ByteReader(isKey12 ? "TPM_KEY12" : "TPM_KEY", blob);
  if (isKey12) {
    r.u16("tag");
    const fill = r.u16("fill");
    if (fill !== 0) r.fail("fill", `must be 0, is 0x${fill.toString(16)}`, 2);
  } else {
    const ver = r.u32("ver");
    if (ver !== TPM_KEY_VERSION) {
      r.fail(
        "ver",
        `0x${ver.toString(16).padStart(8, "0")} is neither TPM_KEY's 1.1.0.0 nor TPM_TAG_KEY12`,
        0,
      );
    }
  }
  r.u16("keyUsage");
  r.u32("keyFlags");
  r.u8("authDataUsage");
  const algorithmParms = readKeyParms(r);
  r.sized32("PCRInfo");
  const pubKey = readStorePubKey(r, algorithmParms);
  r.sized32("encData");
  r.end();
  return marshalTpm12PubKey({ algorithmParms, pubKey });
}

export type Tpm12SessionMode = "ctr" | "ofb";

const SESSION_SCHEMES: Record<Tpm12SessionMode, number> = { ctr: TPM_ES_SYM_CTR, ofb: TPM_ES_SYM_OFB };
const AES128_BYTES = 16;

export interface Tpm12Credential {
  /** EK-encrypted TPM_ASYM_CA_CONTENTS: the blob TPM_ActivateIdentity decrypts. */
  readonly asym: Buffer;
  /** TPM_SYM_CA_ATTESTATION: the secret under the session key. */
  readonly sym: Buffer;
}

/**
 * The Privacy CA's answer to an identity request, reduced to what proves the AIK is in the EK's
 * TPM: the TPM releases the session key only if idDigest is the digest of the AIK it holds.
 *
 * `sym` is laid out as go-tpm's `tpm.ActivateIdentity` reads it (unloadTrspiCred): credSize,
 * TPM_KEY_PARMS (AES-128, the mode, TPM_SYMMETRIC_KEY_PARMS with the IV), then the credential,
 * which is the IV followed by the ciphertext.
 */
export function makeTpm12Credential(args: {
  readonly ek: Tpm12PublicKey;
  readonly aik: Tpm12PublicKey;
  readonly secret: Buffer;
  /** @default "ctr" */
  readonly mode?: Tpm12SessionMode;
}): Tpm12Credential {
  const mode = args.mode ?? "ctr";
  if (args.secret.length === 0) throw new TpmCredentialError("the secret is empty");
  const sessionKey = randomBytes(AES128_BYTES);
  const iv = randomBytes(AES128_BYTES);

  // TPM_ASYM_CA_CONTENTS { TPM_SYMMETRIC_KEY sessionKey; TPM_DIGEST idDigest }
  const asymContents = Buffer.concat([
    u32(TPM_ALG_AES128),
    u16(SESSION_SCHEMES[mode]),
    sized16(sessionKey),
    args.aik.digest,
  ]);
  let asym: Buffer;
  try {
    asym = publicEncrypt(
      {
        key: args.ek.key,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha1",
        // TPM 1.2 OAEP always uses the 4-byte parameter "TCPA" (Part 1, 31.1.1).
        oaepLabel: Buffer.from("TCPA", "latin1"),
      },
      asymContents,
    );
  } catch (error) {
    throw new TpmCredentialError(`RSA-OAEP to the EK failed: ${(error as Error).message}`);
  }

  const cipher = createCipheriv(`aes-128-${mode}`, sessionKey, iv);
  const credential = Buffer.concat([iv, cipher.update(args.secret), cipher.final()]);
  // TPM_SYMMETRIC_KEY_PARMS: keyLength and blockSize in bits, then the IV.
  const symParms = Buffer.concat([u32(AES128_BYTES * 8), u32(AES128_BYTES * 8), sized32(iv)]);
  const sym = Buffer.concat([
    u32(credential.length),
    u32(TPM_ALG_AES128),
    u16(SESSION_SCHEMES[mode]),
    u16(TPM_SS_NONE),
    sized32(symParms),
    credential,
  ]);
  return { asym, sym };
}
