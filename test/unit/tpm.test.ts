/**
 * provider/tpm, pure: TPM 1.2 and 2.0 structures built byte by byte from the specifications
 * (TPM Main Part 2; TPM 2.0 Library Part 2), the credentials' layouts opened the way a TPM and
 * go-tpm open them, and the protocol's challenge and response checks.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  type KeyObject,
} from "node:crypto";
import {
  AgentMessageError,
  checkResponse,
  kdfa,
  makeChallenge,
  makeTpm12Credential,
  makeTpm2Credential,
  marshalTpm12PubKey,
  marshalTpm2Public,
  parseReport,
  parseTpm12PubKey,
  parseTpm2Public,
  publicKeyFingerprint,
  tpm12PubKeyFromKeyBlob,
  TpmCredentialError,
  TpmFormatError,
  unwrapTpm2bPublic,
  type Challenge,
} from "../../provider/tpm";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

function rsaKeyPair(): { publicKey: KeyObject; privateKey: KeyObject; modulus: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const modulus = Buffer.from(publicKey.export({ format: "jwk" }).n as string, "base64url");
  return { publicKey, privateKey, modulus };
}

const ek = rsaKeyPair();
const aik = rsaKeyPair();

/** TPM_PUBKEY of a TPM 1.2 EK as TPM_ReadPubek returns it (Part 2, 10.5 and 5.4 / 10.1). */
function tpm12EkPubKey(modulus: Buffer): Buffer {
  return Buffer.concat([
    hex("00000001"), // algorithmParms.algorithmID = TPM_ALG_RSA
    hex("0003"), // encScheme = TPM_ES_RSAESOAEP_SHA1_MGF1
    hex("0001"), // sigScheme = TPM_SS_NONE
    hex("0000000c"), // parmSize = 12
    hex("00000800"), // TPM_RSA_KEY_PARMS.keyLength = 2048 bits
    hex("00000002"), // numPrimes = 2
    hex("00000000"), // exponentSize = 0: the default exponent 65537
    hex("00000100"), // TPM_STORE_PUBKEY.keyLength = 256 bytes
    modulus,
  ]);
}

/** An AIK's algorithmParms: TPM_ES_NONE, TPM_SS_RSASSAPKCS1v15_SHA1, exponent written out. */
function tpm12AikParms(): Buffer {
  return hex("00000001 0001 0002 0000000f 00000800 00000002 00000003 010001");
}

