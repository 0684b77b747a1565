/**
 * provider/tpm's parsers under arbitrary input: random or mutated bytes never throw anything but
 * TpmFormatError (a report or response: AgentMessageError, or a failed check), and every valid
 * structure parses back to itself.
 */
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import {
  AgentMessageError,
  checkResponse,
  makeChallenge,
  marshalTpm12PubKey,
  marshalTpm2Public,
  parseReport,
  parseTpm12PubKey,
  parseTpm2Public,
  tpm12PubKeyFromKeyBlob,
  TpmFormatError,
  unwrapTpm2bPublic,
  type Tpm12PubKey,
  type Tpm2Public,
} from "../../provider/tpm";

const RUNS = 500;

/** Runs `parse`; anything thrown but a TpmFormatError fails the property. */
function onlyFormatErrors(parse: (b: Buffer) => unknown, bytes: Uint8Array): void {
  try {
    parse(Buffer.from(bytes));
  } catch (error) {
    if (!(error instanceof TpmFormatError)) throw error;
    expect(error.message).toMatch(/^[A-Z0-9_]+: [\w.]+ at offset \d+: .+/);
  }
}

/** An RSA modulus as a TPM's: exactly its size, top bit set (random otherwise: node does not test primes). */
const modulus = (bytes: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => {
    const m = Buffer.from(b);
    m[0] |= 0x80;
    return m;
  });

const u16 = fc.integer({ min: 0, max: 0xffff });
const oddExponent = fc.integer({ min: 1, max: 0x7fffffff }).map((e) => e * 2 + 1);

const tpm12PubKey: fc.Arbitrary<Tpm12PubKey> = fc
  .record({
    encScheme: u16,
    sigScheme: u16,
    numPrimes: fc.integer({ min: 0, max: 0xffffffff }),
    exponent: fc.oneof(
      fc.constant(Buffer.alloc(0)),
      oddExponent.map((e) => Buffer.from(e.toString(16).padStart(8, "0"), "hex")),
    ),
    pubKey: fc.oneof(modulus(128), modulus(256)),
  })
  .map((r) => ({
    algorithmParms: {
      algorithmID: 1 as const,
      encScheme: r.encScheme,
      sigScheme: r.sigScheme,
      parms: { keyLength: r.pubKey.length * 8, numPrimes: r.numPrimes, exponent: r.exponent },
    },
    pubKey: r.pubKey,
  }));

const hashAlg = fc.constantFrom(0x0004, 0x000b, 0x000c, 0x000d);
const symDef = fc.oneof(
  fc.constant({ algorithm: 0x0010 }),
  fc.record({
    algorithm: fc.constant(0x0006),
    keyBits: fc.constantFrom(128, 256),
    mode: fc.constant(0x0043),
  }),
);
const scheme = fc.oneof(
  fc.constant({ scheme: 0x0010 }),
  fc.constant({ scheme: 0x0015 }),
  fc.record({ scheme: fc.constantFrom(0x0014, 0x0016, 0x0017, 0x0018), hashAlg }),
  fc.record({ scheme: fc.constant(0x001a), hashAlg, count: u16 }),
);
const head = fc.record({
  nameAlg: hashAlg,
  objectAttributes: fc.integer({ min: 0, max: 0xffffffff }),
  authPolicy: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  symmetric: symDef,
  scheme,
});

/** Real points, since a TPMT_PUBLIC with a point off its curve is (rightly) refused. */
const eccPoints = (["P-256", "P-384", "P-521"] as const).flatMap((curve, i) =>
  [0, 1].map(() => {
    const jwk = generateKeyPairSync("ec", { namedCurve: curve }).publicKey.export({ format: "jwk" });
    return {
      curveID: 3 + i,
      x: Buffer.from(jwk.x as string, "base64url"),
      y: Buffer.from(jwk.y as string, "base64url"),
    };
  }),
);

const tpm2Public: fc.Arbitrary<Tpm2Public> = fc.oneof(
  fc
    .record({
      head,
      modulus: fc.oneof(modulus(128), modulus(256)),
      exponent: fc.oneof(fc.constant(0), fc.constant(65537), oddExponent),
    })
    .map(({ head: h, modulus: m, exponent }) => ({
      type: 0x0001 as const,
      ...h,
      keyBits: m.length * 8,
      exponent,
      modulus: m,
    })),
  fc
    .record({
      head,
      point: fc.constantFrom(...eccPoints),
      kdf: fc.oneof(fc.constant({ scheme: 0x0010 }), fc.record({ scheme: fc.constant(0x0020), hashAlg })),
    })
    .map(({ head: h, point, kdf }) => ({ type: 0x0023 as const, ...h, ...point, kdf })),
);

/** A TPM_KEY (or TPM_KEY12) around a TPM_PUBKEY: its header, parms, no PCRInfo, the modulus, encData. */
function keyBlob([pub, key12]: [Tpm12PubKey, boolean]): Buffer {
  const bytes = marshalTpm12PubKey(pub);
  const parmsLength = bytes.length - 4 - pub.pubKey.length;
  return Buffer.concat([
    Buffer.from(key12 ? "00280000" : "01010000", "hex"),
    Buffer.from("0012 00000000 01".replace(/ /g, ""), "hex"),
    bytes.subarray(0, parmsLength),
    Buffer.alloc(4),
    bytes.subarray(parmsLength),
    Buffer.from("00000003abcdef", "hex"),
  ]);
}

