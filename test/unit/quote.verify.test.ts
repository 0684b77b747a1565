/**
 * provider/tpm's quote verification over REAL quotes: test/fixtures/quotes holds quotes that
 * swtpm 1.2 and 2.0 made through the agent after pv-grub's extends (captured by
 * test/tpm/quote.swtpm.test.ts), two members per version. Each verifies and proves the pv-grub
 * baseline; a byte changed anywhere, an old nonce, another member's AK, a PCR value that does not
 * match the digest and a kernel other than the baseline's are each refused, naming what failed.
 *
 * The checks that a real TPM's signature can never reach (magic, type, a selection inside a
 * validly signed TPMS_ATTEST) are shown on a fixture's TPMS_ATTEST altered and signed again with
 * a software key standing in for the AK.
 */
import { constants, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import fc from "fast-check";
import {
  checkPcrBaseline,
  makeQuoteRequest,
  marshalTpm12PubKey,
  marshalTpm2Public,
  parseTpm12PubKey,
  parseTpm2Public,
  PcrBaselineError,
  pvGrubMeasurements,
  QuoteVerificationError,
  replayPcrs,
  verifyQuote,
  type QuoteCheck,
  type Tpm2Public,
  type Tpm2PublicKey,
} from "../../provider/tpm";
import { loadQuoteFixtures, type QuoteFixture } from "../support/quoteFixtures";

type Fixture = QuoteFixture;

const FIXTURES: Fixture[] = loadQuoteFixtures();

/** Every quote of every fixture, as [label, fixture, index]. */
const QUOTES = FIXTURES.flatMap((f) =>
  f.quotes.map((q, i) => [`${f.file} ${q.request.bank}`, f, i] as const),
);

/** The QuoteVerificationError verification throws; fails the test if it passes or throws another. */
function failure(fn: () => unknown): QuoteVerificationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof QuoteVerificationError) return error;
    throw error;
  }
  throw new Error("the quote verified, but it should have been refused");
}

const b64 = (b: Buffer): string => b.toString("base64");
const field = (q: Record<string, unknown>, name: string): Buffer => Buffer.from(q[name] as string, "base64");
const other = (f: Fixture): Fixture =>
  FIXTURES.find((g) => g.tpm === f.tpm && g.member !== f.member) as Fixture;

test("the fixtures are two members per TPM version, each with its own AK", () => {
  expect(FIXTURES.map((f) => `${f.tpm}-${f.member}`)).toEqual(["1.2-a", "1.2-b", "2.0-a", "2.0-b"]);
  for (const f of FIXTURES) expect(f.ak.bytes.equals(other(f).ak.bytes)).toBe(false);
  expect(QUOTES.map(([label]) => label)).toEqual([
    "tpm1.2-a.json sha1",
    "tpm1.2-b.json sha1",
    "tpm2.0-a.json sha1",
    "tpm2.0-a.json sha256",
    "tpm2.0-b.json sha1",
    "tpm2.0-b.json sha256",
  ]);
});

