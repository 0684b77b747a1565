/**
 * VtpmIdentity, declared once. The vTPM of a member speaks through the member's agent
 * (agent/PROTOCOL.md), over the member's own xenstore data path on its dom0: no network. Create
 * asks the agent for a fresh report (the EK, SRK and AK it made with the member's auth), proves
 * the AK lives in the same TPM as the EK by credential activation (TPM 2.0
 * MakeCredential/ActivateCredential, TPM 1.2 the Privacy-CA's ActivateIdentity), and has the
 * TVD's CA certify both. Read asks the vTPM again: another EK or AK means the vTPM was wiped or
 * reset (Xen: a vTPM that cannot load its key comes up with a new identity), shown as drift on
 * `guest`, which `up` accepts only with allowStateReset, by a replacement that attests the new
 * identity and certifies it. A rotation, a new CA or a new lifetime
 * reissues the certificates for the keys on record without asking the TPM anything.
 */
import { randomBytes } from "node:crypto";
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
import { issueTpmKeyCertificate } from "../../pki/x509";
import {
  AgentMessageError,
  checkResponse,
  makeChallenge,
  parseReport,
  parseTpm12PubKey,
  parseTpm2Public,
  publicKeyFingerprint,
  TpmCredentialError,
  type MemberReport,
  type TpmPublicKey,
} from "../../tpm";
import { CA_SECRETS, vtpmIdentitySchema, type VtpmIdentityExtra, type VtpmIdentityInputs } from "./args";

const changes: ChangeClasses<VtpmIdentityInputs> = {
  connection: "replace",
  // Another guest is another TPM; and drift here (a new EK) means the old identity is gone.
  guest: "resetState",
  memberName: "inPlace",
  caCertPem: "inPlace",
  caKeyPem: "inPlace",
  rotation: "inPlace",
  validityDays: "inPlace",
  readyTimeoutSec: "inPlace",
  allowStateReset: "inPlace",
};

/** What the certificates depend on beyond the keys: a change of any reissues both. */
const CERTIFICATE_INPUTS: readonly (keyof VtpmIdentityInputs)[] = [
  "memberName",
  "caCertPem",
  "caKeyPem",
  "rotation",
  "validityDays",
];

/** A read asks the agent again but does not wait as long as a create, which may wait for a boot. */
const READ_TIMEOUT_SEC = 30;

const dom0Of = (ctx: Context): Dom0 => ctx.dom0!;
const memberOf = (v: VtpmIdentityInputs): string => v.memberName ?? v.guest;

/** A fresh report from the member's agent: a new request token, answered with a re-initialised TPM. */
async function freshReport(dom0: Dom0, v: VtpmIdentityInputs, timeoutSec: number): Promise<MemberReport> {
  const token = randomBytes(16).toString("hex");
  const text = await dom0.agentExchange(
    v.guest,
    { write: "request", answer: "report", token, value: token },
    timeoutSec,
  );
  try {
    return parseReport(text);
  } catch (e) {
    if (e instanceof AgentMessageError)
      throw new Error(`member ${v.guest}'s agent on ${dom0.endpoint}: ${e.message}`);
    throw e;
  }
}

/**
 * Credential activation: a secret only the TPM that holds the EK can recover, and only for the
 * AK the report names. The agent's answer proves the AK is that TPM's.
 */
async function activate(dom0: Dom0, v: VtpmIdentityInputs, report: MemberReport): Promise<void> {
  let made: ReturnType<typeof makeChallenge>;
  try {
    made = makeChallenge(report);
  } catch (e) {
    if (e instanceof TpmCredentialError)
      throw new Error(`member ${v.guest}'s AK cannot be attested: ${e.message}`);
    throw e;
  }
  const { challenge, expectedSecret } = made;
  const answer = await dom0.agentExchange(
    v.guest,
    { write: "challenge", answer: "response", token: challenge.id, value: JSON.stringify(challenge) },
    v.readyTimeoutSec,
  );
  const checked = checkResponse(challenge, expectedSecret, answer);
  if (!checked.ok)
    throw new Error(
      `member ${v.guest}'s vTPM did not prove that its AK lives beside its EK (credential activation failed: ` +
        `${checked.reason}); its identity is not certified`,
    );
}

const base64 = (k: TpmPublicKey): string => k.bytes.toString("base64");

/** The keys on record, parsed again from the stored public parts. */
function keysOf(stored: VtpmIdentityExtra): { ek: TpmPublicKey; ak: TpmPublicKey } {
  const parse = (b64: string) => {
    const bytes = Buffer.from(b64, "base64");
    return stored.tpmVersion === "1.2" ? parseTpm12PubKey(bytes) : parseTpm2Public(bytes);
  };
  return { ek: parse(stored.ekPublic), ak: parse(stored.akPublic) };
}

