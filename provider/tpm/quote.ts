/**
 * Quotes, pure: a quote request for a member's agent, and the check of its answer with node's
 * crypto against the AK that credential activation certified (agent/PROTOCOL.md, "Quote").
 *
 * TPM 1.2 (`TPM_Quote`): the signature is RSASSA-PKCS1-v1_5 SHA-1 over TPM_QUOTE_INFO
 * = `01 01 00 00` || "QUOT" || SHA-1(TPM_PCR_COMPOSITE) || externalData, externalData being
 * SHA-1(nonce). The composite carries the PCR values, so a value changed anywhere breaks the
 * signature.
 *
 * TPM 2.0 (`TPM2_Quote`): the signature (TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA, with the AK's
 * scheme) is over the TPMS_ATTEST bytes: magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE,
 * extraData = nonce, TPMS_QUOTE_INFO {pcrSelect, pcrDigest}. The PCR values travel beside it,
 * unsigned; pcrDigest, the signing scheme's hash of their concatenation in ascending PCR
 * order, is what binds them.
 *
 * Order of the checks: what the agent echoes (id, TPM version, nonce, bank), then the signature
 * over the bytes as received, and only then what those signed bytes say. So a replayed quote is
 * named a nonce failure, a forged or altered one a signature failure, and nothing unsigned is
 * interpreted before the signature holds.
 */
import { constants, createHash, randomBytes, verify } from "node:crypto";
import { ByteReader } from "./bytes";
import { AgentMessageError, decodeBase64, isRecord, jsonObject, type TpmPublicKey } from "./challenge";
import { TpmFormatError } from "./errors";
import { ECC_COORDINATE_BYTES } from "./keys";
import { PCR_SIZE, type PcrBank } from "./pvgrub";
import type { Tpm12PublicKey } from "./tpm12";
import { CURVES, HASHES, TPM2_ALG, type Tpm2PublicKey } from "./tpm2";

/** What a quote failed: each failure names one of these and says what it found. */
export type QuoteCheck =
  /** The agent's answer is not the quote of PROTOCOL.md, or answers another request. */
  | "format"
  /** The quote answers another nonce than the one dom0 sent: an old quote replayed. */
  | "nonce"
  /** The signature does not verify with the certified AK over the bytes received. */
  | "signature"
  /** TPMS_ATTEST.magic is not TPM_GENERATED_VALUE: the TPM did not make this structure. */
  | "magic"
  /** TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE: a signed structure of another kind. */
  | "type"
  /** The quoted PCRs or bank are not the ones dom0 asked for. */
  | "selection"
  /** The PCR values given do not hash to the quote's pcrDigest. */
  | "pcrDigest"
  /** The AK cannot sign quotes this way (not an RSA key, another scheme). */
  | "key";

export class QuoteVerificationError extends Error {
  override readonly name = "QuoteVerificationError";
  constructor(
    readonly check: QuoteCheck,
    message: string,
  ) {
    super(`quote: ${check}: ${message}`);
  }
}

/** A PCR whose proved value is not the baseline's. `found` is undefined when it was not quoted. */
export interface PcrDeparture {
  readonly pcr: number;
  readonly expected: string;
  readonly found: string | undefined;
}

/** Proved PCRs that left the baseline: each PCR, with the expected and the found value in hex. */
export class PcrBaselineError extends Error {
  override readonly name = "PcrBaselineError";
  constructor(readonly departures: readonly PcrDeparture[]) {
    super(
      departures
        .map(
          (d) =>
            `PCR ${d.pcr} is ${d.found === undefined ? "not in the quote" : d.found}, the baseline expects ${d.expected}`,
        )
        .join("; "),
    );
  }
}

/** A quote request as dom0 writes it to `data/tvd/quote-request`. */
export interface QuoteRequest {
  readonly id: string;
  readonly tpm: "1.2" | "2.0";
  /** Base64 of the nonce. */
  readonly nonce: string;
  /** Ascending, each once, 0 to 23. */
  readonly pcrs: readonly number[];
  readonly bank: PcrBank;
}

/** What a verified quote proved: the values of the requested PCRs in the bank. */
export interface ProvedPcrs {
  readonly tpm: "1.2" | "2.0";
  readonly bank: PcrBank;
  readonly pcrs: ReadonlyMap<number, Buffer>;
}

const NONCE_BYTES = 32;
const ID_BYTES = 16;
/** The PCRs of a TPM 1.2 and of a PC Client TPM 2.0. */
const PCR_COUNT = 24;

/**
 * A quote request with a fresh random nonce. A TPM 1.2 has only the sha1 bank; a TPM 2.0 quote
 * takes either (the member's vTPM must have the bank allocated).
 */