function tpm12AikPubKey(modulus: Buffer): Buffer {
  return Buffer.concat([tpm12AikParms(), hex("00000100"), modulus]);
}

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("TPM 1.2 TPM_PUBKEY", () => {
  test("an EK's TPM_PUBKEY (284 bytes) gives its key and the SHA-1 digest of its bytes", () => {
    const bytes = tpm12EkPubKey(ek.modulus);
    expect(bytes.length).toBe(284);
    const parsed = parseTpm12PubKey(bytes);
    expect(parsed.key.export({ format: "jwk" })).toEqual(ek.publicKey.export({ format: "jwk" }));
    expect(parsed.digest).toEqual(createHash("sha1").update(bytes).digest());
    expect(parsed.structure.algorithmParms).toEqual({
      algorithmID: 1,
      encScheme: 3,
      sigScheme: 1,
      parms: { keyLength: 2048, numPrimes: 2, exponent: Buffer.alloc(0) },
    });
    expect(marshalTpm12PubKey(parsed.structure)).toEqual(bytes);
  });

  test("an exponent written out is used as written", () => {
    const parsed = parseTpm12PubKey(tpm12AikPubKey(aik.modulus));
    expect(parsed.key.asymmetricKeyDetails).toEqual({ modulusLength: 2048, publicExponent: 65537n });
    const three = Buffer.concat([
      hex("00000001 0001 0002 0000000d 00000800 00000002 00000001 03 00000100"),
      aik.modulus,
    ]);
    expect(parseTpm12PubKey(three).key.asymmetricKeyDetails?.publicExponent).toBe(3n);
  });

  test.each([
    ["truncated in the middle of parmSize", (b: Buffer) => b.subarray(0, 10), "algorithmParms.parmSize", 8],
    [
      "not RSA",
      (b: Buffer) => Buffer.concat([hex("00000006"), b.subarray(4)]),
      "algorithmParms.algorithmID",
      0,
    ],
    [
      "parmSize past the end",
      (b: Buffer) => Buffer.concat([b.subarray(0, 8), hex("00001000"), b.subarray(12)]),
      "algorithmParms.parmSize",
      8,
    ],
    [
      "parmSize larger than TPM_RSA_KEY_PARMS",
      (b: Buffer) => Buffer.concat([b.subarray(0, 8), hex("00000010"), b.subarray(12)]),
      "end",
      24,
    ],
    [
      "keyLength disagreeing with the modulus",
      (b: Buffer) => Buffer.concat([b.subarray(0, 12), hex("00000400"), b.subarray(16)]),
      "pubKey.keyLength",
      24,
    ],
    ["a modulus shorter than its size", (b: Buffer) => b.subarray(0, 200), "pubKey.key.size", 24],
    ["a trailing byte", (b: Buffer) => Buffer.concat([b, hex("00")]), "end", 284],
    [
      "a modulus with leading zero bits",
      (b: Buffer) => Buffer.concat([b.subarray(0, 28), hex("00"), b.subarray(29)]),
      "pubKey.key",
      24,
    ],
  ])("%s is a TpmFormatError naming the field and offset", (_what, mutate, field, offset) => {
    const error = catchError(() => parseTpm12PubKey(mutate(tpm12EkPubKey(ek.modulus))));
    expect(error).toBeInstanceOf(TpmFormatError);
    expect(error).toMatchObject({ structure: "TPM_PUBKEY", field, offset });
    expect((error as Error).message).toMatch(
      new RegExp(`^TPM_PUBKEY: ${field.replace(/\./g, "\\.")} at offset ${offset}: `),
    );
  });

  test("TPM_KEY and TPM_KEY12 blobs give the TPM_PUBKEY of their public part", () => {
    const expected = tpm12AikPubKey(aik.modulus);
    const rest = Buffer.concat([
      hex("0012"), // keyUsage = TPM_KEY_IDENTITY
      hex("00000000"), // keyFlags
      hex("01"), // authDataUsage = TPM_AUTH_ALWAYS
      tpm12AikParms(),
      hex("00000000"), // PCRInfoSize = 0
      hex("00000100"),
      aik.modulus,
      hex("00000004 deadbeef"), // encData
    ]);
    expect(tpm12PubKeyFromKeyBlob(Buffer.concat([hex("01010000"), rest]))).toEqual(expected);
    expect(tpm12PubKeyFromKeyBlob(Buffer.concat([hex("0028 0000"), rest]))).toEqual(expected);
    expect(catchError(() => tpm12PubKeyFromKeyBlob(Buffer.concat([hex("01020000"), rest])))).toMatchObject({
      structure: "TPM_KEY",
      field: "ver",
      offset: 0,
    });
    expect(catchError(() => tpm12PubKeyFromKeyBlob(Buffer.concat([hex("0028 0001"), rest])))).toMatchObject({
      structure: "TPM_KEY12",
      field: "fill",
      offset: 2,
    });
  });
});

