/**
 * SeedImage lifecycle. The image is built where Pulumi runs (renderSeedFiles + mkfs.vfat/mcopy)
 * and written to the dom0 in one atomic round trip; read hashes it on the dom0 in one more. check
 * and diff touch no host and build nothing.
 */
import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { buildSeedImage } from "../../cloudinit/image";
import { renderSeedFiles } from "../../cloudinit/render";
import { Dom0 } from "../../dom0/dom0";
import {
  checkWith,
  diffResult,
  observedInputs,
  parseInputs,
  UNKNOWN,
  userProps,
  userSetOf,
  wireSafe,
} from "../../dynamic";
import { providerVersion } from "../../version";
import { memberSeedOf, seedImageSchema, seedPathOf, type SeedImageInputs } from "./args";
import { diffSeedImage, type SeedImageSeen } from "./diff";

const KIND = "SeedImage";
const parse = (props: Record<string, unknown>) => parseInputs(seedImageSchema, KIND, props);

export interface SeedImageOutputs extends SeedImageInputs {
  /** Where the image is, defaults resolved: what a guest attaches as its xvdb. */
  readonly path: string;
  /** sha256 of the image pulumi-tvd built and wrote: what the dom0 should hold. */
  readonly sha256: string;
  readonly present: boolean;
  /** sha256 of the file on the dom0 as the last create, update or read saw it. */
  readonly observedSha256: string | null;
  readonly sizeBytes: number | null;
  readonly providerVersion: string;
}

/** Renders and builds the image; a missing mkfs.vfat or mcopy fails here, before any host is touched. */
async function build(v: SeedImageInputs): Promise<{ image: Buffer; sha256: string }> {
  const image = await buildSeedImage(renderSeedFiles(memberSeedOf(v)), v.sizeKiB);
  return { image, sha256: createHash("sha256").update(image).digest("hex") };
}

async function observe(
  dom0: Dom0,
  v: SeedImageInputs,
  sha256: string,
  userSet: Record<string, unknown>,
): Promise<SeedImageOutputs & { inputKeys: string[] }> {
  const path = seedPathOf(v);
  const file = (await dom0.inspect(v.name, [{ role: "checksum", path }])).files[path];
  return wireSafe({
    ...v,
    path,
    sha256,
    present: file?.exists === true,
    observedSha256: file?.sha256 ?? null,
    sizeBytes: file?.sizeBytes ?? null,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  });
}

/** Builds and writes the image over whatever is at its path (it is derived data), then checks it. */
async function write(v: SeedImageInputs, userSet: Record<string, unknown>): Promise<SeedImageOutputs> {
  const { image, sha256 } = await build(v);
  const dom0 = await Dom0.connect(v.connection);
  // 0600: the image holds the member's private keys.
  await dom0.writeFileAtomic(seedPathOf(v), image, "0600", v.name);
  const outs = await observe(dom0, v, sha256, userSet);
  if (outs.observedSha256 !== sha256) {
    throw new Error(
      `seed image ${outs.path} on ${dom0.endpoint} reads back as sha256 ${outs.observedSha256 ?? "(unreadable)"}, ` +
        `not the ${sha256} written; check the dom0's disk and retry`,
    );
  }
  return outs;
}

function seenOf(olds: Record<string, unknown>): SeedImageSeen {
  return {
    present: olds.present !== false,
    sha256: typeof olds.sha256 === "string" ? olds.sha256 : undefined,
    observedSha256: typeof olds.observedSha256 === "string" ? olds.observedSha256 : null,
  };
}

export const seedImageLifecycle = {
  check: checkWith(seedImageSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    let comparableNews = news;
    if (JSON.stringify(userProps(news)).includes(UNKNOWN)) {
      // At preview a seed made from other resources' outputs is not known yet; it can only
      // rewrite the image in place, so whether it replaces depends on the rest alone.
      comparableNews = { ...news, seed: olds.seed };
      if (JSON.stringify(userProps(comparableNews)).includes(UNKNOWN)) return { changes: true };
    }
    const seen = seenOf(olds);
    const d = diffSeedImage(parse(olds), parse(comparableNews), seen);
    const changed = [...d.changed, ...(comparableNews !== news ? ["seed"] : [])];
    // Drift is a change even when no input changed: `up` writes the image again.
    return diffResult(
      { changed: d.drifted ? [...changed, "observedSha256"] : changed, replaces: d.replaces, restart: false },
      olds,
    );
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const outs = await write(v, userProps(props));
    return { id: outs.path, outs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const userSet = userSetOf(props);
    const v = parse(userSet);
    const sha256 = typeof props.sha256 === "string" ? props.sha256 : "";
    const outs = await observe(await Dom0.connect(v.connection), v, sha256, userSet);
    // A missing or altered image is drift (present, observedSha256), not a deleted resource:
    // the member's disk path stays declared, and `up` writes the image again.
    return { id, props: outs, inputs: wireSafe(observedInputs(userSet, v, v)) };
  },

  /** Any change but a new place (certificates rotated, drift) rewrites the image in place. */
  async update(
    _id: string,
    _olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await write(parse(news), userProps(news)) };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = parse(props);
    await (await Dom0.connect(v.connection)).removeFiles([seedPathOf(v)]);
  },
};