export function makeQuoteRequest(args: {
  readonly tpm: "1.2" | "2.0";
  readonly pcrs: readonly number[];
  readonly bank?: PcrBank;
}): QuoteRequest {
  const bank = args.bank ?? (args.tpm === "1.2" ? "sha1" : "sha256");
  if (args.tpm === "1.2" && bank !== "sha1") {
    throw new RangeError(`a TPM 1.2 quote is over the sha1 bank, not ${bank}: leave bank out or give "sha1"`);
  }
  const pcrs = [...args.pcrs].sort((a, b) => a - b);
  if (pcrs.length === 0) throw new RangeError("a quote request needs at least one PCR, e.g. [4, 5]");
  pcrs.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= PCR_COUNT) {
      throw new RangeError(`PCR ${p} is not a PCR: they are 0 to ${PCR_COUNT - 1}`);
    }
    if (i > 0 && pcrs[i - 1] === p) throw new RangeError(`PCR ${p} is named twice`);
  });
  return {
    id: randomBytes(ID_BYTES).toString("hex"),
    tpm: args.tpm,
    nonce: randomBytes(NONCE_BYTES).toString("base64"),
    pcrs,
    bank,
  };
}

/** The PCRs a pcrSelect bitmap names, ascending. */
function selectedPcrs(mask: Buffer): number[] {
  const out: number[] = [];
  mask.forEach((byte, i) => {
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
  });
  return out;
}

function checkSelection(what: string, quoted: readonly number[], expected: readonly number[]): void {
  if (quoted.join(",") !== expected.join(",")) {
    throw new QuoteVerificationError(
      "selection",
      `${what} PCRs [${quoted.join(", ")}], dom0 asked for [${expected.join(", ")}]`,
    );
  }
}

/** Runs a parse of signed bytes; a structure that does not parse is a format failure. */
function parsing<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TpmFormatError) throw new QuoteVerificationError("format", error.message);
    throw error;
  }
}

const TPM_SS_RSASSAPKCS1v15_SHA1 = 0x0002;
/** TPM_QUOTE_INFO's version (TPM_STRUCT_VER 1.1.0.0) and fixed "QUOT". */
const QUOTE_INFO_HEAD = Buffer.from([1, 1, 0, 0, 0x51, 0x55, 0x4f, 0x54]);

/**
 * Verifies a TPM 1.2 TPM_Quote: the signature over TPM_QUOTE_INFO built from the composite and
 * this nonce, then the composite's selection. Returns the PCR values the composite proved.
 */
export function verifyTpm12Quote(args: {
  readonly ak: Tpm12PublicKey;
  readonly nonce: Buffer;
  readonly pcrs: readonly number[];
  readonly pcrComposite: Buffer;
  readonly signature: Buffer;
}): Map<number, Buffer> {
  const sigScheme = args.ak.structure.algorithmParms.sigScheme;
  if (sigScheme !== TPM_SS_RSASSAPKCS1v15_SHA1) {
    throw new QuoteVerificationError(
      "key",
      `the AIK's sigScheme is 0x${sigScheme.toString(16)}, not TPM_SS_RSASSAPKCS1v15_SHA1 (0x2) as TPM_Quote with the agent's AIK signs`,
    );
  }
  const sha1 = (b: Buffer): Buffer => createHash("sha1").update(b).digest();
  const quoteInfo = Buffer.concat([QUOTE_INFO_HEAD, sha1(args.pcrComposite), sha1(args.nonce)]);
  const ok = verify(
    "sha1",
    quoteInfo,
    { key: args.ak.key, padding: constants.RSA_PKCS1_PADDING },
    args.signature,
  );
  if (!ok) {
    throw new QuoteVerificationError(
      "signature",
      "the signature does not verify with the AK over TPM_QUOTE_INFO of this composite and nonce: another AK signed it, " +
        "it answers another nonce, or the composite or signature was altered",
    );
  }
  return parsing(() => {
    const r = new ByteReader("TPM_PCR_COMPOSITE", args.pcrComposite);
    const select = r.sized16("select.pcrSelect");
    checkSelection("the composite holds", selectedPcrs(select), args.pcrs);
    const valuesAt = r.offset;
    const values = r.sized32("pcrValue");
    r.end();
    if (values.length !== args.pcrs.length * PCR_SIZE.sha1) {
      r.fail("pcrValue", `${values.length} bytes for ${args.pcrs.length} PCR(s) of 20 bytes`, valuesAt);
    }
    return new Map(args.pcrs.map((p, i) => [p, values.subarray(i * 20, (i + 1) * 20)] as const));
  });
}

