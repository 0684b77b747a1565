/**
 * SeedImage, declared once. The image is built where Pulumi runs (renderSeedFiles +
 * mkfs.vfat/mcopy) and written to the dom0 in one atomic round trip, only where no file is or
 * over a file this resource owns: a file at `path` that is another's (a vTPM's key image) is
 * refused by the claim, never overwritten. Read hashes it on the dom0: an image missing or not the
 * one written shows as drift on `path`, and `up` writes it again.
 */
import { createHash } from "node:crypto";
import { AGENT_SEED_FILE, agentBinary } from "../../cloudinit/agent";
import { buildSeedImage } from "../../cloudinit/image";
import { renderSeedFiles } from "../../cloudinit/render";
import {
  defineResource,
  driftMarker,
  type ChangeClasses,
  type Context,
  type ResourceDefinition,
} from "../../core/define";
import type { Artifact } from "../../core/ownership";
import type { FileReport } from "../../dom0/inspect";
import { memberSeedOf, SEED_SECRETS, seedImageSchema, seedPathOf, type SeedImageInputs } from "./args";

export interface SeedImageExtra {
  /** sha256 of the image pulumi-tvd built and wrote: what the dom0 should hold. */
  readonly sha256?: string;
}

/** The image is derived data: any change but a new place rewrites it in place. */
const changes: ChangeClasses<SeedImageInputs> = {
  connection: "replace",
  name: "inPlace",
  path: "replace",
  allowedRoots: "inPlace",
  sizeKiB: "inPlace",
  // Often unknown at preview (certificates from other resources): still only a rewrite.
  seed: "inPlace",
  adopt: "inPlace",
};

const imageOf = (v: SeedImageInputs): Artifact => ({
  type: "file",
  name: seedPathOf(v),
  role: "seed image",
  property: "path",
});

/**
 * What is wrong with the file at the image's path, or undefined when it is the image written.
 * Before anything was written (no `sha256` yet) any file counts as it. Pure.
 */
export function seedDrift(file: FileReport | undefined, sha256: string | undefined) {
  if (!file?.exists) return "missing";
  return sha256 !== undefined && file.sha256 !== sha256 ? "changed" : undefined;
}

/**
 * The seed volume's files: the three NoCloud files, and the agent binary when the seed has an
 * agent; and the volume's size, grown to hold the binary (a few MiB) when sizeKiB is too small.
 */
export function seedVolumeOf(v: SeedImageInputs): {
  files: Record<string, string | Buffer>;
  sizeKiB: number;
} {
  const files: Record<string, string | Buffer> = { ...renderSeedFiles(memberSeedOf(v)) };
  if (!v.seed.agent) return { files, sizeKiB: v.sizeKiB };
  const binary = agentBinary();
  files[AGENT_SEED_FILE] = binary;
  // vfat's tables and the text files fit in 512 KiB at these sizes.
  return { files, sizeKiB: Math.max(v.sizeKiB, Math.ceil(binary.length / 1024) + 512) };
}

/** Renders, builds and writes the image; a missing mkfs.vfat or mcopy fails before the write. */
async function write(ctx: Context, v: SeedImageInputs): Promise<SeedImageExtra> {
  const volume = seedVolumeOf(v);
  const image = await buildSeedImage(volume.files, volume.sizeKiB);
  // 0600: the image holds the member's private keys. The dom0 checks size and hash before the rename.
  await ctx.dom0!.writeFileAtomic(seedPathOf(v), image, "0600", v.name);
  return { sha256: createHash("sha256").update(image).digest("hex") };
}

export const definition: ResourceDefinition<SeedImageInputs, SeedImageExtra> = {
  kind: "SeedImage",
  schema: seedImageSchema,
  shape: seedImageSchema.shape,
  changes,
  secrets: SEED_SECRETS,
  derived: (v) => ({ path: seedPathOf(v) }),
  artifacts: (v) => [imageOf(v)],
  id: (v) => seedPathOf(v),
  deleteBeforeReplace: true,

  async observe(ctx, v) {
    const path = seedPathOf(v);
    const file = (await ctx.dom0!.inspect(v.name, [{ role: "checksum", path }])).files[path];
    const sha256 = typeof ctx.state.sha256 === "string" ? ctx.state.sha256 : undefined;
    const drift = seedDrift(file, sha256);
    return { gone: false, seen: drift ? { path: driftMarker(path, drift) } : {}, extra: { sha256 } };
  },

  /** The path is claimed already: nothing was there, or what was there is adopted. */
  async create(ctx, v) {
    return write(ctx, v);
  },

  /**
   * A changed seed, or drift, rewrites the image in place, only over a file this resource owns:
   * one put at its path by anyone else since is refused (the claim is ours when it is).
   */
  async update(ctx, v) {
    await ctx.dom0!.claim(ctx.owner, [imageOf(v)], v.adopt);
    return write(ctx, v);
  },

  async delete(ctx, v) {
    if (ctx.owns(imageOf(v))) await ctx.dom0!.removeFiles([seedPathOf(v)]);
  },
};

export const seedImageLifecycle = defineResource(definition);
