/**
 * MemberAttestation, declared once (issue 16.2). A member is admitted to its TVD when its vTPM
 * proves, by a quote signed with the AK its VtpmIdentity certified, over a fresh nonce, that its
 * PCRs hold the baseline the program declares (baseline.ts: computed from the kernel, initrd and
 * command line as pv-grub measures them). Create and update ask the member's agent for a quote
 * (agent/PROTOCOL.md, over the member's own xenstore path), verify it in the provider with node's
 * crypto (provider/tpm/quote.ts) and compare it with the baseline. A member that fails is not
 * admitted: its port is held at once, and the record says so (attested false, a refusal naming
 * the PCR and both values) for its MemberPort to fail the `up` with and its TVD to put its
 * certificates on hold; what failed stays as drift, so the next `up` attests again. Read does the
 * same with a new nonce: a PCR that left the baseline is drift on that PCR of `baseline`, a quote
 * that does not verify is drift on `guest`, never accepted silently. Nothing is made on the dom0
 * but the port's hold; delete touches nothing.
 */
import { createHash } from "node:crypto";
import {
  defineResource,
  driftMarker,
  storedExtra,
  type ChangeClasses,
  type Context,
  type ResourceDefinition,
} from "../../core/define";
import type { Dom0 } from "../../dom0/dom0";
import { askRunningMember } from "../memberAgent";
import { holdPort } from "../memberPort/provider";
import {
  checkPcrBaseline,
  makeQuoteRequest,
  parseTpm12PubKey,
  parseTpm2Public,
  PcrBaselineError,
  QuoteVerificationError,
  TpmFormatError,
  verifyQuote,
  type PcrDeparture,
  type TpmPublicKey,
} from "../../tpm";
import {
  memberAttestationSchema,
  type BaselineInputs,
  type MemberAttestationExtra,
  type MemberAttestationInputs,
} from "./args";

const changes: ChangeClasses<MemberAttestationInputs> = {
  connection: "replace",
  // Another member is another attestation.
  guest: "replace",
  // Each of these is re-attested: another key, another baseline must be proved again.
  tpmVersion: "inPlace",
  akPublic: "inPlace",
  baseline: "inPlace",
  // A port to hold on failure; nothing is moved while the member proves its baseline.
  port: "inPlace",
  readyTimeoutSec: "inPlace",
};

/** A read asks the agent again but does not wait as long as a create, which may wait for a boot. */
const READ_TIMEOUT_SEC = 30;

/** Why a member is not admitted: a quote that did not verify, or PCRs off the baseline. */
export type AttestationFailure =
  | { readonly kind: "quote"; readonly error: QuoteVerificationError }
  | { readonly kind: "baseline"; readonly departures: readonly PcrDeparture[] };

export type AttestationOutcome =
  | { readonly ok: true; readonly pcrs: Record<string, string> }
  | {
      readonly ok: false;
      readonly failure: AttestationFailure;
      /** What a quote that verified proved, off the baseline; none when it did not verify. */
      readonly pcrs?: Record<string, string>;
    };

/** The baseline as the quote checker takes it: PCR index to expected bytes. */
export function baselineMap(baseline: BaselineInputs): Map<number, Buffer> {
  return new Map(Object.entries(baseline.pcrs).map(([i, hex]) => [Number(i), Buffer.from(hex, "hex")]));
}

/** SHA-256 of the PCR values in ascending PCR order, hex: the member's pcrDigest output. */
export function pcrDigestOf(pcrs: Readonly<Record<string, string>>): string {
  const values = Object.keys(pcrs)
    .map(Number)
    .sort((a, b) => a - b)
    .map((i) => Buffer.from(pcrs[String(i)], "hex"));
  return createHash("sha256").update(Buffer.concat(values)).digest("hex");
}

/** The certified AK, parsed from its stored public part. */
export function certifiedAk(
  v: Pick<MemberAttestationInputs, "tpmVersion" | "akPublic" | "guest">,
): TpmPublicKey {
  const bytes = Buffer.from(v.akPublic, "base64");
  try {
    return v.tpmVersion === "1.2" ? parseTpm12PubKey(bytes) : parseTpm2Public(bytes);
  } catch (e) {
    if (e instanceof TpmFormatError)
      throw new Error(
        `member ${v.guest}: akPublic is not a TPM ${v.tpmVersion} public key (${e.message}); pass the akPublic ` +
          `output of the member's VtpmIdentity`,
      );
    throw e;
  }
}