const TPM_GENERATED_VALUE = 0xff544347;
const TPM_ST_ATTEST_QUOTE = 0x8018;
const BANK_ALGS: Record<PcrBank, number> = { sha1: TPM2_ALG.SHA1, sha256: TPM2_ALG.SHA256 };

interface Tpm2Signature {
  readonly sigAlg: number;
  readonly hashAlg: number;
  /** RSA: the signature; ECDSA: r || s, each padded to the curve's size (IEEE P1363). */
  readonly bytes: Buffer;
}

function parseTpm2Signature(bytes: Buffer, ak: Tpm2PublicKey): Tpm2Signature {
  const r = new ByteReader("TPMT_SIGNATURE", bytes);
  const algAt = r.offset;
  const sigAlg = r.u16("sigAlg");
  const hashAt = r.offset;
  const hashAlg = r.u16("signature.hash");
  if (!HASHES.has(hashAlg)) {
    r.fail("signature.hash", `0x${hashAlg.toString(16).padStart(4, "0")} is not a supported hash`, hashAt);
  }
  if (sigAlg === TPM2_ALG.RSASSA || sigAlg === TPM2_ALG.RSAPSS) {
    const sig = r.sized16("signature.sig", 512);
    r.end();
    return { sigAlg, hashAlg, bytes: sig };
  }
  if (sigAlg === TPM2_ALG.ECDSA) {
    const size = ak.structure.type === TPM2_ALG.ECC ? curveBytes(ak) : 66;
    const pad = (c: Buffer): Buffer => Buffer.concat([Buffer.alloc(Math.max(0, size - c.length)), c]);
    const rValue = r.sized16("signature.signatureR", 66);
    const sValue = r.sized16("signature.signatureS", 66);
    r.end();
    return { sigAlg, hashAlg, bytes: Buffer.concat([pad(rValue), pad(sValue)]) };
  }
  return r.fail("sigAlg", `0x${sigAlg.toString(16).padStart(4, "0")} is not RSASSA, RSAPSS or ECDSA`, algAt);
}

function curveBytes(ak: Tpm2PublicKey): number {
  const curve = ak.structure.type === TPM2_ALG.ECC ? CURVES.get(ak.structure.curveID) : undefined;
  return curve === undefined ? 66 : ECC_COORDINATE_BYTES[curve];
}

const ALG_NAMES = new Map<number, string>(Object.entries(TPM2_ALG).map(([name, id]) => [id, name]));
const algName = (id: number): string => ALG_NAMES.get(id) ?? `0x${id.toString(16).padStart(4, "0")}`;

