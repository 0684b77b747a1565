/**
 * TvdAuthority, declared once. Like Pulumi's tls and random providers it computes where Pulumi
 * runs and contacts no dom0: create makes the keys, the state is the only copy, and delete has
 * nothing to remove. What it is made from (its name, its lifetime) is baked into the certificate,
 * so any change makes a new CA, and every member certificate follows it.
 */
import {
  defineResource,
  stateObservation,
  type ChangeClasses,
  type ResourceDefinition,
} from "../../core/define";
import { generateSshKeyPair } from "../../pki/ssh";
import { createTvdCa } from "../../pki/x509";
import { tvdAuthoritySchema, type TvdAuthorityExtra, type TvdAuthorityInputs } from "./args";

const changes: ChangeClasses<TvdAuthorityInputs> = {
  tvdName: "replace",
  validityDays: "replace",
};

export const definition: ResourceDefinition<TvdAuthorityInputs, TvdAuthorityExtra> = {
  kind: "TvdAuthority",
  schema: tvdAuthoritySchema,
  shape: tvdAuthoritySchema.shape,
  changes,
  // The serial, not the TVD name: a replacement with the same name is another CA.
  id: (_v, made) => String(made.caSerial),

  /** The state is the CA: there is nothing elsewhere to observe. */
  async observe(ctx) {
    return stateObservation(definition, ctx.state);
  },

  async create(_ctx, v) {
    const ca = createTvdCa({ tvdName: v.tvdName, validityDays: v.validityDays });
    const sshCa = await generateSshKeyPair(`${v.tvdName} TVD SSH CA`);
    return {
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      caSerial: ca.serial,
      sshCaPublicKey: sshCa.publicKey,
      sshCaPrivateKey: sshCa.privateKey,
      sshCaFingerprint: sshCa.fingerprint,
    };
  },

  /** Every input replaces the CA: the keys stay, only the bookkeeping is refreshed. */
  async update() {},

  /** The CA lived only in the stack's state. */
  async delete() {},
};

export const tvdAuthorityLifecycle = defineResource(definition);