/**
 * Judges an agent's answer to `request`: verified against the certified AK, then compared with
 * the baseline. Pure.
 */
export function judgeQuote(
  ak: TpmPublicKey,
  request: ReturnType<typeof makeQuoteRequest>,
  answer: string,
  baseline: BaselineInputs,
): AttestationOutcome {
  let proved: Map<number, Buffer>;
  try {
    proved = new Map(verifyQuote({ ak, request, quote: answer }).pcrs);
  } catch (e) {
    if (e instanceof QuoteVerificationError) return { ok: false, failure: { kind: "quote", error: e } };
    throw e;
  }
  const pcrs = Object.fromEntries(
    [...proved].sort(([a], [b]) => a - b).map(([i, b]) => [String(i), b.toString("hex")]),
  );
  try {
    checkPcrBaseline(proved, baselineMap(baseline));
  } catch (e) {
    if (e instanceof PcrBaselineError)
      return { ok: false, failure: { kind: "baseline", departures: e.departures }, pcrs };
    throw e;
  }
  return { ok: true, pcrs };
}

/** One departure as users read it: the PCR, what the member proved, what the baseline says, and why. */
export function departureText(d: PcrDeparture, baseline: BaselineInputs): string {
  const source = baseline.sources?.[String(d.pcr)];
  const found = d.found === undefined ? "not in the quote" : d.found;
  return (
    `PCR ${d.pcr} is ${found}, the baseline says ${d.expected}` +
    (source ? ` (what the member booted differs from the ${source} declared)` : "")
  );
}

/** The error of a step whose member is not admitted. */
export function notAdmitted(guest: string, failure: AttestationFailure, baseline: BaselineInputs): string {
  const why =
    failure.kind === "quote"
      ? `its quote does not verify against the AK its VtpmIdentity certified: ${failure.error.message}`
      : failure.departures.map((d) => departureText(d, baseline)).join("; ");
  return `member ${guest} is not admitted to its TVD: ${why}`;
}

/**
 * What a refresh shows for a failed attestation: each PCR that left the baseline as a drift
 * marker on that PCR's declared value in `baseline`, a quote that does not verify on `guest`.
 */
export function attestationDrift(
  v: MemberAttestationInputs,
  failure: AttestationFailure,
): Partial<MemberAttestationInputs> {
  if (failure.kind === "quote")
    return {
      guest: driftMarker(v.guest, "changed", `its quote does not verify: ${failure.error.message}`),
    };
  const pcrs = { ...v.baseline.pcrs };
  for (const d of failure.departures)
    pcrs[String(d.pcr)] = driftMarker(
      v.baseline.pcrs[String(d.pcr)],
      "changed",
      `PCR ${d.pcr} is ${d.found ?? "not in the quote"}, the baseline says ${d.expected}`,
    );
  return { baseline: { ...v.baseline, pcrs } };
}

const dom0Of = (ctx: Context): Dom0 => ctx.dom0!;

/** A quote of the baseline's PCRs with a fresh nonce through the member's agent, judged. */
async function attest(
  dom0: Dom0,
  v: MemberAttestationInputs,
  timeoutSec: number,
): Promise<AttestationOutcome> {
  const ak = certifiedAk(v);
  const request = makeQuoteRequest({
    tpm: v.tpmVersion,
    pcrs: Object.keys(v.baseline.pcrs).map(Number),
    bank: v.baseline.bank,
  });
  const answer = await dom0.agentExchange(
    v.guest,
    { write: "quote-request", answer: "quote", token: request.id, value: JSON.stringify(request) },
    timeoutSec,
  );
  return judgeQuote(ak, request, answer, v.baseline);
}

/**
 * Puts the member's port on hold, when it has one, and says so for the error: a member that does
 * not prove its baseline reaches nobody in its TVD from this moment. What stops the hold (a port
 * that is not this stack's, a guest not running) is said instead, never hidden.
 */
async function holdMember(ctx: Context, v: MemberAttestationInputs): Promise<string> {
  if (!v.port) return "";
  const place = {
    connection: v.connection,
    port: v.port.name,
    domain: v.guest,
    bridge: v.port.bridge,
    holdingBridge: v.port.holdingBridge,
  };
  try {
    const endpoint = await holdPort(ctx, place);
    return `; its port ${v.port.name} is held on ${v.port.holdingBridge} on ${endpoint}, out of the TVD network, until it proves its baseline`;
  } catch (e) {
    return `; its port ${v.port.name} could not be held: ${(e as Error).message}`;
  }
}

