/**
 * The dom0 side of the agent protocol (agent/PROTOCOL.md): a member's report, parsed into
 * keys; a credential-activation challenge for it; and the check of the agent's response.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { TpmCredentialError, TpmFormatError } from "./errors";
import { makeTpm12Credential, parseTpm12PubKey, type Tpm12PublicKey } from "./tpm12";
import { makeTpm2Credential, parseTpm2Public, type Tpm2PublicKey } from "./tpm2";

export type TpmPublicKey = Tpm12PublicKey | Tpm2PublicKey;

/** A report the agent wrote without an error: every key parsed. */
export interface MemberReport {
  readonly version: 1;
  readonly request: string;
  readonly tpm: "1.2" | "2.0";
  readonly ek: TpmPublicKey;
  readonly srk: TpmPublicKey;
  readonly ak: TpmPublicKey;
}

/** A report (or response) that is not what PROTOCOL.md says, or one that carries the agent's error. */
export class AgentMessageError extends Error {
  override readonly name = "AgentMessageError";
  constructor(
    message: string,
    /** The agent's own `error`, when the message is a well-formed report of a failure. */
    readonly agentError?: string,
  ) {
    super(message);
  }
}

export type Tpm2Challenge = {
  readonly id: string;
  readonly tpm: "2.0";
  readonly credentialBlob: string;
  readonly encryptedSecret: string;
};
export type Tpm12Challenge = {
  readonly id: string;
  readonly tpm: "1.2";
  readonly asym: string;
  readonly sym: string;
};
export type Challenge = Tpm2Challenge | Tpm12Challenge;

/** The secret a challenge hides: 32 bytes, enough that guessing is hopeless on either TPM version. */
const SECRET_BYTES = 32;
const ID_BYTES = 16;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Strict base64: Buffer.from would silently skip characters and make a different blob. */
export function decodeBase64(value: unknown, what: string): Buffer {
  if (typeof value !== "string") throw new AgentMessageError(`${what} is not a string`);
  if (!BASE64.test(value)) throw new AgentMessageError(`${what} is not base64`);
  return Buffer.from(value, "base64");
}

function parseKey(tpm: "1.2" | "2.0", value: unknown, field: "ek" | "srk" | "ak"): TpmPublicKey {
  const bytes = decodeBase64(value, `report.${field}`);
  try {
    return tpm === "1.2" ? parseTpm12PubKey(bytes) : parseTpm2Public(bytes);
  } catch (error) {
    if (error instanceof TpmFormatError) throw new AgentMessageError(`report.${field}: ${error.message}`);
    throw error;
  }
}

/** The agent's JSON (text, or already parsed) as an object. */
export function jsonObject(input: unknown, what: "report" | "response" | "quote"): Record<string, unknown> {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new AgentMessageError(`the ${what} is not JSON: ${(error as Error).message}`);
    }
  }
  if (!isRecord(value)) throw new AgentMessageError(`the ${what} is not a JSON object`);
  return value;
}

/** A report as the agent writes it (JSON text or the parsed object). */
export function parseReport(input: unknown): MemberReport {
  const value = jsonObject(input, "report");
  if (value.version !== 1)
    throw new AgentMessageError(`report.version is ${JSON.stringify(value.version)}, not 1`);
  if (typeof value.request !== "string") throw new AgentMessageError("report.request is not a string");
  if (typeof value.error === "string") {
    throw new AgentMessageError(`the agent could not initialise its TPM: ${value.error}`, value.error);
  }
  const tpm = value.tpm;
  if (tpm !== "1.2" && tpm !== "2.0") {
    throw new AgentMessageError(`report.tpm is ${JSON.stringify(tpm)}, not "1.2" or "2.0"`);
  }
  return {
    version: 1,
    request: value.request,
    tpm,
    ek: parseKey(tpm, value.ek, "ek"),
    srk: parseKey(tpm, value.srk, "srk"),
    ak: parseKey(tpm, value.ak, "ak"),
  };
}

/**
 * A TPM 2.0 AK's Name binds its attributes, so activation proves them too: it must be a
 * restricted signing key that cannot leave its TPM and was generated inside it, or its quotes
 * prove nothing.
 */
function checkTpm2Ak(ak: Tpm2PublicKey): void {
  const a = ak.attributes;
  const missing = (["restricted", "sign", "fixedTPM", "fixedParent", "sensitiveDataOrigin"] as const).filter(
    (k) => !a[k],
  );
  if (missing.length > 0) throw new TpmCredentialError(`the AK is not ${missing.join(", ")}`);
  if (a.decrypt) throw new TpmCredentialError("the AK is also a decryption key");
}

/**
 * A challenge for the report's AK and EK, and the secret the agent must send back. The secret
 * is the only proof: keep it with the challenge and give both to checkResponse.
 */
export function makeChallenge(report: MemberReport): { challenge: Challenge; expectedSecret: Buffer } {
  const id = randomBytes(ID_BYTES).toString("hex");
  const secret = randomBytes(SECRET_BYTES);
  if (report.ek.tpm === "2.0" && report.ak.tpm === "2.0") {
    checkTpm2Ak(report.ak);
    const c = makeTpm2Credential({ ek: report.ek, akName: report.ak.name, secret });
    return {
      challenge: {
        id,
        tpm: "2.0",
        credentialBlob: c.credentialBlob.toString("base64"),
        encryptedSecret: c.encryptedSecret.toString("base64"),
      },
      expectedSecret: secret,
    };
  }
  if (report.ek.tpm === "1.2" && report.ak.tpm === "1.2") {
    const c = makeTpm12Credential({ ek: report.ek, aik: report.ak, secret });
    return {
      challenge: { id, tpm: "1.2", asym: c.asym.toString("base64"), sym: c.sym.toString("base64") },
      expectedSecret: secret,
    };
  }
  throw new TpmCredentialError(`the EK is a TPM ${report.ek.tpm} key and the AK a TPM ${report.ak.tpm} key`);
}

export type ResponseCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): ResponseCheck => ({ ok: false, reason });

/**
 * Whether the agent's response (JSON text or object) answers this challenge with its secret.
 * Never throws: a bad response is a failed check with the reason.
 */
export function checkResponse(challenge: Challenge, expectedSecret: Buffer, input: unknown): ResponseCheck {
  try {
    const value = jsonObject(input, "response");
    if (value.version !== 1) return fail(`response.version is ${JSON.stringify(value.version)}, not 1`);
    if (value.id !== challenge.id) {
      return fail(
        `response.id is ${JSON.stringify(value.id)}, not the challenge's ${JSON.stringify(challenge.id)}`,
      );
    }
    if (typeof value.error === "string")
      return fail(`the agent could not activate the credential: ${value.error}`);
    const secret = decodeBase64(value.secret, "response.secret");
    // The length is public (always SECRET_BYTES); only the content needs the constant-time compare.
    if (secret.length !== expectedSecret.length) {
      return fail(`response.secret is ${secret.length} bytes, not ${expectedSecret.length}`);
    }
    if (!timingSafeEqual(secret, expectedSecret)) {
      return fail(
        "response.secret is not the challenge's secret: the AK is not in the TPM that holds the EK",
      );
    }
    return { ok: true };
  } catch (error) {
    // A malformed response is a failed check, never an exception for the caller.
    if (error instanceof AgentMessageError) return fail(error.message);
    throw error;
  }
}