describe("TPM 1.2 credential (TPM_ActivateIdentity's inputs)", () => {
  const ekPub = parseTpm12PubKey(tpm12EkPubKey(ek.modulus));
  const aikPub = parseTpm12PubKey(tpm12AikPubKey(aik.modulus));

  /** The TPM's half: RSAES-OAEP SHA-1 with the parameter "TCPA", then TPM_ASYM_CA_CONTENTS. */
  function tpmDecryptAsym(asym: Buffer): { algId: number; encScheme: number; key: Buffer; idDigest: Buffer } {
    const plain = privateDecrypt(
      {
        key: ek.privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha1",
        oaepLabel: Buffer.from("TCPA"),
      },
      asym,
    );
    const size = plain.readUInt16BE(6);
    expect(plain.length).toBe(8 + size + 20);
    return {
      algId: plain.readUInt32BE(0),
      encScheme: plain.readUInt16BE(4),
      key: plain.subarray(8, 8 + size),
      idDigest: plain.subarray(8 + size),
    };
  }

  /** go-tpm v0.9.8's unloadTrspiCred, then its decryption (tpm.ActivateIdentity), step for step. */
  function goTpmDecryptSym(sym: Buffer, key: Buffer, encScheme: number): Buffer {
    const credSize = sym.readUInt32BE(0);
    const algId = sym.readUInt32BE(4);
    const headerEncScheme = sym.readUInt16BE(8);
    const parmSize = sym.readUInt32BE(12);
    const parms = sym.subarray(16, 16 + parmSize);
    const cred = sym.subarray(16 + parmSize, 16 + parmSize + credSize);
    expect(16 + parmSize + credSize).toBe(sym.length);
    expect([algId, headerEncScheme, sym.readUInt16BE(10)]).toEqual([6, encScheme, 1]);
    // TPM_SYMMETRIC_KEY_PARMS: 128-bit key and block, and the IV the credential starts with.
    expect(parms).toEqual(Buffer.concat([hex("00000080 00000080 00000010"), cred.subarray(0, 16)]));
    const mode = { 4: "aes-128-ctr", 5: "aes-128-ofb" }[encScheme] as string;
    const decipher = createDecipheriv(mode, key, cred.subarray(0, 16));
    return Buffer.concat([decipher.update(cred.subarray(16)), decipher.final()]);
  }

  test.each([
    ["ctr", 4],
    ["ofb", 5],
  ] as const)(
    "AES-128-%s: the TPM gets the session key for this AIK and go-tpm the secret",
    (mode, encScheme) => {
      const secret = Buffer.from("a secret of some thirty-odd bytes..");
      const { asym, sym } = makeTpm12Credential({ ek: ekPub, aik: aikPub, secret, mode });
      expect(asym.length).toBe(256);
      const contents = tpmDecryptAsym(asym);
      expect(contents).toMatchObject({ algId: 6, encScheme }); // TPM_ALG_AES128, TPM_ES_SYM_CTR/OFB
      expect(contents.key.length).toBe(16);
      expect(contents.idDigest).toEqual(createHash("sha1").update(tpm12AikPubKey(aik.modulus)).digest());
      expect(goTpmDecryptSym(sym, contents.key, encScheme)).toEqual(secret);
    },
  );

  test("the OAEP parameter is TCPA: another label does not decrypt", () => {
    const { asym } = makeTpm12Credential({ ek: ekPub, aik: aikPub, secret: Buffer.from("x") });
    expect(() =>
      privateDecrypt(
        {
          key: ek.privateKey,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: "sha1",
          oaepLabel: Buffer.from("TCPB"),
        },
        asym,
      ),
    ).toThrow();
  });

  test("an empty secret is refused", () => {
    expect(() => makeTpm12Credential({ ek: ekPub, aik: aikPub, secret: Buffer.alloc(0) })).toThrow(
      TpmCredentialError,
    );
  });
});

/** The TCG default EK template's policy (PolicySecret(TPM_RH_ENDORSEMENT)), as swtpm reports it. */
const EK_POLICY = hex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa");

