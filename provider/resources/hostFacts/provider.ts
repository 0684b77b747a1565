/**
 * HostFacts, declared once. Facts are read, never written: it owns nothing on its dom0, so no
 * input change needs a replacement; create, update and read each probe the host once.
 */
import { defineResource, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import { hostFactsSchema, type HostFactsExtra, type HostFactsInputs } from "./args";

/** A changed connection or directory is an update that probes again. */
const changes: ChangeClasses<HostFactsInputs> = {
  connection: "inPlace",
  xenDataDir: "inPlace",
};

export const definition: ResourceDefinition<HostFactsInputs, HostFactsExtra> = {
  kind: "HostFacts",
  schema: hostFactsSchema,
  shape: hostFactsSchema.shape,
  changes,
  id: (v) => `${v.connection.host}:${v.connection.port}`,

  async observe(ctx, v) {
    return { gone: false, seen: {}, extra: await ctx.dom0!.probeFacts(v.xenDataDir) };
  },

  /** The facts are what observe probes right after. */
  async create() {},
  async update() {},

  /** Facts live only in the stack's state; nothing on the host to remove. */
  async delete() {},
};

export const hostFactsLifecycle = defineResource(definition);
