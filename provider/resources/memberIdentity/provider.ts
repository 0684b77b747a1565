/**
 * MemberIdentity, declared once. Computed where Pulumi runs; no dom0 is contacted. The member's
 * SSH host key is its identity and survives every change but a new name: create makes it and
 * both certificates; every other change (names, lifetime, rotation, a new CA) reissues the
 * certificates for the same host key, so that clients pinning the key or trusting the CA see no
 * change of identity. The owner and SRK auth of the member's vTPM are made at create too and kept:
 * the member's agent takes its TPM with them (seed.agent), and a new value would lock it out.
 */
import { randomBytes } from "node:crypto";
import { defineResource, storedExtra, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import {
  describeCertificate,
  generateSshKeyPair,
  publicKeyFingerprint,
  signHostCertificate,
  type SshKeyPair,
} from "../../pki/ssh";
import { issueIdentityCertificate } from "../../pki/x509";
import {
  CA_SECRETS,
  memberIdentitySchema,
  namesOfPrincipals,
  principalsOf,
  type MemberIdentityExtra,
  type MemberIdentityInputs,
} from "./args";

/** The CA's private keys are not kept (CA_SECRETS): its public halves identify it. */
const changes: ChangeClasses<MemberIdentityInputs> = {
  memberName: "replace",
  hostnames: "inPlace",
  ipAddresses: "inPlace",
  caCertPem: "inPlace",
  caKeyPem: "inPlace",
  sshCaPrivateKey: "inPlace",
  sshCaPublicKey: "inPlace",
  rotation: "inPlace",
  validityDays: "inPlace",
};

/** The member's TPM auth values: 32 random bytes each, made once like the host key. */
export interface TpmAuth {
  readonly tpmOwnerAuth: string;
  readonly tpmSrkAuth: string;
}

function newTpmAuth(): TpmAuth {
  return { tpmOwnerAuth: randomBytes(32).toString("hex"), tpmSrkAuth: randomBytes(32).toString("hex") };
}

/**
 * The TPM auth a member was created with. A member stored before there were any gets new ones:
 * no agent could have taken its TPM with others.
 */
function tpmAuthOf(state: Record<string, unknown>): TpmAuth {
  const { tpmOwnerAuth, tpmSrkAuth } = state;
  return typeof tpmOwnerAuth === "string" && typeof tpmSrkAuth === "string"
    ? { tpmOwnerAuth, tpmSrkAuth }
    : newTpmAuth();
}

/** Both certificates for `hostKey`, with fresh serials. */
async function issue(
  v: MemberIdentityInputs,
  hostKey: SshKeyPair,
  tpm: TpmAuth,
): Promise<MemberIdentityExtra> {
  const x509 = issueIdentityCertificate({
    caCertPem: v.caCertPem,
    caKeyPem: v.caKeyPem,
    commonName: v.memberName,
    dnsNames: v.hostnames,
    ipAddresses: v.ipAddresses,
    validityDays: v.validityDays,
  });
  const ssh = await signHostCertificate({
    caPrivateKey: v.sshCaPrivateKey,
    hostPublicKey: hostKey.publicKey,
    identity: v.memberName,
    principals: principalsOf(v),
    validityDays: v.validityDays,
  });
  // ssh-keygen signs with any key it is given; a certificate clients would reject must not land.
  const signedBy = (await describeCertificate(ssh.certificate)).signingCaFingerprint;
  const expected = publicKeyFingerprint(v.sshCaPublicKey);
  if (signedBy !== expected) {
    throw new Error(
      `sshCaPrivateKey (${signedBy}) is not the key of sshCaPublicKey (${expected}); pass the keys of one TvdAuthority`,
    );
  }
  return {
    sshHostPrivateKey: hostKey.privateKey,
    sshHostPublicKey: hostKey.publicKey,
    sshHostKeyFingerprint: hostKey.fingerprint,
    sshHostCertificate: ssh.certificate,
    sshCertSerial: String(ssh.serial),
    x509CertPem: x509.certPem,
    x509KeyPem: x509.keyPem,
    x509Serial: x509.serial,
    ...tpm,
  };
}

/** The host key a member was created with, from its stored outputs. */
function hostKeyOf(state: Record<string, unknown>): SshKeyPair {
  const { sshHostPrivateKey, sshHostPublicKey } = state;
  if (typeof sshHostPrivateKey !== "string" || typeof sshHostPublicKey !== "string") {
    throw new Error(
      "the stored MemberIdentity holds no SSH host key; replace the resource (pulumi up --replace <urn>) to make a new one",
    );
  }
  return {
    privateKey: sshHostPrivateKey,
    publicKey: sshHostPublicKey,
    fingerprint: publicKeyFingerprint(sshHostPublicKey),
  };
}

export const definition: ResourceDefinition<MemberIdentityInputs, MemberIdentityExtra> = {
  kind: "MemberIdentity",
  schema: memberIdentitySchema,
  shape: memberIdentitySchema.shape,
  changes,
  secrets: CA_SECRETS,
  // The TVD's CA keys live in the TvdAuthority's state only.
  transient: CA_SECRETS,
  id: (v) => v.memberName,

  /**
   * The state is the identity; what can be observed is OpenSSH's own reading of the stored host
   * certificate, whose principals are reported as the names it really certifies.
   */
  async observe(ctx) {
    const cert = await describeCertificate(String(ctx.state.sshHostCertificate));
    return {
      gone: false,
      seen: namesOfPrincipals(cert.principals),
      extra: {
        ...(storedExtra(definition, ctx.state) as unknown as MemberIdentityExtra),
        sshCertSerial: cert.serial,
      },
    };
  },

  async create(_ctx, v) {
    return issue(v, await generateSshKeyPair(`${v.memberName} host key`), newTpmAuth());
  },

  /** Reissues both certificates for the host key the member was created with; the TPM auth stays. */
  async update(ctx, v) {
    return issue(v, hostKeyOf(ctx.state), tpmAuthOf(ctx.state));
  },

  /** The identity lived only in the stack's state. */
  async delete() {},
};

export const memberIdentityLifecycle = defineResource(definition);
