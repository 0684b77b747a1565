/**
 * Guest, declared once. Its disk is a qcow2 overlay on a read-only base image: made from the base
 * once, kept across restarts, removed only with the guest. What changes the overlay's identity
 * (where it is, what backs it) or the domain's name replaces the guest; the rest restarts it, and
 * only when the running domain differs (../domain.ts).
 */
import {
  defineResource,
  driftMarker,
  markerOf,
  type ChangeClasses,
  type ResourceDefinition,
} from "../../core/define";
import type { Artifact } from "../../core/ownership";
import { ArtifactExistsError, ArtifactMissingError, type Dom0 } from "../../dom0/dom0";
import { providerVersion } from "../../version";
import { renderXlConfig } from "../../xl/config";
import { renderGuestConfig } from "../../xl/domains";
import { observeGuestConfig } from "../../xl/observe";
import {
  adoptDomain,
  createDomain,
  deleteDomain,
  dom0Of,
  domainArtifacts,
  configSeen,
  inspectDomain,
  updateDomain,
  type DomainKind,
} from "../domain";
import { configPathOf } from "../stubdom";
import { VTPM_READY } from "../vtpm/args";
import { guestDomainOf, guestSchema, kernelOf, overlayPathOf, type GuestInputs } from "./args";
import { guestInputsFromConfig } from "./observe";

export interface GuestExtra {
  readonly domid: number | null;
  /** The overlay's backing file as `qemu-img info` reports it. */
  readonly overlayBackingFile: string | null;
  /** The running guest has its vTPM attached (`xl vtpm-list`). */
  readonly vtpmAttached: boolean;
}

const changes: ChangeClasses<GuestInputs> = {
  connection: "replace",
  name: "replace",
  allowedRoots: "inPlace",
  baseImage: "replace",
  baseImageFormat: "replace",
  overlayPath: "replace",
  configDir: "inPlace",
  memoryMiB: "restart",
  vcpus: "restart",
  bootLoader: "restart",
  kernel: "restart",
  ramdisk: "restart",
  cmdline: "restart",
  vifs: "restart",
  vtpm: "restart",
  extraDisks: "restart",
  running: "inPlace",
  vtpmReadyTimeoutSec: "inPlace",
  adopt: "inPlace",
};

const kind: DomainKind<GuestInputs> = {
  what: "guest",
  servesOthers: false,
  renderConfig: (v) =>
    renderXlConfig(
      renderGuestConfig(guestDomainOf(v)),
      `guest ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
    ),
  // xl would fail on a vTPM not yet listening.
  beforeStart: async (dom0, v) => {
    if (v.vtpm) await dom0.waitForConsole(v.vtpm, VTPM_READY, v.vtpmReadyTimeoutSec);
  },
  backendOf: (v) => v.vtpm,
};

const overlayOf = (v: GuestInputs): Artifact => ({
  type: "file",
  name: overlayPathOf(v),
  role: "guest overlay",
  property: "overlayPath",
});

/**
 * The vifs' backend interfaces that have a name of their own: the guest's on the host, so that no
 * other interface takes the name and a MemberPort knows whose port it moves.
 */
const vifLinksOf = (v: GuestInputs): Artifact[] =>
  v.vifs.flatMap((vif, i) =>
    vif.vifname
      ? [{ type: "link", name: vif.vifname, role: "guest vif", property: `vifs.${i}.vifname` }]
      : [],
  );

/** A new overlay on the base image, never over an existing one, with errors that say the fix. */
async function createOverlay(dom0: Dom0, v: GuestInputs): Promise<void> {
  try {
    await dom0.createOverlay(v.baseImage, v.baseImageFormat, overlayPathOf(v), v.name);
  } catch (e) {
    if (e instanceof ArtifactExistsError) {
      throw new Error(
        `guest overlay ${overlayPathOf(v)} already exists on ${dom0.endpoint}; pulumi-tvd never overwrites a guest's disk. ` +
          "Set adopt: true to take the existing guest over, or choose another overlayPath",
      );
    }
    if (e instanceof ArtifactMissingError) {
      throw new Error(
        `base image ${v.baseImage} does not exist on ${dom0.endpoint}; copy the template there or fix baseImage`,
      );
    }
    throw e;
  }
}

/**
 * A guest never gets a vTPM's or a manager's key image as a disk: whatever its access, a guest
 * that can read or write it can leak or corrupt every key in it.
 */