/** What an attestation proved: the record a create, an update or a refresh that proved it keeps. */
function proof(pcrs: Record<string, string>): MemberAttestationExtra {
  return {
    attested: true,
    pcrs,
    pcrDigest: pcrDigestOf(pcrs),
    attestedAt: new Date().toISOString(),
    refusal: "",
  };
}

/**
 * Attests. A member that does not prove its baseline is not admitted: its port is held at once
 * and the record says why (attested false, refusal naming the PCR and both values), so that its
 * TVD puts its certificates on hold in the CRL and its MemberPort fails the `up` with that reason;
 * the step itself succeeds, leaving what failed as drift for the next `up` to attest again (see
 * unsettled). An agent that cannot be asked fails the step, its port held too.
 */
async function admit(ctx: Context, v: MemberAttestationInputs): Promise<MemberAttestationExtra> {
  let outcome: AttestationOutcome;
  try {
    outcome = await attest(dom0Of(ctx), v, v.readyTimeoutSec);
  } catch (e) {
    const held = await holdMember(ctx, v);
    if (held) (e as Error).message += held;
    throw e;
  }
  if (outcome.ok) return proof(outcome.pcrs);
  const pcrs = outcome.pcrs ?? {};
  return {
    attested: false,
    pcrs,
    pcrDigest: Object.keys(pcrs).length ? pcrDigestOf(pcrs) : "",
    attestedAt: new Date().toISOString(),
    refusal: notAdmitted(v.guest, outcome.failure, v.baseline) + (await holdMember(ctx, v)),
  };
}

/**
 * A record of a failed attestation as drift on the inputs, as a refresh would show it: each PCR
 * the member proved off the baseline on that PCR, a quote that did not verify on `guest`. Pure.
 */
export function unsettledAttestation(
  v: MemberAttestationInputs,
  made: Partial<MemberAttestationExtra>,
): Partial<MemberAttestationInputs> {
  if (made.attested !== false) return {};
  const proved = made.pcrs ?? {};
  if (!Object.keys(proved).length)
    return { guest: driftMarker(v.guest, "changed", made.refusal || "its quote did not verify") };
  const departures = Object.entries(v.baseline.pcrs)
    .filter(([i, hex]) => proved[i] !== hex.toLowerCase())
    .map(([i, hex]) => ({ pcr: Number(i), expected: hex.toLowerCase(), found: proved[i] }));
  return attestationDrift(v, { kind: "baseline", departures });
}

export const definition: ResourceDefinition<MemberAttestationInputs, MemberAttestationExtra> = {
  kind: "MemberAttestation",
  schema: memberAttestationSchema,
  shape: memberAttestationSchema.shape,
  changes,
  // Create and update return what they proved; a second quote would prove nothing more.
  observeAfterWrite: false,
  unsettled: unsettledAttestation,
  id: (v) => v.guest,

  /**
   * Attests again with a fresh nonce. What was proved stays the record (so a refresh that finds
   * the member as it was changes nothing); what left the baseline is drift on the inputs. A member
   * that is not running cannot be asked: its Guest shows that, and the record stands.
   */
  async observe(ctx, v) {
    const stored = storedExtra(definition, ctx.state) as unknown as MemberAttestationExtra;
    const outcome = await askRunningMember(
      attest(dom0Of(ctx), v, Math.min(v.readyTimeoutSec, READ_TIMEOUT_SEC)),
    );
    if (outcome === undefined) return { gone: false, seen: {}, extra: stored };
    if (!outcome.ok) return { gone: false, seen: attestationDrift(v, outcome.failure), extra: stored };
    // A member refused before that proves its baseline now (restarted with its vTPM) is admitted
    // by this proof, verified as any: nothing else would attest it again.
    return { gone: false, seen: {}, extra: stored.attested === false ? proof(outcome.pcrs) : stored };
  },

  async create(ctx, v) {
    return admit(ctx, v);
  },

  /** Another AK, TPM version or baseline, or drift being repaired: proved again, or refused. */
  async update(ctx, v) {
    return admit(ctx, v);
  },

  /** Nothing was made on the dom0: the member's vTPM and its PCRs stay the member's. */
  async delete() {},
};

export const memberAttestationLifecycle = defineResource(definition);