/** Both certificates, fresh serials, for the keys given. */
function certify(v: VtpmIdentityInputs, ek: TpmPublicKey, ak: TpmPublicKey) {
  const issue = (purpose: "ek" | "ak", key: TpmPublicKey) =>
    issueTpmKeyCertificate({
      caCertPem: v.caCertPem,
      caKeyPem: v.caKeyPem,
      commonName: `${memberOf(v)} ${purpose.toUpperCase()}`,
      publicKeyPem: key.key.export({ type: "spki", format: "pem" }).toString(),
      purpose,
      validityDays: v.validityDays,
    });
  const ekCert = issue("ek", ek);
  const akCert = issue("ak", ak);
  return {
    ekCertPem: ekCert.certPem,
    ekCertSerial: ekCert.serial,
    akCertPem: akCert.certPem,
    akCertSerial: akCert.serial,
  };
}

/** Report, activation, certificates: the whole identity of the member's vTPM as it is now. */
async function establish(ctx: Context, v: VtpmIdentityInputs): Promise<VtpmIdentityExtra> {
  const dom0 = dom0Of(ctx);
  const report = await freshReport(dom0, v, v.readyTimeoutSec);
  await activate(dom0, v, report);
  return {
    tpmVersion: report.tpm,
    ekPublic: base64(report.ek),
    akPublic: base64(report.ak),
    srkPublic: base64(report.srk),
    ekFingerprint: publicKeyFingerprint(report.ek.key),
    akFingerprint: publicKeyFingerprint(report.ak.key),
    srkFingerprint: publicKeyFingerprint(report.srk.key),
    akName: (report.ak.tpm === "2.0" ? report.ak.name : report.ak.digest).toString("hex"),
    ...certify(v, report.ek, report.ak),
  };
}

const short = (fingerprint: string) => `sha256:${fingerprint.slice(0, 16)}`;

/** What the vTPM presents now against what is certified: undefined when it is the same identity. */
export function identityDrift(stored: VtpmIdentityExtra, report: MemberReport): string | undefined {
  const ek = publicKeyFingerprint(report.ek.key);
  const ak = publicKeyFingerprint(report.ak.key);
  if (report.tpm !== stored.tpmVersion)
    return `its vTPM is now a TPM ${report.tpm}, certified as a TPM ${stored.tpmVersion}`;
  if (ek !== stored.ekFingerprint)
    return `its vTPM presents another EK (${short(ek)}, certified ${short(stored.ekFingerprint)}): it was wiped or reset`;
  if (ak !== stored.akFingerprint)
    return `its vTPM presents another AK (${short(ak)}, certified ${short(stored.akFingerprint)})`;
  return undefined;
}

export const definition: ResourceDefinition<VtpmIdentityInputs, VtpmIdentityExtra> = {
  kind: "VtpmIdentity",
  schema: vtpmIdentitySchema,
  shape: vtpmIdentitySchema.shape,
  changes,
  secrets: CA_SECRETS,
  transient: CA_SECRETS,
  derived: (v) => ({ memberName: v.guest }),
  // Create and update return all they saw; asking the agent again would make a rotation touch the TPM.
  observeAfterWrite: false,
  id: (v) => v.guest,
  stateReset: (v) =>
    `member ${v.guest}'s vTPM presents a new identity (a new EK or AK: it was wiped or reset, and what was bound ` +
    `to the old keys is gone); set allowStateReset: true to accept it and have the TVD's CA certify the new keys, ` +
    `or restore the vTPM's image from the archive`,

  /**
   * Asks the agent again. A member that is not running cannot be asked: its Guest shows that,
   * and the identity on record stands until it runs again.
   */
  async observe(ctx, v) {
    const stored = storedExtra(definition, ctx.state) as unknown as VtpmIdentityExtra;
    const report = await askRunningMember(
      freshReport(dom0Of(ctx), v, Math.min(v.readyTimeoutSec, READ_TIMEOUT_SEC)),
    );
    if (!report) return { gone: false, seen: {}, extra: stored };
    const drift = stored.ekFingerprint ? identityDrift(stored, report) : undefined;
    // "missing": the identity certified is gone from the vTPM, like a lost key image: up takes the
    // new one only with allowStateReset (a replacement that attests and certifies it).
    const seen = drift
      ? { guest: driftMarker(v.guest, "missing", `the certified identity is gone: ${drift}`) }
      : {};
    return { gone: false, seen, extra: stored };
  },

  async create(ctx, v) {
    return establish(ctx, v);
  },

  /**
   * Another guest, or a new identity accepted with allowStateReset: attest and certify again.
   * Anything else the certificates depend on: reissue them for the keys on record, TPM untouched.
   */
  async update(ctx, v) {
    const stored = storedExtra(definition, ctx.state) as unknown as VtpmIdentityExtra;
    if (ctx.changed.has("guest") || ctx.changed.has("connection") || !stored.ekPublic)
      return establish(ctx, v);
    if (!CERTIFICATE_INPUTS.some((k) => ctx.changed.has(k))) return stored;
    const { ek, ak } = keysOf(stored);
    return { ...stored, ...certify(v, ek, ak) };
  },

  /** The identity lives in the state and in the member's TPM, which stays the member's. */
  async delete() {},
};

export const vtpmIdentityLifecycle = defineResource(definition);