async function refuseKeyImages(dom0: Dom0, v: GuestInputs): Promise<void> {
  if (!v.extraDisks.length) return;
  const records = await dom0.owners(v.extraDisks.map((d) => ({ type: "file" as const, name: d.target })));
  const keyImages = [...records.values()].filter((r) => r.role?.includes("key image"));
  if (keyImages.length) {
    throw new Error(
      `refusing to attach ${keyImages.map((r) => `${r.key.replace(/^file:/, "")} (the ${r.role} of ${r.owner})`).join(", ")} ` +
        `to guest ${v.name} on ${dom0.endpoint}: a key image is never a guest's disk; remove it from extraDisks`,
    );
  }
}

export const definition: ResourceDefinition<GuestInputs, GuestExtra> = {
  kind: "Guest",
  schema: guestSchema,
  shape: guestSchema.shape,
  changes,
  derived: (v) => ({ overlayPath: overlayPathOf(v), kernel: kernelOf(v) }),
  artifacts: (v) => [...domainArtifacts(v, kind.what), overlayOf(v), ...vifLinksOf(v)],
  uses: (v) =>
    v.extraDisks.map((d, i) => ({
      type: "file",
      name: d.target,
      role: "guest extra disk",
      property: `extraDisks.${i}.target`,
    })),
  id: (v) => v.name,
  deleteBeforeReplace: true,

  async observe(ctx, v) {
    const report = await inspectDomain(dom0Of(ctx), v, [{ role: "overlay", path: overlayPathOf(v) }]);
    const config = report.files[configPathOf(v)];
    const overlay = report.files[overlayPathOf(v)];
    const seen: Record<string, unknown> = {
      ...configSeen(kind, v, config, observeGuestConfig, (o) => guestInputsFromConfig(o, v)),
      running: report.domain.running,
    };
    // An overlay that is not qcow2, or whose header names its backing file past the bytes INSPECT
    // reads (no `qemu-img create` writes one), tells nothing about its base: no drift is claimed.
    const backing = overlay?.qcow2?.backingFile;
    if (!overlay?.exists) seen.overlayPath = driftMarker(overlayPathOf(v), "missing");
    // An overlay rebased out of band no longer derives from the declared base.
    else if (backing !== undefined && backing !== v.baseImage)
      seen.baseImage = driftMarker(v.baseImage, "foreign", `the overlay is backed by ${backing}`);
    return {
      gone: !config?.exists && !overlay?.exists && !report.domain.running,
      seen: seen as Partial<GuestInputs>,
      extra: {
        domid: report.domain.domid ?? null,
        overlayBackingFile: backing ?? null,
        vtpmAttached: report.domain.vtpms.length > 0,
      },
    };
  },

  async create(ctx, v) {
    const dom0 = dom0Of(ctx);
    await refuseKeyImages(dom0, v);
    if (v.adopt) return adoptDomain(kind, dom0, v, (await definition.observe(ctx, v)).seen);
    await createDomain(
      kind,
      dom0,
      v,
      { path: overlayPathOf(v), make: () => createOverlay(dom0, v) },
      ctx.resumed,
    );
  },

  async update(ctx, v) {
    const dom0 = dom0Of(ctx);
    await refuseKeyImages(dom0, v);
    const now = await definition.observe(ctx, v);
    const foreign = markerOf(now.seen.baseImage);
    if (foreign) {
      throw new Error(
        `guest ${v.name}'s overlay ${overlayPathOf(v)} on ${dom0.endpoint} is backed by ${now.extra.overlayBackingFile}, ` +
          `not the declared base ${v.baseImage}; pulumi-tvd does not rebase a disk it did not build. Rebase it back ` +
          `(qemu-img rebase -u -b ${v.baseImage} -F ${v.baseImageFormat} ${overlayPathOf(v)}) if it holds that base's data, ` +
          "or replace the guest (pulumi up --replace) to start over from the base",
      );
    }
    // An overlay gone out of band: what it held is lost already; a fresh one lets the guest boot.
    const missing = markerOf(now.seen.overlayPath)?.what === "missing";
    await updateDomain(kind, ctx, v, missing ? { prepare: () => createOverlay(dom0, v), restart: true } : {});
  },

  async delete(ctx, v) {
    await deleteDomain(kind, ctx, v, [overlayOf(v)]);
  },
};

export const guestLifecycle = defineResource(definition);