/** TPMT_PUBLIC of an RSA 2048 EK from the TCG default template (Part 2, 12.2.4). */
function tpm2RsaEk(modulus: Buffer): Buffer {
  return Buffer.concat([
    hex("0001"), // type = TPM_ALG_RSA
    hex("000b"), // nameAlg = TPM_ALG_SHA256
    hex("000300b2"), // fixedTPM fixedParent sensitiveDataOrigin adminWithPolicy restricted decrypt
    hex("0020"),
    EK_POLICY,
    hex("0006 0080 0043"), // symmetric: AES, 128 bits, CFB
    hex("0010"), // scheme: TPM_ALG_NULL
    hex("0800"), // keyBits = 2048
    hex("00000000"), // exponent 0 = 65537
    hex("0100"),
    modulus,
  ]);
}

/** TPMT_PUBLIC of an AK as tpm2_createak makes it: restricted RSASSA-SHA256 signing key. */
function tpm2RsaAk(modulus: Buffer): Buffer {
  return Buffer.concat([
    hex("0001 000b 00050072 0000"), // fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted sign
    hex("0010"), // symmetric: TPM_ALG_NULL
    hex("0014 000b"), // scheme: RSASSA with SHA-256
    hex("0800 00000000 0100"),
    modulus,
  ]);
}

describe("TPM 2.0 TPMT_PUBLIC", () => {
  test("an RSA EK: key, attributes, parameters, Name", () => {
    const bytes = tpm2RsaEk(ek.modulus);
    const parsed = parseTpm2Public(bytes);
    expect(parsed.key.export({ format: "jwk" })).toEqual(ek.publicKey.export({ format: "jwk" }));
    expect(parsed.attributes).toEqual({
      fixedTPM: true,
      stClear: false,
      fixedParent: true,
      sensitiveDataOrigin: true,
      userWithAuth: false,
      adminWithPolicy: true,
      noDA: false,
      encryptedDuplication: false,
      restricted: true,
      decrypt: true,
      sign: false,
      x509sign: false,
    });
    expect(parsed.structure).toMatchObject({
      type: 1,
      nameAlg: 0x0b,
      authPolicy: EK_POLICY,
      symmetric: { algorithm: 6, keyBits: 128, mode: 0x43 },
      scheme: { scheme: 0x10 },
      keyBits: 2048,
      exponent: 0,
    });
    expect(parsed.name).toEqual(Buffer.concat([hex("000b"), createHash("sha256").update(bytes).digest()]));
    expect(marshalTpm2Public(parsed.structure)).toEqual(bytes);
  });

  test("an RSA AK with its RSASSA scheme, and a TPM2B_PUBLIC unwrapped", () => {
    const bytes = tpm2RsaAk(aik.modulus);
    const wrapped = Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
    const parsed = parseTpm2Public(unwrapTpm2bPublic(wrapped));
    expect(parsed.structure.scheme).toEqual({ scheme: 0x14, hashAlg: 0x0b });
    expect(parsed.attributes).toMatchObject({
      restricted: true,
      sign: true,
      decrypt: false,
      userWithAuth: true,
    });
  });

  test("an ECC P-256 key, with an ECDAA scheme (hash and count) and a KDF", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = publicKey.export({ format: "jwk" });
    const x = Buffer.from(jwk.x as string, "base64url");
    const y = Buffer.from(jwk.y as string, "base64url");
    const bytes = Buffer.concat([
      hex("0023 000b 00050072 0000"),
      hex("0010"), // symmetric NULL
      hex("001a 000b 0001"), // scheme ECDAA, SHA-256, count 1
      hex("0003"), // TPM_ECC_NIST_P256
      hex("0020 000b"), // kdf KDF1_SP800_56A with SHA-256
      hex("0020"),
      x,
      hex("0020"),
      y,
    ]);
    const parsed = parseTpm2Public(bytes);
    expect(parsed.key.export({ format: "jwk" })).toEqual(jwk);
    expect(parsed.structure).toMatchObject({ curveID: 3, scheme: { scheme: 0x1a, hashAlg: 0x0b, count: 1 } });
    expect(marshalTpm2Public(parsed.structure)).toEqual(bytes);
    expect(publicKeyFingerprint(parsed.key)).toBe(publicKeyFingerprint(publicKey));
  });

  test.each([
    ["a KEYEDHASH object", (b: Buffer) => Buffer.concat([hex("0008"), b.subarray(2)]), "type", 0],
    [
      "an unknown nameAlg",
      (b: Buffer) => Buffer.concat([b.subarray(0, 2), hex("0012"), b.subarray(4)]),
      "nameAlg",
      2,
    ],
    [
      "an authPolicy longer than any digest",
      (b: Buffer) => Buffer.concat([b.subarray(0, 8), hex("0041"), b.subarray(10)]),
      "authPolicy.size",
      8,
    ],
    ["truncated in the modulus", (b: Buffer) => b.subarray(0, b.length - 1), "unique.rsa.size", 56],
    [
      "keyBits disagreeing with the modulus",
      (b: Buffer) => Buffer.concat([b.subarray(0, 50), hex("0400"), b.subarray(52)]),
      "unique.rsa",
      56,
    ],
    ["a trailing byte", (b: Buffer) => Buffer.concat([b, hex("00")]), "end", 314],
  ])("%s is a TpmFormatError naming the field and offset", (_what, mutate, field, offset) => {
    const error = catchError(() => parseTpm2Public(mutate(tpm2RsaEk(ek.modulus))));
    expect(error).toBeInstanceOf(TpmFormatError);
    expect(error).toMatchObject({ structure: "TPMT_PUBLIC", field, offset });
  });

  test("the fingerprint is the SHA-256 of the SPKI DER, the same key's whichever TPM reported it", () => {
    const spki = ek.publicKey.export({ type: "spki", format: "der" });
    const expected = createHash("sha256").update(spki).digest("hex");
    expect(publicKeyFingerprint(parseTpm2Public(tpm2RsaEk(ek.modulus)).key)).toBe(expected);
    expect(publicKeyFingerprint(parseTpm12PubKey(tpm12EkPubKey(ek.modulus)).key)).toBe(expected);
  });
});

