/**
 * VtpmManager, declared once: its change classes, what it owns on the dom0, how it is read back,
 * and its create, update and delete. Everything else is the shared core (core/define.ts) and the
 * domain steps every domain kind shares (../domain.ts).
 */
import { defineResource, type ChangeClasses, type ResourceDefinition } from "../../core/define";
import { providerVersion } from "../../version";
import { renderXlConfig } from "../../xl/config";
import { renderVtpmManagerConfig } from "../../xl/domains";
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
import {
  MANAGER_READY,
  MANAGER_SECRETS,
  managerMemoryMiB,
  vtpmManagerSchema,
  type VtpmManagerInputs,
} from "./args";

/** Outputs beyond the inputs. */
export interface VtpmManagerExtra {
  readonly domid: number | null;
}

/**
 * Its image holds the keys of every vTPM it serves: what makes a new image (another name or
 * image) resets state and needs allowStateReset. What the domain runs with restarts it, only
 * while no vTPM uses it (checked on the host at update).
 */
const changes: ChangeClasses<VtpmManagerInputs> = {
  connection: "replace",
  name: "resetState",
  imagePath: "resetState",
  imageSizeMiB: "resetState",
  allowedRoots: "inPlace",
  memoryMiB: "restart",
  kernel: "restart",
  ramdisk: "restart",
  configDir: "inPlace",
  tpm2: "restart",
  tpmLocality: "restart",
  iomem: "restart",
  ownerAuth: "restart",
  srkAuth: "restart",
  readyTimeoutSec: "inPlace",
  running: "inPlace",
  allowStateReset: "inPlace",
  adopt: "inPlace",
};

const KEY_IMAGE = "vTPM manager key image";

const kind: DomainKind<VtpmManagerInputs> = {
  what: "vTPM manager",
  ready: { text: MANAGER_READY, timeoutSec: (v) => v.readyTimeoutSec },
  servesOthers: true,
  stopWhenIdle: true,
  renderConfig: (v) =>
    renderXlConfig(
      renderVtpmManagerConfig({
        name: v.name,
        kernel: v.kernel,
        ramdisk: v.ramdisk,
        memoryMiB: managerMemoryMiB(v),
        image: imagePathOf(v),
        iomem: v.iomem,
        tpmLocality: v.tpmLocality,
        tpm2: v.tpm2,
        ownerAuth: v.ownerAuth,
        srkAuth: v.srkAuth,
      }),
      `vTPM manager ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
    ),
  // Mini-OS prints its command line on the console, owner_auth= and srk_auth= included: the log
  // xenconsoled appends it to is made 0600 first (it would create it 0644).
  beforeStart: async (dom0, v) => {
    if ([v.ownerAuth, v.srkAuth].some((a) => a !== undefined && a !== "well-known"))
      await dom0.privateConsoleLog(v.name);
  },
};

export const definition: ResourceDefinition<VtpmManagerInputs, VtpmManagerExtra> = {
  kind: "VtpmManager",
  schema: vtpmManagerSchema,
  shape: vtpmManagerSchema.shape,
  changes,
  secrets: MANAGER_SECRETS,
  derived: (v) => ({ imagePath: imagePathOf(v), memoryMiB: managerMemoryMiB(v) }),
  artifacts: (v) => [
    ...domainArtifacts(v, kind.what),
    { type: "file", name: imagePathOf(v), role: KEY_IMAGE, property: "imagePath" },
  ],
  id: (v) => v.name,
  deleteBeforeReplace: true,
  stateReset: (v, keys) =>
    `changing ${keys.join(", ")} of vTPM manager ${v.name} creates a new manager image, and the keys of every vTPM it ` +
    "serves would be lost; set allowStateReset: true to allow it, or revert the change " +
    `(a missing image at ${imagePathOf(v)} means they are lost already)`,

  async observe(ctx, v) {
    const o = await observeStubdomain(kind, dom0Of(ctx), v, (c) => ({
      kernel: c.kernel ?? v.kernel,
      ramdisk: c.ramdisk,
      memoryMiB: c.memoryMiB ?? v.memoryMiB,
      iomem: c.iomem ? [...c.iomem] : v.iomem,
      tpm2: c.options.tpm2 === "1",
      tpmLocality: c.options.tpmlocality !== undefined ? Number(c.options.tpmlocality) : undefined,
      ownerAuth: c.options.owner_auth,
      srkAuth: c.options.srk_auth,
    }));
    return { gone: o.gone, seen: o.seen, extra: { domid: o.report.domain.domid ?? null } };
  },

  ...stubdomVerbs(kind, (ctx, v) => definition.observe(ctx, v), ""),

  async delete(ctx, v) {
    await deleteDomain(kind, ctx, v);
    // The image holds the keys of every vTPM the manager served: archived, never deleted.
    const image = { type: "file" as const, name: imagePathOf(v), role: KEY_IMAGE, property: "imagePath" };
    if (ctx.owns(image)) await archiveKeyImage(ctx, image);
  },
};

export const vtpmManagerLifecycle = defineResource(definition);
