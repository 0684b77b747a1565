/**
 * MemberIdentity lifecycle. Computed where Pulumi runs; no dom0 is contacted. create makes the
 * member's SSH host key and both certificates; update reissues the certificates for the same
 * host key, so that clients pinning the key or trusting the CA see no change of identity.
 */
import type * as pulumi from "@pulumi/pulumi";
import {
  checkWith,
  comparableInputs,
  localDiffResult,
  observedInputs,
  parseInputs,
  readResult,
  userProps,
  userSetOf,
  wireSafe,
} from "../../dynamic";
import {
  describeCertificate,
  generateSshKeyPair,
  publicKeyFingerprint,
  signHostCertificate,
  type SshKeyPair,
} from "../../pki/ssh";
import { issueIdentityCertificate } from "../../pki/x509";
import { providerVersion } from "../../version";

import {
  CA_SECRETS,
  memberIdentitySchema,
  namesOfPrincipals,
  principalsOf,
  type MemberIdentityInputs,
  type MemberIdentityOutputs,
} from "./args";
import { diffMemberIdentity } from "./diff";

const KIND = "MemberIdentity";
const parse = (props: Record<string, unknown>) => parseInputs(memberIdentitySchema, KIND, props);

/** Both certificates for `hostKey`, with fresh serials, and the outputs that record them. */
async function issue(
  v: MemberIdentityInputs,
  hostKey: SshKeyPair,
  userSet: Record<string, unknown>,
): Promise<MemberIdentityOutputs> {
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
  const publicInputs: Record<string, unknown> = { ...v };
  for (const key of CA_SECRETS) delete publicInputs[key];
  return wireSafe({
    ...(publicInputs as Omit<MemberIdentityInputs, (typeof CA_SECRETS)[number]>),
    sshHostPrivateKey: hostKey.privateKey,
    sshHostPublicKey: hostKey.publicKey,
    sshHostKeyFingerprint: hostKey.fingerprint,
    sshHostCertificate: ssh.certificate,
    sshCertSerial: String(ssh.serial),
    x509CertPem: x509.certPem,
    x509KeyPem: x509.keyPem,
    x509Serial: x509.serial,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  });
}

/** The host key a member was created with, from its stored outputs. */
function hostKeyOf(olds: Record<string, unknown>): SshKeyPair {
  const { sshHostPrivateKey, sshHostPublicKey } = olds;
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

export const memberIdentityLifecycle = {
  check: checkWith(memberIdentitySchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    return localDiffResult(diffMemberIdentity(olds, news));
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const hostKey = await generateSshKeyPair(`${v.memberName} host key`);
    return { id: v.memberName, outs: await issue(v, hostKey, userProps(props)) };
  },

  /**
   * The state is the identity; what can be observed is OpenSSH's own reading of the stored host
   * certificate, whose principals are reported as the names it really certifies.
   */
  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const outputs = userProps(props);
    const userSet = userSetOf(props);
    const seen = await describeCertificate(String(outputs.sshHostCertificate));
    const declared = comparableInputs(memberIdentitySchema, userSet);
    for (const key of CA_SECRETS) delete declared[key];
    const observed = { ...declared, ...namesOfPrincipals(seen.principals) };
    return readResult(id, {
      gone: false,
      outputs: { ...outputs, sshCertSerial: seen.serial },
      inputs: wireSafe(observedInputs(userSet, declared, observed)),
    });
  },

  async update(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await issue(parse(news), hostKeyOf(olds), userProps(news)) };
  },

  /** The identity lived only in the stack's state. */
  async delete(): Promise<void> {},
};