describe("KDFa", () => {
  test("is SP800-108 counter mode: HMAC(key, i || label 0 || contextU || contextV || bits)", () => {
    const key = Buffer.from("seed");
    const block = (i: number): Buffer =>
      createHmac("sha256", key)
        .update(
          Buffer.concat([hex(`0000000${i}`), Buffer.from("STORAGE\0"), hex("000b0102"), hex("00000180")]),
        )
        .digest();
    const expected = Buffer.concat([block(1), block(2)]).subarray(0, 48);
    expect(kdfa(0x0b, key, "STORAGE", hex("000b0102"), Buffer.alloc(0), 384)).toEqual(expected);
    // A label already ending in its zero octet is not given another.
    expect(kdfa(0x0b, key, "STORAGE\0", hex("000b0102"), Buffer.alloc(0), 384)).toEqual(expected);
  });
});

describe("TPM 2.0 credential (TPM2_MakeCredential)", () => {
  const ekPub = parseTpm2Public(tpm2RsaEk(ek.modulus));
  const akPub = parseTpm2Public(tpm2RsaAk(aik.modulus));

  /** TPM2_ActivateCredential's checks and decryption (Part 1, 24), with the EK's private key. */
  function activate(credentialBlob: Buffer, encryptedSecret: Buffer, akName: Buffer): Buffer {
    const seed = privateDecrypt(
      {
        key: ek.privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha256",
        oaepLabel: Buffer.from("IDENTITY\0"),
      },
      encryptedSecret,
    );
    expect(seed.length).toBe(32);
    const hmacSize = credentialBlob.readUInt16BE(0);
    const integrity = credentialBlob.subarray(2, 2 + hmacSize);
    const encIdentity = credentialBlob.subarray(2 + hmacSize);
    const hmacKey = kdfa(0x0b, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), 256);
    const expected = createHmac("sha256", hmacKey).update(encIdentity).update(akName).digest();
    if (!integrity.equals(expected)) throw new Error("TPM_RC_INTEGRITY");
    const symKey = kdfa(0x0b, seed, "STORAGE", akName, Buffer.alloc(0), 128);
    const d = createDecipheriv("aes-128-cfb", symKey, Buffer.alloc(16));
    const plain = Buffer.concat([d.update(encIdentity), d.final()]);
    expect(plain.readUInt16BE(0)).toBe(plain.length - 2);
    return plain.subarray(2);
  }

  test("the blob is TPM2B_DIGEST(HMAC) || AES-CFB(TPM2B_DIGEST(secret)), the seed OAEP-SHA-256 to the EK", () => {
    const secret = Buffer.from("0123456789abcdef");
    const c = makeTpm2Credential({ ek: ekPub, akName: akPub.name, secret });
    expect(c.encryptedSecret.length).toBe(256);
    expect(c.credentialBlob.length).toBe(2 + 32 + 2 + secret.length);
    expect(activate(c.credentialBlob, c.encryptedSecret, akPub.name)).toEqual(secret);
    expect(() => activate(c.credentialBlob, c.encryptedSecret, ekPub.name)).toThrow("TPM_RC_INTEGRITY");
  });

  test("the AES-CFB uses a zero IV", () => {
    // Same seed and AK: only the IV can change what the ciphertext is.
    const secret = Buffer.from("abc");
    const c = makeTpm2Credential({ ek: ekPub, akName: akPub.name, secret });
    const seed = privateDecrypt(
      {
        key: ek.privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha256",
        oaepLabel: Buffer.from("IDENTITY\0"),
      },
      c.encryptedSecret,
    );
    const symKey = kdfa(0x0b, seed, "STORAGE", akPub.name, Buffer.alloc(0), 128);
    const e = createCipheriv("aes-128-cfb", symKey, Buffer.alloc(16));
    expect(c.credentialBlob.subarray(34)).toEqual(Buffer.concat([e.update(hex("0003616263")), e.final()]));
  });

  test("keys that cannot carry a credential are refused", () => {
    expect(() => makeTpm2Credential({ ek: akPub, akName: akPub.name, secret: Buffer.from("x") })).toThrow(
      /not a restricted decryption key/,
    );
    expect(() => makeTpm2Credential({ ek: ekPub, akName: akPub.name, secret: Buffer.alloc(33) })).toThrow(
      /1 to 32 bytes/,
    );
  });
});