describe.each(QUOTES)("%s", (_label, f, i) => {
  const { request, quote } = f.quotes[i];
  const bank = request.bank;
  const baseline = replayPcrs(pvGrubMeasurements(f.boot, bank), bank);

  test("verifies with the member's AK and proves the pv-grub baseline of PCRs 4 and 5", () => {
    const proved = verifyQuote({ ak: f.ak, request, quote });
    expect(proved).toMatchObject({ tpm: f.tpm, bank });
    expect([...proved.pcrs.keys()]).toEqual([4, 5]);
    expect(() => checkPcrBaseline(proved.pcrs, baseline)).not.toThrow();
    // The answer as JSON text, as it comes out of xenstore, verifies the same.
    expect(verifyQuote({ ak: f.ak, request, quote: JSON.stringify(quote) }).pcrs).toEqual(proved.pcrs);
  });

  // The blobs the signature covers (TPM 2.0: the PCR values, bound by pcrDigest, too).
  const blobs = f.tpm === "1.2" ? ["pcrComposite", "signature"] : ["attest", "signature"];
  test.each(blobs)("one byte changed anywhere in %s is refused", (name) => {
    const blob = field(quote, name);
    fc.assert(
      fc.property(fc.nat({ max: blob.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const altered = Buffer.from(blob);
        altered[at] ^= xor;
        const error = failure(() =>
          verifyQuote({ ak: f.ak, request, quote: { ...quote, [name]: b64(altered) } }),
        );
        // TPM 2.0's TPMT_SIGNATURE header (sigAlg, hash, size) may no longer parse: "format".
        const allowed: QuoteCheck[] =
          name === "signature" && f.tpm === "2.0" ? ["signature", "format"] : ["signature"];
        expect(allowed).toContain(error.check);
      }),
      { numRuns: 200 },
    );
  });

  if (f.tpm === "2.0") {
    test("one byte changed in a PCR value is refused: the values do not hash to pcrDigest", () => {
      const pcrs = quote.pcrs as Record<string, string>;
      fc.assert(
        fc.property(
          fc.constantFrom("4", "5"),
          fc.nat({ max: pcrs["4"].length / 2 - 1 }),
          fc.integer({ min: 1, max: 255 }),
          (pcr, at, xor) => {
            const value = Buffer.from(pcrs[pcr], "hex");
            value[at] ^= xor;
            const altered = { ...quote, pcrs: { ...pcrs, [pcr]: value.toString("hex") } };
            expect(failure(() => verifyQuote({ ak: f.ak, request, quote: altered })).check).toBe("pcrDigest");
          },
        ),
        { numRuns: 100 },
      );
    });
  }

  test("an old quote for a new nonce is a replay: refused as the nonce", () => {
    const fresh = { ...request, nonce: makeQuoteRequest({ tpm: f.tpm, pcrs: [4, 5], bank }).nonce };
    const replayed = failure(() => verifyQuote({ ak: f.ak, request: fresh, quote }));
    expect(replayed.check).toBe("nonce");
    expect(replayed.message).toContain(Buffer.from(fresh.nonce, "base64").toString("hex"));
    // The echo rewritten to the new nonce: TPM 1.2's signature covers SHA-1(nonce), TPM 2.0's
    // signed extraData still holds the old one.
    const forged = { ...quote, nonce: fresh.nonce };
    expect(failure(() => verifyQuote({ ak: f.ak, request: fresh, quote: forged })).check).toBe(
      f.tpm === "1.2" ? "signature" : "nonce",
    );
  });

  test("checked against ANOTHER member's AK it is refused: signature", () => {
    const error = failure(() => verifyQuote({ ak: other(f).ak, request, quote }));
    expect(error.check).toBe("signature");
  });

  test("a request for other PCRs or another bank is refused: selection", () => {
    expect(
      failure(() => verifyQuote({ ak: f.ak, request: { ...request, pcrs: [4, 5, 6] }, quote })).check,
    ).toBe("selection");
    expect(failure(() => verifyQuote({ ak: f.ak, request: { ...request, pcrs: [4] }, quote })).check).toBe(
      "selection",
    );
    const otherBank = bank === "sha1" ? "sha256" : "sha1";
    expect(
      failure(() => verifyQuote({ ak: f.ak, request: { ...request, bank: otherBank }, quote })).check,
    ).toBe("selection");
  });

  test("a baseline with another PCR 4 (another kernel) names PCR 4 with both values", () => {
    const proved = verifyQuote({ ak: f.ak, request, quote }).pcrs;
    const otherKernel = replayPcrs(
      pvGrubMeasurements({ ...f.boot, kernel: Buffer.from("another kernel") }, bank),
      bank,
    );
    let error: unknown;
    try {
      checkPcrBaseline(proved, otherKernel);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PcrBaselineError);
    const expected = (otherKernel.get(4) as Buffer).toString("hex");
    const found = (proved.get(4) as Buffer).toString("hex");
    expect((error as PcrBaselineError).departures).toEqual([{ pcr: 4, expected, found }]);
    expect((error as Error).message).toBe(`PCR 4 is ${found}, the baseline expects ${expected}`);
  });

  test("the agent's own error, another id, another TPM version: format", () => {
    const cases: unknown[] = [
      { version: 1, id: request.id, tpm: f.tpm, error: "TPM 1.2: TPM_Quote(AIK): the TPM is out of cheese" },
      { ...quote, id: "another" },
      { ...quote, tpm: f.tpm === "1.2" ? "2.0" : "1.2" },
      { ...quote, version: 2 },
      { ...quote, signature: "not base64!" },
      "not JSON",
    ];
    for (const bad of cases)
      expect(failure(() => verifyQuote({ ak: f.ak, request, quote: bad })).check).toBe("format");
  });
});

test("PCR 5 missing from the proved values is named as not in the quote", () => {
  const baseline = new Map([
    [4, Buffer.alloc(20, 1)],
    [5, Buffer.alloc(20, 2)],
  ]);
  expect(() => checkPcrBaseline(new Map([[4, Buffer.alloc(20, 1)]]), baseline)).toThrow(
    new PcrBaselineError([{ pcr: 5, expected: "02".repeat(20), found: undefined }]),
  );
  expect(() => checkPcrBaseline(new Map([[4, Buffer.alloc(20, 1)]]), baseline)).toThrow(
    `PCR 5 is not in the quote, the baseline expects ${"02".repeat(20)}`,
  );
});

describe("a TPMS_ATTEST altered and signed again by a stand-in AK (software key)", () => {
  const f = FIXTURES.find((g) => g.tpm === "2.0") as Fixture;
  const { request, quote } = f.quotes[0];
  const realAk = f.ak as Tpm2PublicKey;
  const attest = field(quote, "attest");

  /** The real AK's TPMT_PUBLIC with another key in it; the private half signs here. */
  function standIn(kind: "rsassa" | "rsapss" | "ecdsa"): {
    ak: Tpm2PublicKey;
    signAttest: (a: Buffer) => Buffer;
  } {
    const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
    const sized = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
    let privateKey: KeyObject;
    let structure: Tpm2Public;
    if (kind === "ecdsa") {
      const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
      privateKey = pair.privateKey;
      const jwk = pair.publicKey.export({ format: "jwk" });
      structure = {
        type: 0x0023,
        nameAlg: 0x000b,
        objectAttributes: realAk.structure.objectAttributes,
        authPolicy: Buffer.alloc(0),
        symmetric: { algorithm: 0x0010 },
        scheme: { scheme: 0x0018, hashAlg: 0x000b },
        curveID: 0x0003,
        kdf: { scheme: 0x0010 },
        x: Buffer.from(jwk.x as string, "base64url"),
        y: Buffer.from(jwk.y as string, "base64url"),
      };
    } else {
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      privateKey = pair.privateKey;
      const n = Buffer.from(pair.publicKey.export({ format: "jwk" }).n as string, "base64url");
      if (realAk.structure.type !== 0x0001) throw new Error("the fixture's AK is not RSA");
      structure = {
        ...realAk.structure,
        scheme: { scheme: kind === "rsapss" ? 0x0016 : 0x0014, hashAlg: 0x000b },
        modulus: n,
      };
    }
    const ak = parseTpm2Public(marshalTpm2Public(structure));
    const signAttest = (a: Buffer): Buffer => {
      if (kind === "ecdsa") {
        const rs = sign("sha256", a, { key: privateKey, dsaEncoding: "ieee-p1363" });
        return Buffer.concat([u16(0x0018), u16(0x000b), sized(rs.subarray(0, 32)), sized(rs.subarray(32))]);
      }
      const padding = kind === "rsapss" ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      const sig = sign("sha256", a, { key: privateKey, padding, saltLength: 32 });
      return Buffer.concat([u16(kind === "rsapss" ? 0x0016 : 0x0014), u16(0x000b), sized(sig)]);
    };
    return { ak, signAttest };
  }

  const rsa = standIn("rsassa");
  const resigned = (a: Buffer, signer = rsa) => ({
    ...quote,
    attest: b64(a),
    signature: b64(signer.signAttest(a)),
  });
  const check = (a: Buffer): QuoteCheck =>
    failure(() => verifyQuote({ ak: rsa.ak, request, quote: resigned(a) })).check;

  // TPMS_ATTEST: magic (4) type (2) qualifiedSigner (2 + 34) extraData (2 + 32) clockInfo (17)
  // firmwareVersion (8), then TPMS_QUOTE_INFO: count (4), hash (2), sizeofSelect (1), pcrSelect (3).
  const extraDataAt = 4 + 2 + 2 + 34;
  const quoteInfoAt = extraDataAt + 2 + 32 + 17 + 8;
  const with_ = (at: number, bytes: number[]): Buffer => {
    const a = Buffer.from(attest);
    Buffer.from(bytes).copy(a, at);
    return a;
  };

  test("the unaltered TPMS_ATTEST signed again verifies (RSASSA, RSAPSS and ECDSA stand-ins)", () => {
    expect(attest.readUInt16BE(4 + 2)).toBe(34); // qualifiedSigner: a SHA-256 Name
    expect(attest.subarray(extraDataAt + 2, extraDataAt + 34).toString("base64")).toBe(request.nonce);
    for (const kind of ["rsassa", "rsapss", "ecdsa"] as const) {
      const signer = standIn(kind);
      expect(verifyQuote({ ak: signer.ak, request, quote: resigned(attest, signer) }).pcrs.size).toBe(2);
    }
  });

  test("magic other than TPM_GENERATED_VALUE: magic", () => {
    expect(check(with_(0, [0xff, 0x54, 0x43, 0x48]))).toBe("magic");
  });

  test("type TPM_ST_ATTEST_CERTIFY, not a quote: type", () => {
    expect(check(with_(4, [0x80, 0x17]))).toBe("type");
  });

  test("another nonce in extraData: nonce", () => {
    expect(check(with_(extraDataAt + 2, [0, 0, 0, 0]))).toBe("nonce");
  });

  test("PCR 6 selected too, or another bank: selection", () => {
    expect(check(with_(quoteInfoAt + 4 + 2 + 1, [0x70]))).toBe("selection");
    const bank = attest.readUInt16BE(quoteInfoAt + 4);
    expect(check(with_(quoteInfoAt + 4, bank === 0x0004 ? [0, 0x0b] : [0, 0x04]))).toBe("selection");
  });

  test("another pcrDigest: pcrDigest", () => {
    expect(check(with_(attest.length - 1, [attest[attest.length - 1] ^ 1]))).toBe("pcrDigest");
  });

  test("a trailing byte or a cut structure: format", () => {
    expect(check(Buffer.concat([attest, Buffer.from([0])]))).toBe("format");
    expect(check(attest.subarray(0, attest.length - 3))).toBe("format");
  });

  test("a signature in another scheme than the AK's: signature", () => {
    const pss = standIn("rsapss");
    const asPss = { ...quote, signature: b64(pss.signAttest(attest)) };
    expect(failure(() => verifyQuote({ ak: rsa.ak, request, quote: asPss })).message).toMatch(
      /the signature is RSAPSS\/SHA256, the AK signs RSASSA\/SHA256/,
    );
  });
});

test("a TPM 1.2 AIK that does not sign RSASSA-PKCS1-v1_5 SHA-1: key", () => {
  const f = FIXTURES.find((g) => g.tpm === "1.2") as Fixture;
  if (f.ak.tpm !== "1.2") throw new Error("not a TPM 1.2 AK");
  const structure = f.ak.structure;
  const info = parseTpm12PubKey(
    marshalTpm12PubKey({ ...structure, algorithmParms: { ...structure.algorithmParms, sigScheme: 0x0004 } }),
  );
  const { request, quote } = f.quotes[0];
  expect(failure(() => verifyQuote({ ak: info, request, quote })).check).toBe("key");
});

describe("makeQuoteRequest", () => {
  test("a fresh 32-byte nonce and id each time, PCRs ascending, the bank defaulted per version", () => {
    const a = makeQuoteRequest({ tpm: "2.0", pcrs: [5, 4] });
    const b = makeQuoteRequest({ tpm: "1.2", pcrs: [4] });
    expect(a).toMatchObject({ tpm: "2.0", pcrs: [4, 5], bank: "sha256" });
    expect(b).toMatchObject({ tpm: "1.2", pcrs: [4], bank: "sha1" });
    expect(Buffer.from(a.nonce, "base64")).toHaveLength(32);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.id).not.toBe(b.id);
  });

  test.each([
    [{ tpm: "1.2" as const, pcrs: [4], bank: "sha256" as const }, /TPM 1.2 quote is over the sha1 bank/],
    [{ tpm: "2.0" as const, pcrs: [] }, /at least one PCR/],
    [{ tpm: "2.0" as const, pcrs: [24] }, /PCR 24 is not a PCR/],
    [{ tpm: "2.0" as const, pcrs: [4, 4] }, /PCR 4 is named twice/],
  ])("refuses %j", (args, message) => {
    expect(() => makeQuoteRequest(args)).toThrow(message);
  });
});
