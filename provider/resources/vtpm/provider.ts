/**
 * Vtpm, declared once. Its UUID is its identity to the manager: made once by check when the user
 * sets none, and kept in state like every default. A new image or UUID loses its keys, so
 * such a change needs allowStateReset; a rename keeps the image and moves the domain.
 */
import { createHash, randomUUID } from "node:crypto";
import { defineResource, driftMarker, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import type { Artifact } from "../../core/ownership";
import { providerVersion } from "../../version";
import { renderXlConfig } from "../../xl/config";
import { renderVtpmConfig } from "../../xl/domains";
import {
  deleteDomain,
  dom0Of,
  domainArtifacts,
  archiveKeyImage,
  observeStubdomain,
  stubdomVerbs,
  type DomainKind,
} from "../domain";
import { imagePathOf } from "../stubdom";
import { VTPM_READY, vtpmSchema, type VtpmInputs } from "./args";

export interface VtpmExtra {
  readonly domid: number | null;
  /** The UUID the running vTPM domain presents to its manager (`xl vtpm-list`). */
  readonly runningUuid: string | null;
}

const changes: ChangeClasses<VtpmInputs> = {
  connection: "replace",
  // A rename keeps the image: the domain is stopped under its old name and started under the new.
  name: "restart",
  manager: "restart",
  allowedRoots: "inPlace",
  imagePath: "resetState",
  imageSizeMiB: "resetState",
  uuid: "resetState",
  memoryMiB: "restart",
  kernel: "restart",
  ramdisk: "restart",
  configDir: "inPlace",
  logLevel: "restart",
  hwInitPcr: "restart",
  maintCmds: "restart",
  readyTimeoutSec: "inPlace",
  running: "inPlace",
  allowStateReset: "inPlace",
  deletionPolicy: "inPlace",
  adopt: "inPlace",
};

const kind: DomainKind<VtpmInputs> = {
  what: "vTPM",
  ready: { text: VTPM_READY, timeoutSec: (v) => v.readyTimeoutSec },
  servesOthers: true,
  backendOf: (v) => v.manager,
  renderConfig: (v) =>
    renderXlConfig(
      renderVtpmConfig({
        name: v.name,
        kernel: v.kernel,
        ramdisk: v.ramdisk,
        memoryMiB: v.memoryMiB,
        image: imagePathOf(v),
        manager: v.manager,
        uuid: String(v.uuid),
        logLevel: v.logLevel,
        hwInitPcr: v.hwInitPcr,
        maintCmds: v.maintCmds,
      }),
      `vTPM ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
    ),
};

const imageOf = (v: VtpmInputs): Artifact => ({
  type: "file",
  name: imagePathOf(v),
  role: "vTPM key image",
  property: "imagePath",
});

/** The namespace of the name-based UUIDs below (RFC 9562 section 5.5), fixed for pulumi-tvd. */
const UUID_NAMESPACE = Buffer.from("5b1d7a6e0c3f4e1fa2b9c4d8e7f60a13", "hex");

/**
 * The UUID of a vTPM whose user declares none: name-based (RFC 9562 version 5) on its owner,
 * `<project>/<stack> Vtpm <name>`, so it comes out the same each time check runs for the same
 * resource. A create cut off after its config was written (or its domain started, binding the
 * image's keys to that UUID) leaves no state behind, and the next up must take up the leftover
 * under the same UUID, not a new one that loses the keys. Outside a Pulumi program (no owner) a
 * random one.
 */
export function defaultVtpmUuid(owner: string | undefined): string {
  if (!owner) return randomUUID();
  const b = createHash("sha1").update(UUID_NAMESPACE).update(owner, "utf8").digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const definition: ResourceDefinition<VtpmInputs, VtpmExtra> = {
  kind: "Vtpm",
  schema: vtpmSchema,
  shape: vtpmSchema.shape,
  changes,
  derived: (v, owner) => ({ imagePath: imagePathOf(v), uuid: v.uuid ?? defaultVtpmUuid(owner) }),
  artifacts: (v) => [
    ...domainArtifacts(v, kind.what),
    imageOf(v),
    { type: "uuid", name: String(v.uuid).toLowerCase(), role: "vTPM UUID", property: "uuid" },
  ],
  id: (v) => v.name,
  deleteBeforeReplace: true,
  stateReset: (v, keys) =>
    `changing ${keys.join(", ")} of vTPM ${v.name} creates a new vTPM image or UUID, and its keys would be lost; ` +
    `set allowStateReset: true to allow it, or revert the change (a missing image at ${imagePathOf(v)} means they are lost already)`,

  async observe(ctx, v) {
    const o = await observeStubdomain(
      kind,
      dom0Of(ctx),
      v,
      (c) => ({
        kernel: c.kernel ?? v.kernel,
        ramdisk: c.ramdisk,
        memoryMiB: c.memoryMiB ?? v.memoryMiB,
        manager: c.vtpm?.backend ?? v.manager,
        uuid: c.vtpm?.uuid ?? v.uuid,
        logLevel: c.options.loglevel as VtpmInputs["logLevel"],
        hwInitPcr: c.options.hwinitpcr,
        maintCmds: c.options.maintcmds === undefined ? undefined : c.options.maintcmds === "1",
      }),
      ["uuid"],
    );
    const runningUuid = o.report.domain.vtpms[0]?.uuid ?? null;
    const seen = { ...o.seen };
    if (runningUuid && runningUuid.toLowerCase() !== String(v.uuid).toLowerCase())
      seen.uuid = driftMarker(String(v.uuid), "changed", `the running domain presents ${runningUuid}`);
    return { gone: o.gone, seen, extra: { domid: o.report.domain.domid ?? null, runningUuid } };
  },

  // An adopted vTPM keeps the UUID its keys are bound to: it must be declared.
  ...stubdomVerbs(kind, (ctx, v) => definition.observe(ctx, v), " (with the vTPM's uuid)"),

  async delete(ctx, v) {
    // The image is the vTPM's keys: by default archived, never deleted; removed with the config
    // only when its policy says destroy.
    await deleteDomain(kind, ctx, v, v.deletionPolicy === "destroy" ? [imageOf(v)] : []);
    if (!ctx.owns(imageOf(v))) return;
    if (v.deletionPolicy === "archive") await archiveKeyImage(ctx, imageOf(v));
    if (v.deletionPolicy === "retain") ctx.keep(imageOf(v));
  },
};

export const vtpmLifecycle = defineResource(definition);