describe("challenge and response (agent/PROTOCOL.md)", () => {
  const report20 = {
    version: 1,
    request: "boot",
    tpm: "2.0",
    ek: tpm2RsaEk(ek.modulus).toString("base64"),
    srk: tpm2RsaEk(ek.modulus).toString("base64"),
    ak: tpm2RsaAk(aik.modulus).toString("base64"),
  };
  const report12 = {
    version: 1,
    request: "r1",
    tpm: "1.2",
    ek: tpm12EkPubKey(ek.modulus).toString("base64"),
    srk: tpm12EkPubKey(ek.modulus).toString("base64"),
    ak: tpm12AikPubKey(aik.modulus).toString("base64"),
  };

  test("a TPM 2.0 and a TPM 1.2 report each give a challenge of their kind", () => {
    const a = makeChallenge(parseReport(JSON.stringify(report20)));
    expect(Object.keys(a.challenge).sort()).toEqual(["credentialBlob", "encryptedSecret", "id", "tpm"]);
    expect(a.challenge.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.expectedSecret.length).toBe(32);
    const b = makeChallenge(parseReport(report12));
    expect(Object.keys(b.challenge).sort()).toEqual(["asym", "id", "sym", "tpm"]);
    expect(b.challenge.tpm).toBe("1.2");
  });

  test.each([
    ["not JSON", "{", /^the report is not JSON/],
    ["not an object", "[]", /^the report is not a JSON object$/],
    ["another version", { ...report20, version: 2 }, /^report\.version is 2, not 1$/],
    ["an unknown TPM", { ...report20, tpm: "3.0" }, /^report\.tpm is "3\.0"/],
    ["an ak that is not base64", { ...report20, ak: "AA*A" }, /^report\.ak is not base64$/],
    ["a missing srk", { ...report20, srk: undefined }, /^report\.srk is not a string$/],
    [
      "a truncated ak",
      { ...report20, ak: "AAEACw==" },
      /^report\.ak: TPMT_PUBLIC: objectAttributes at offset 4: needs 4 byte/,
    ],
    ["a TPM 2.0 key in a TPM 1.2 report", { ...report20, tpm: "1.2" }, /^report\.ek: TPM_PUBKEY: /],
  ])("a report with %s is an AgentMessageError saying so", (_what, report, message) => {
    const error = catchError(() => parseReport(report));
    expect(error).toBeInstanceOf(AgentMessageError);
    expect((error as Error).message).toMatch(message);
  });

  test("a report of the agent's failure carries its error", () => {
    const error = catchError(() =>
      parseReport({ version: 1, request: "boot", error: "TPM owned with another auth" }),
    );
    expect(error).toMatchObject({ agentError: "TPM owned with another auth" });
    expect((error as Error).message).toBe(
      "the agent could not initialise its TPM: TPM owned with another auth",
    );
  });

  test("an AK that is not a restricted signing key fixed to its TPM gets no challenge", () => {
    const loose = tpm2RsaAk(aik.modulus);
    loose.writeUInt32BE(0x00040072, 4); // sign, but not restricted
    expect(() => makeChallenge(parseReport({ ...report20, ak: loose.toString("base64") }))).toThrow(
      new TpmCredentialError("the AK is not restricted"),
    );
  });

  describe("checkResponse", () => {
    const { challenge, expectedSecret } = makeChallenge(parseReport(report20));
    const good = { version: 1, id: challenge.id, secret: expectedSecret.toString("base64") };
    const wrong = Buffer.from(expectedSecret);
    wrong[31] ^= 1;

    test("the right secret for the right id passes, as text or object", () => {
      expect(checkResponse(challenge, expectedSecret, good)).toEqual({ ok: true });
      expect(checkResponse(challenge, expectedSecret, JSON.stringify(good))).toEqual({ ok: true });
    });

    test.each([
      ["not JSON", "nope", /^the response is not JSON/],
      ["null", null, /^the response is not a JSON object$/],
      ["another version", { ...good, version: "1" }, /^response\.version is "1", not 1$/],
      ["another id", { ...good, id: "00" }, /^response\.id is "00", not the challenge's "[0-9a-f]{32}"$/],
      ["no id", { ...good, id: undefined }, /^response\.id is undefined/],
      [
        "the agent's error",
        { version: 1, id: challenge.id, error: "TPM_RC_INTEGRITY" },
        /: TPM_RC_INTEGRITY$/,
      ],
      ["no secret", { version: 1, id: challenge.id }, /^response\.secret is not a string$/],
      ["a secret not base64", { ...good, secret: "####" }, /^response\.secret is not base64$/],
      [
        "a short secret",
        { ...good, secret: expectedSecret.subarray(1).toString("base64") },
        /is 31 bytes, not 32$/,
      ],
      [
        "one bit off",
        { ...good, secret: wrong.toString("base64") },
        /^response\.secret is not the challenge's secret/,
      ],
    ])("%s fails, saying why", (_what, response, reason) => {
      const check = checkResponse(challenge as Challenge, expectedSecret, response);
      expect(check.ok).toBe(false);
      expect(check.ok === false && check.reason).toMatch(reason);
    });
  });
});