function verifyTpm2Signature(ak: Tpm2PublicKey, signed: Buffer, sig: Tpm2Signature): void {
  const scheme = ak.structure.scheme;
  // A restricted AK has a scheme of its own, and the TPM signs with it; a signature in another
  // scheme is not one this AK made.
  if (scheme.scheme !== TPM2_ALG.NULL && (scheme.scheme !== sig.sigAlg || scheme.hashAlg !== sig.hashAlg)) {
    throw new QuoteVerificationError(
      "signature",
      `the signature is ${algName(sig.sigAlg)}/${algName(sig.hashAlg)}, the AK signs ${algName(scheme.scheme)}/${algName(scheme.hashAlg ?? TPM2_ALG.NULL)}`,
    );
  }
  const isEcc = sig.sigAlg === TPM2_ALG.ECDSA;
  if (isEcc !== (ak.structure.type === TPM2_ALG.ECC)) {
    throw new QuoteVerificationError(
      "signature",
      `a ${algName(sig.sigAlg)} signature from an ${algName(ak.structure.type)} AK`,
    );
  }
  const hash = (HASHES.get(sig.hashAlg) as { node: string }).node;
  const key: Parameters<typeof verify>[2] = isEcc
    ? { key: ak.key, dsaEncoding: "ieee-p1363" }
    : sig.sigAlg === TPM2_ALG.RSAPSS
      ? { key: ak.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
      : { key: ak.key, padding: constants.RSA_PKCS1_PADDING };
  if (!verify(hash, signed, key, sig.bytes)) {
    throw new QuoteVerificationError(
      "signature",
      "the signature does not verify with the AK over the TPMS_ATTEST received: another AK signed it, or the " +
        "attestation or signature was altered",
    );
  }
}

/**
 * Verifies a TPM 2.0 TPM2_Quote: the signature over the TPMS_ATTEST bytes with the AK, then
 * magic, type, extraData = nonce, the quoted selection (one bank, these PCRs), and pcrDigest
 * against the PCR values given. Returns those values, now proved.
 */
export function verifyTpm2Quote(args: {
  readonly ak: Tpm2PublicKey;
  readonly nonce: Buffer;
  readonly pcrs: readonly number[];
  readonly bank: PcrBank;
  readonly attest: Buffer;
  readonly signature: Buffer;
  readonly pcrValues: ReadonlyMap<number, Buffer>;
}): Map<number, Buffer> {
  const sig = parsing(() => parseTpm2Signature(args.signature, args.ak));
  verifyTpm2Signature(args.ak, args.attest, sig);
  const attest = parsing(() => {
    const r = new ByteReader("TPMS_ATTEST", args.attest);
    const magic = r.u32("magic");
    const type = r.u16("type");
    r.sized16("qualifiedSigner", 2 + 64);
    const extraData = r.sized16("extraData", 2 + 64);
    r.bytes("clockInfo", 8 + 4 + 4 + 1);
    r.bytes("firmwareVersion", 8);
    if (magic !== TPM_GENERATED_VALUE || type !== TPM_ST_ATTEST_QUOTE) {
      return { magic, type, extraData, selections: [], pcrDigest: Buffer.alloc(0) };
    }
    const count = r.u32("attested.quote.pcrSelect.count");
    const selections: { hash: number; select: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const hash = r.u16(`attested.quote.pcrSelect[${i}].hash`);
      const size = r.u8(`attested.quote.pcrSelect[${i}].sizeofSelect`);
      selections.push({ hash, select: r.bytes(`attested.quote.pcrSelect[${i}].pcrSelect`, size) });
    }
    const pcrDigest = r.sized16("attested.quote.pcrDigest", 64);
    r.end();
    return { magic, type, extraData, selections, pcrDigest };
  });
  if (attest.magic !== TPM_GENERATED_VALUE) {
    throw new QuoteVerificationError(
      "magic",
      `TPMS_ATTEST.magic is 0x${attest.magic.toString(16).padStart(8, "0")}, not TPM_GENERATED_VALUE 0xff544347: ` +
        "the TPM did not make this structure",
    );
  }
  if (attest.type !== TPM_ST_ATTEST_QUOTE) {
    throw new QuoteVerificationError(
      "type",
      `TPMS_ATTEST.type is 0x${attest.type.toString(16).padStart(4, "0")}, not TPM_ST_ATTEST_QUOTE 0x8018`,
    );
  }
  if (!attest.extraData.equals(args.nonce)) {
    throw new QuoteVerificationError(
      "nonce",
      `TPMS_ATTEST.extraData is ${attest.extraData.toString("hex")}, not the nonce sent, ${args.nonce.toString("hex")}: ` +
        "an old quote replayed",
    );
  }
  if (attest.selections.length !== 1 || attest.selections[0].hash !== BANK_ALGS[args.bank]) {
    const banks = attest.selections.map((s) => algName(s.hash)).join(", ");
    throw new QuoteVerificationError(
      "selection",
      `the quote selects the bank(s) [${banks}], dom0 asked for ${args.bank} alone`,
    );
  }
  checkSelection("the quote selects", selectedPcrs(attest.selections[0].select), args.pcrs);
  const given = [...args.pcrValues.keys()].sort((a, b) => a - b);
  checkSelection("the agent gave values for", given, args.pcrs);
  const values = args.pcrs.map((p) => args.pcrValues.get(p) as Buffer);
  values.forEach((v, i) => {
    if (v.length !== PCR_SIZE[args.bank]) {
      throw new QuoteVerificationError(
        "pcrDigest",
        `PCR ${args.pcrs[i]}'s value is ${v.length} bytes, a ${args.bank} PCR is ${PCR_SIZE[args.bank]}`,
      );
    }
  });
  // pcrDigest is made with the signing scheme's hash, whichever bank the PCRs are in.
  const digest = createHash((HASHES.get(sig.hashAlg) as { node: string }).node)
    .update(Buffer.concat(values))
    .digest();
  if (!digest.equals(attest.pcrDigest)) {
    throw new QuoteVerificationError(
      "pcrDigest",
      `the PCR values given hash to ${digest.toString("hex")}, the quote's pcrDigest is ` +
        `${attest.pcrDigest.toString("hex")}: a value was altered, or a PCR changed after the quote`,
    );
  }
  return new Map(args.pcrs.map((p, i) => [p, values[i]] as const));
}

function quoteField(value: Record<string, unknown>, field: string): Buffer {
  try {
    return decodeBase64(value[field], `quote.${field}`);
  } catch (error) {
    if (error instanceof AgentMessageError) throw new QuoteVerificationError("format", error.message);
    throw error;
  }
}

/** The 2.0 quote's `pcrs`: {"<index>": "<hex>"}. */
function quotePcrValues(value: unknown): Map<number, Buffer> {
  if (!isRecord(value))
    throw new QuoteVerificationError("format", "quote.pcrs is not an object of PCR values");
  const out = new Map<number, Buffer>();
  for (const [key, hex] of Object.entries(value)) {
    if (!/^(?:0|[1-9][0-9]?)$/.test(key) || Number(key) >= PCR_COUNT) {
      throw new QuoteVerificationError(
        "format",
        `quote.pcrs names ${JSON.stringify(key)}, not a PCR 0 to 23`,
      );
    }
    if (typeof hex !== "string" || !/^(?:[0-9a-f]{2})+$/.test(hex)) {
      throw new QuoteVerificationError("format", `quote.pcrs["${key}"] is not lowercase hex`);
    }
    out.set(Number(key), Buffer.from(hex, "hex"));
  }
  return out;
}

/**
 * Verifies the agent's answer (JSON text or object) to a quote request against the AK that
 * activation certified (never the AK a report shows now). Throws QuoteVerificationError naming
 * the failed check; returns the PCR values the quote proved.
 */
export function verifyQuote(args: {
  readonly ak: TpmPublicKey;
  readonly request: QuoteRequest;
  readonly quote: unknown;
}): ProvedPcrs {
  const { ak, request } = args;
  let value: Record<string, unknown>;
  try {
    value = jsonObject(args.quote, "quote");
  } catch (error) {
    if (error instanceof AgentMessageError) throw new QuoteVerificationError("format", error.message);
    throw error;
  }
  if (value.version !== 1) {
    throw new QuoteVerificationError("format", `quote.version is ${JSON.stringify(value.version)}, not 1`);
  }
  if (value.id !== request.id) {
    throw new QuoteVerificationError(
      "format",
      `quote.id is ${JSON.stringify(value.id)}, not the request's ${JSON.stringify(request.id)}`,
    );
  }
  if (typeof value.error === "string") {
    throw new QuoteVerificationError("format", `the agent could not quote: ${value.error}`);
  }
  if (value.tpm !== request.tpm || ak.tpm !== request.tpm) {
    throw new QuoteVerificationError(
      "format",
      `quote.tpm is ${JSON.stringify(value.tpm)}, the request is for TPM ${request.tpm}, the AK is a TPM ${ak.tpm} key`,
    );
  }
  const nonce = Buffer.from(request.nonce, "base64");
  const echoed = quoteField(value, "nonce");
  if (!echoed.equals(nonce)) {
    throw new QuoteVerificationError(
      "nonce",
      `the quote answers nonce ${echoed.toString("hex")}, not the one sent, ${nonce.toString("hex")}: an old quote replayed`,
    );
  }
  if (value.bank !== request.bank) {
    throw new QuoteVerificationError(
      "selection",
      `quote.bank is ${JSON.stringify(value.bank)}, dom0 asked for ${request.bank}`,
    );
  }
  const signature = quoteField(value, "signature");
  const pcrs =
    ak.tpm === "1.2"
      ? verifyTpm12Quote({
          ak,
          nonce,
          pcrs: request.pcrs,
          pcrComposite: quoteField(value, "pcrComposite"),
          signature,
        })
      : verifyTpm2Quote({
          ak,
          nonce,
          pcrs: request.pcrs,
          bank: request.bank,
          attest: quoteField(value, "attest"),
          signature,
          pcrValues: quotePcrValues(value.pcrs),
        });
  return { tpm: request.tpm, bank: request.bank, pcrs };
}

/**
 * Compares proved PCRs with a baseline (e.g. `replayPcrs(pvGrubMeasurements(...), bank)`):
 * throws PcrBaselineError naming every baseline PCR whose proved value differs or is missing,
 * with both values in hex. PCRs quoted but not in the baseline are not judged.
 */
export function checkPcrBaseline(
  proved: ReadonlyMap<number, Buffer>,
  baseline: ReadonlyMap<number, Buffer>,
): void {
  const departures: PcrDeparture[] = [];
  for (const pcr of [...baseline.keys()].sort((a, b) => a - b)) {
    const expected = baseline.get(pcr) as Buffer;
    const found = proved.get(pcr);
    if (found === undefined || !found.equals(expected)) {
      departures.push({ pcr, expected: expected.toString("hex"), found: found?.toString("hex") });
    }
  }
  if (departures.length > 0) throw new PcrBaselineError(departures);
}
