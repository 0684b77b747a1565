/**
 * TvdAuthority lifecycle. Like Pulumi's tls and random providers it computes where Pulumi runs
 * and contacts no dom0: create makes the keys, the state is the only copy, and delete has
 * nothing to remove.
 */
import type * as pulumi from "@pulumi/pulumi";
import {
  checkWith,
  localDiffResult,
  parseInputs,
  readResult,
  userProps,
  userSetOf,
  wireSafe,
} from "../../dynamic";
import { generateSshKeyPair } from "../../pki/ssh";
import { createTvdCa } from "../../pki/x509";
import { providerVersion } from "../../version";
import { tvdAuthoritySchema, type TvdAuthorityInputs, type TvdAuthorityOutputs } from "./args";
import { diffTvdAuthority } from "./diff";

const parse = (props: Record<string, unknown>) => parseInputs(tvdAuthoritySchema, "TvdAuthority", props);

async function createAuthority(
  v: TvdAuthorityInputs,
  userSet: Record<string, unknown>,
): Promise<TvdAuthorityOutputs> {
  const ca = createTvdCa({ tvdName: v.tvdName, validityDays: v.validityDays });
  const sshCa = await generateSshKeyPair(`${v.tvdName} TVD SSH CA`);
  return wireSafe({
    ...v,
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    caSerial: ca.serial,
    sshCaPublicKey: sshCa.publicKey,
    sshCaPrivateKey: sshCa.privateKey,
    sshCaFingerprint: sshCa.fingerprint,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  });
}

export const tvdAuthorityLifecycle = {
  check: checkWith(tvdAuthoritySchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    return localDiffResult(diffTvdAuthority(olds, news));
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const outs = await createAuthority(parse(props), userProps(props));
    // The serial, not the TVD name: a replacement with the same name is another CA.
    return { id: outs.caSerial, outs };
  },

  /** The state is the CA: there is nothing elsewhere to observe. */
  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    return readResult(id, { gone: false, outputs: userProps(props), inputs: userSetOf(props) });
  },

  /**
   * Every input replaces the CA, so the engine calls update only when no input changed: the keys
   * stay, only the bookkeeping is refreshed.
   */
  async update(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    return {
      outs: wireSafe({ ...userProps(olds), inputKeys: Object.keys(userProps(news)).sort(), providerVersion }),
    };
  },

  /** The CA lived only in the stack's state. */
  async delete(): Promise<void> {},
};