/** A valid blob with a few bytes changed, cut short, or grown. */
const mutated = (valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Uint8Array> =>
  fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      fc.boolean(),
    )
    .map(([bytes, edits, cut, shorten]) => {
      const b = Buffer.from(bytes);
      for (const [at, value] of edits) b[at % b.length] = value;
      return shorten ? b.subarray(0, cut % (b.length + 1)) : Buffer.concat([b, Buffer.from([cut & 0xff])]);
    });

describe("random bytes give a value or a TpmFormatError", () => {
  const parsers: [string, (b: Buffer) => unknown, fc.Arbitrary<Buffer>][] = [
    ["parseTpm12PubKey", parseTpm12PubKey, tpm12PubKey.map(marshalTpm12PubKey)],
    ["tpm12PubKeyFromKeyBlob", tpm12PubKeyFromKeyBlob, fc.tuple(tpm12PubKey, fc.boolean()).map(keyBlob)],
    ["parseTpm2Public", parseTpm2Public, tpm2Public.map(marshalTpm2Public)],
    ["unwrapTpm2bPublic", unwrapTpm2bPublic, tpm2Public.map(marshalTpm2Public)],
  ];

  test.each(parsers)("%s: random bytes", (_name, parse) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => onlyFormatErrors(parse, b)),
      { numRuns: RUNS },
    );
  });

  test.each(parsers)("%s: a valid structure mutated", (_name, parse, valid) => {
    fc.assert(
      fc.property(mutated(valid), (b) => onlyFormatErrors(parse, b)),
      { numRuns: RUNS },
    );
  });
});

describe("valid structures round-trip", () => {
  test("TPM_PUBKEY, and from its TPM_KEY or TPM_KEY12", () => {
    fc.assert(
      fc.property(tpm12PubKey, fc.boolean(), (s, key12) => {
        const bytes = marshalTpm12PubKey(s);
        expect(tpm12PubKeyFromKeyBlob(keyBlob([s, key12]))).toEqual(bytes);
        const parsed = parseTpm12PubKey(bytes);
        expect(parsed.structure).toEqual(s);
        expect(marshalTpm12PubKey(parsed.structure)).toEqual(bytes);
        expect(parsed.key.asymmetricKeyDetails?.modulusLength).toBe(s.pubKey.length * 8);
      }),
      { numRuns: 200 },
    );
  });

  test("TPMT_PUBLIC, and its TPM2B_PUBLIC", () => {
    fc.assert(
      fc.property(tpm2Public, (s) => {
        const bytes = marshalTpm2Public(s);
        const parsed = parseTpm2Public(bytes);
        expect(parsed.structure).toEqual(s);
        expect(marshalTpm2Public(parsed.structure)).toEqual(bytes);
        expect(parsed.name.readUInt16BE(0)).toBe(s.nameAlg);
        const wrapped = Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
        expect(unwrapTpm2bPublic(wrapped)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });
});

describe("reports and responses from a hostile agent", () => {
  const anyJson = fc.oneof(fc.jsonValue(), fc.string(), fc.constant(undefined));

  test("parseReport: a MemberReport or an AgentMessageError", () => {
    const field = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("base64")),
      fc.jsonValue(),
    );
    const report = fc.oneof(
      anyJson,
      fc.record(
        {
          version: fc.oneof(fc.constant(1), fc.jsonValue()),
          request: fc.oneof(fc.string(), fc.jsonValue()),
          tpm: fc.constantFrom("1.2", "2.0", "2", 2),
          ek: field,
          srk: field,
          ak: field,
          error: fc.string(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(report, (r) => {
        try {
          parseReport(r);
        } catch (error) {
          if (!(error instanceof AgentMessageError)) throw error;
        }
      }),
      { numRuns: RUNS },
    );
  });

  test("checkResponse never throws, and nothing without the secret passes", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const n = Buffer.from(publicKey.export({ format: "jwk" }).n as string, "base64url");
    const pub = (attrs: string) =>
      Buffer.concat([
        Buffer.from(`0001000b${attrs}0000` + "0006008000430010080000000000" + "0100", "hex"),
        n,
      ]).toString("base64");
    // The same RSA key as EK (restricted decrypt) and AK (restricted sign): enough to make a challenge.
    const report = parseReport({
      version: 1,
      request: "x",
      tpm: "2.0",
      ek: pub("000300b2"),
      srk: pub("000300b2"),
      ak: pub("00050072"),
    });
    const { challenge, expectedSecret } = makeChallenge(report);
    const response = fc.oneof(
      anyJson,
      fc.record(
        {
          version: fc.oneof(fc.constant(1), fc.jsonValue()),
          id: fc.oneof(fc.constant(challenge.id), fc.jsonValue()),
          secret: fc.oneof(
            fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64")),
            fc.jsonValue(),
          ),
          error: fc.string(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(response, (r) => {
        expect(checkResponse(challenge, expectedSecret, r).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});
