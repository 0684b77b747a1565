/**
 * TPM 2.0 (TPM 2.0 Library, Part 2 "Structures"): TPMT_PUBLIC of RSA and ECC keys, their Names,
 * and the verifier's half of credential protection (Part 1, §24: TPM2_MakeCredential as a
 * Privacy CA or registrar runs it in software, the way `tpm2_makecredential -T none` does).
 */
import {
  constants,
  createCipheriv,
  createHash,
  createHmac,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { ByteReader, sized16, u16, u32 } from "./bytes";
import { TpmCredentialError } from "./errors";
import { eccPublicKey, rsaPublicKey, type EccCurve } from "./keys";

export const TPM2_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** The TPM 2.0 hash algorithms provider/tpm handles: node's name and the digest size. */
export const HASHES: ReadonlyMap<number, { readonly node: string; readonly size: number }> = new Map([
  [TPM2_ALG.SHA1, { node: "sha1", size: 20 }],
  [TPM2_ALG.SHA256, { node: "sha256", size: 32 }],
  [TPM2_ALG.SHA384, { node: "sha384", size: 48 }],
  [TPM2_ALG.SHA512, { node: "sha512", size: 64 }],
]);

export const CURVES: ReadonlyMap<number, EccCurve> = new Map([
  [0x0003, "P-256"],
  [0x0004, "P-384"],
  [0x0005, "P-521"],
]);

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

export type Tpm2ObjectAttributes = Record<keyof typeof TPMA_OBJECT, boolean>;

export function decodeObjectAttributes(bits: number): Tpm2ObjectAttributes {
  const out = {} as Record<keyof typeof TPMA_OBJECT, boolean>;
  for (const [name, bit] of Object.entries(TPMA_OBJECT)) {
    out[name as keyof typeof TPMA_OBJECT] = (bits & bit) !== 0;
  }
  return out;
}

/** TPMT_SYM_DEF_OBJECT: absent fields when the algorithm is TPM_ALG_NULL. */
export interface Tpm2SymDefObject {
  readonly algorithm: number;
  readonly keyBits?: number;
  readonly mode?: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME: a scheme and what its union carries. */
export interface Tpm2Scheme {
  readonly scheme: number;
  readonly hashAlg?: number;
  /** TPMS_SCHEME_ECDAA only. */
  readonly count?: number;
}

export interface Tpm2RsaPublic {
  readonly type: typeof TPM2_ALG.RSA;
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: Tpm2SymDefObject;
  readonly scheme: Tpm2Scheme;
  readonly keyBits: number;
  /** 0 means 65537. */
  readonly exponent: number;
  readonly modulus: Buffer;
}

export interface Tpm2EccPublic {
  readonly type: typeof TPM2_ALG.ECC;
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: Tpm2SymDefObject;
  readonly scheme: Tpm2Scheme;
  readonly curveID: number;
  readonly kdf: Tpm2Scheme;
  readonly x: Buffer;
  readonly y: Buffer;
}

/** TPMT_PUBLIC of the key types a TPM reports as an EK, SRK or AK. */
export type Tpm2Public = Tpm2RsaPublic | Tpm2EccPublic;

export interface Tpm2PublicKey {
  readonly tpm: "2.0";
  /** The TPMT_PUBLIC as reported. */
  readonly bytes: Buffer;
  readonly structure: Tpm2Public;
  readonly attributes: Tpm2ObjectAttributes;
  /** nameAlg || H_nameAlg(TPMT_PUBLIC): what TPM2_MakeCredential binds the credential to. */
  readonly name: Buffer;
  readonly key: KeyObject;
}

/** Largest TPM2B_PUBLIC_KEY_RSA (MAX_RSA_KEY_BYTES for 4096-bit keys) and ECC coordinate. */
const MAX_RSA_KEY_BYTES = 512;
const MAX_ECC_KEY_BYTES = 66;

function readHashAlg(r: ByteReader, field: string): number {
  const at = r.offset;
  const alg = r.u16(field);
  if (!HASHES.has(alg)) r.fail(field, `0x${alg.toString(16).padStart(4, "0")} is not a supported hash`, at);
  return alg;
}

function readSymDefObject(r: ByteReader, field: string): Tpm2SymDefObject {
  const algorithm = r.u16(`${field}.algorithm`);
  if (algorithm === TPM2_ALG.NULL) return { algorithm };
  return { algorithm, keyBits: r.u16(`${field}.keyBits`), mode: r.u16(`${field}.mode`) };
}

/** The scheme unions of RSA, ECC and KDF schemes: every non-null member is a hash (ECDAA adds a count). */
function readScheme(r: ByteReader, field: string): Tpm2Scheme {
  const scheme = r.u16(`${field}.scheme`);
  // TPMS_ENC_SCHEME_RSAES is TPMS_EMPTY: nothing follows.
  if (scheme === TPM2_ALG.NULL || scheme === TPM2_ALG.RSAES) return { scheme };
  const hashAlg = readHashAlg(r, `${field}.details.hashAlg`);
  if (scheme === TPM2_ALG.ECDAA) return { scheme, hashAlg, count: r.u16(`${field}.details.count`) };
  return { scheme, hashAlg };
}

function readTpmtPublic(r: ByteReader): Tpm2Public {
  const typeAt = r.offset;
  const type = r.u16("type");
  const nameAlg = readHashAlg(r, "nameAlg");
  const objectAttributes = r.u32("objectAttributes");
  const authPolicy = r.sized16("authPolicy", 64);
  if (type === TPM2_ALG.RSA) {
    const symmetric = readSymDefObject(r, "parameters.rsaDetail.symmetric");
    const scheme = readScheme(r, "parameters.rsaDetail.scheme");
    const keyBits = r.u16("parameters.rsaDetail.keyBits");
    const exponent = r.u32("parameters.rsaDetail.exponent");
    const modulusAt = r.offset;
    const modulus = r.sized16("unique.rsa", MAX_RSA_KEY_BYTES);
    if (modulus.length * 8 !== keyBits) {
      r.fail("unique.rsa", `${modulus.length} byte(s) of modulus, but keyBits says ${keyBits}`, modulusAt);
    }
    return { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, keyBits, exponent, modulus };
  }
  if (type === TPM2_ALG.ECC) {
    const symmetric = readSymDefObject(r, "parameters.eccDetail.symmetric");
    const scheme = readScheme(r, "parameters.eccDetail.scheme");
    const curveAt = r.offset;
    const curveID = r.u16("parameters.eccDetail.curveID");
    if (!CURVES.has(curveID)) {
      r.fail(
        "parameters.eccDetail.curveID",
        `0x${curveID.toString(16).padStart(4, "0")} is not a NIST curve`,
        curveAt,
      );
    }
    const kdf = readScheme(r, "parameters.eccDetail.kdf");
    const x = r.sized16("unique.ecc.x", MAX_ECC_KEY_BYTES);
    const y = r.sized16("unique.ecc.y", MAX_ECC_KEY_BYTES);
    return { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveID, kdf, x, y };
  }
  return r.fail(
    "type",
    `0x${type.toString(16).padStart(4, "0")} is neither TPM_ALG_RSA nor TPM_ALG_ECC`,
    typeAt,
  );
}

function marshalSymDefObject(s: Tpm2SymDefObject): Buffer {
  if (s.algorithm === TPM2_ALG.NULL) return u16(s.algorithm);
  return Buffer.concat([u16(s.algorithm), u16(s.keyBits ?? 0), u16(s.mode ?? 0)]);
}

function marshalScheme(s: Tpm2Scheme): Buffer {
  const parts = [u16(s.scheme)];
  if (s.hashAlg !== undefined) parts.push(u16(s.hashAlg));
  if (s.count !== undefined) parts.push(u16(s.count));
  return Buffer.concat(parts);
}

export function marshalTpm2Public(p: Tpm2Public): Buffer {
  const head = [u16(p.type), u16(p.nameAlg), u32(p.objectAttributes), sized16(p.authPolicy)];
  if (p.type === TPM2_ALG.RSA) {
    return Buffer.concat([
      ...head,
      marshalSymDefObject(p.symmetric),
      marshalScheme(p.scheme),
      u16(p.keyBits),
      u32(p.exponent),
      sized16(p.modulus),
    ]);
  }
  return Buffer.concat([
    ...head,
    marshalSymDefObject(p.symmetric),
    marshalScheme(p.scheme),
    u16(p.curveID),
    marshalScheme(p.kdf),
    sized16(p.x),
    sized16(p.y),
  ]);
}

/** nameAlg || H_nameAlg(TPMT_PUBLIC bytes) (Part 1, 16 "Names"). */
export function tpm2Name(nameAlg: number, tpmtPublic: Buffer): Buffer {
  const hash = HASHES.get(nameAlg);
  if (hash === undefined)
    throw new TpmCredentialError(`nameAlg 0x${nameAlg.toString(16)} is not a supported hash`);
  return Buffer.concat([u16(nameAlg), createHash(hash.node).update(tpmtPublic).digest()]);
}

/** Parses a TPMT_PUBLIC (what the agent reports: a TPM2B_PUBLIC's contents, without the size). */
export function parseTpm2Public(bytes: Buffer): Tpm2PublicKey {
  const r = new ByteReader("TPMT_PUBLIC", bytes);
  const structure = readTpmtPublic(r);
  r.end();
  const key =
    structure.type === TPM2_ALG.RSA
      ? rsaPublicKey(structure.modulus, u32(structure.exponent), {
          structure: "TPMT_PUBLIC",
          field: "unique.rsa",
          offset: bytes.length - structure.modulus.length - 2,
        })
      : eccPublicKey(CURVES.get(structure.curveID) as EccCurve, structure.x, structure.y, {
          structure: "TPMT_PUBLIC",
          field: "unique.ecc",
          offset: bytes.length - structure.x.length - structure.y.length - 4,
        });
  return {
    tpm: "2.0",
    bytes: Buffer.from(bytes),
    structure,
    attributes: decodeObjectAttributes(structure.objectAttributes),
    name: tpm2Name(structure.nameAlg, bytes),
    key,
  };
}

/** The TPMT_PUBLIC inside a TPM2B_PUBLIC (what tpm2-tools writes with `-u`). */
export function unwrapTpm2bPublic(bytes: Buffer): Buffer {
  const r = new ByteReader("TPM2B_PUBLIC", bytes);
  const inner = r.sized16("publicArea");
  r.end();
  return inner;
}

/**
 * KDFa (Part 1, 11.4.10.2): SP800-108 counter-mode KDF with HMAC. Label gets its terminating
 * zero octet if it lacks one; contextU and contextV are concatenated.
 */
export function kdfa(
  hashAlg: number,
  key: Buffer,
  label: string,
  contextU: Buffer,
  contextV: Buffer,
  bits: number,
): Buffer {
  const hash = HASHES.get(hashAlg);
  if (hash === undefined)
    throw new TpmCredentialError(`KDFa hash 0x${hashAlg.toString(16)} is not supported`);
  const labelBytes = Buffer.from(label.endsWith("\0") ? label : `${label}\0`, "latin1");
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  for (let counter = 1, produced = 0; produced < bytes; counter++) {
    const block = createHmac(hash.node, key)
      .update(u32(counter))
      .update(labelBytes)
      .update(contextU)
      .update(contextV)
      .update(u32(bits))
      .digest();
    blocks.push(block);
    produced += block.length;
  }
  const out = Buffer.concat(blocks).subarray(0, bytes);
  // Bits not a multiple of 8: the spec keeps the low-order bits of the first octet.
  if (bits % 8 !== 0) out[0] &= (1 << (bits % 8)) - 1;
  return out;
}

export interface Tpm2Credential {
  /** TPM2B_ID_OBJECT contents: TPM2B_DIGEST integrityHMAC || encIdentity. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents: the seed, RSA-OAEP encrypted to the EK. */
  readonly encryptedSecret: Buffer;
}

/** What an EK must be for TPM2_ActivateCredential to take it as the credential's protector. */
function checkProtector(ek: Tpm2PublicKey): { keyBytes: number; hash: { node: string; size: number } } {
  const p = ek.structure;
  if (p.type !== TPM2_ALG.RSA) {
    throw new TpmCredentialError("the EK is not an RSA key (ECC EKs are not supported for credentials yet)");
  }
  if (!ek.attributes.restricted || !ek.attributes.decrypt || ek.attributes.sign) {
    throw new TpmCredentialError(
      "the EK is not a restricted decryption key, so no TPM would activate with it",
    );
  }
  if (p.symmetric.algorithm !== TPM2_ALG.AES || ![128, 192, 256].includes(p.symmetric.keyBits ?? 0)) {
    throw new TpmCredentialError(
      `the EK's symmetric algorithm (0x${p.symmetric.algorithm.toString(16)}, ${p.symmetric.keyBits ?? 0} bits) is not AES`,
    );
  }
  return {
    keyBytes: (p.symmetric.keyBits as number) / 8,
    hash: HASHES.get(p.nameAlg) as { node: string; size: number },
  };
}

/**
 * TPM2_MakeCredential(EK, name of the AK, secret) in software:
 * seed (nameAlg digest size) → RSA-OAEP(EK, hash nameAlg, label "IDENTITY\0");
 * symKey = KDFa(nameAlg, seed, "STORAGE", akName, "", EK's symmetric keyBits);
 * encIdentity = AES-CFB(symKey, IV 0, TPM2B_DIGEST(secret));
 * hmacKey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits);
 * integrityHMAC = HMAC(nameAlg, hmacKey, encIdentity || akName).
 */
export function makeTpm2Credential(args: {
  readonly ek: Tpm2PublicKey;
  readonly akName: Buffer;
  readonly secret: Buffer;
}): Tpm2Credential {
  const { keyBytes, hash } = checkProtector(args.ek);
  // TPM2B_DIGEST holds at most the TPM's largest digest; nameAlg's size is one every TPM that
  // made this EK supports.
  if (args.secret.length === 0 || args.secret.length > hash.size) {
    throw new TpmCredentialError(`the secret must be 1 to ${hash.size} bytes, not ${args.secret.length}`);
  }
  const seed = randomBytes(hash.size);
  let encryptedSecret: Buffer;
  try {
    encryptedSecret = publicEncrypt(
      {
        key: args.ek.key,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: hash.node,
        oaepLabel: Buffer.from("IDENTITY\0", "latin1"),
      },
      seed,
    );
  } catch (error) {
    throw new TpmCredentialError(`RSA-OAEP to the EK failed: ${(error as Error).message}`);
  }
  const nameAlg = args.ek.structure.nameAlg;
  const empty = Buffer.alloc(0);
  const symKey = kdfa(nameAlg, seed, "STORAGE", args.akName, empty, keyBytes * 8);
  const cipher = createCipheriv(`aes-${keyBytes * 8}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(sized16(args.secret)), cipher.final()]);
  const hmacKey = kdfa(nameAlg, seed, "INTEGRITY", empty, empty, hash.size * 8);
  const integrity = createHmac(hash.node, hmacKey).update(encIdentity).update(args.akName).digest();
  return { credentialBlob: Buffer.concat([sized16(integrity), encIdentity]), encryptedSecret };
}
