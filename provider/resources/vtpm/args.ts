import { z } from "zod";
import { domainName, sizeMiB, vtpmUuid } from "../../names";
import { connectionSchema, wholeSeconds } from "../../transport/connection";
import { absolutePath } from "../../validation";
import { VTPM_KERNEL } from "../../xl/domains";
import { checkStubdomPaths } from "../stubdom";

/** What happens to a vTPM's image (its keys) when the resource is deleted. */
export const deletionPolicies = ["archive", "retain", "destroy"] as const;

/**
 * Vtpm inputs. Paths default from the name; every path must sit under `allowedRoots`.
 * The schema is checked before any host is touched.
 */
const vtpmShape = z.strictObject({
  connection: connectionSchema,
  name: domainName,
  /** The vTPM manager domain this vTPM's keys are sealed by. */
  manager: domainName,
  allowedRoots: z.array(absolutePath).min(1).default(["/var/lib/xen", "/etc/xen"]),
  imagePath: absolutePath.optional(),
  imageSizeMiB: sizeMiB(1024).default(8),
  memoryMiB: sizeMiB(4096).default(8),
  kernel: absolutePath.default(VTPM_KERNEL),
  /** An initramfs for a Linux stub-domain kernel (the real-Xen lab's stand-ins); mini-os needs none. */
  ramdisk: absolutePath.optional(),
  configDir: absolutePath.default("/etc/xen"),
  uuid: vtpmUuid.optional(),
  logLevel: z.enum(["error", "info", "debug"]).optional(),
  hwInitPcr: z
    .string()
    .regex(
      /^(all|none|\d{1,2}(-\d{1,2})?(,\d{1,2}(-\d{1,2})?)*)$/,
      "must be all, none, or PCR numbers and ranges like 0-7,10",
    )
    .optional(),
  maintCmds: z.boolean().optional(),
  readyTimeoutSec: wholeSeconds(3600).default(60),
  /** The vTPM domain runs; out-of-band stops show as drift on this property. */
  running: z.boolean().default(true),
  /** Allow changes that create a new vTPM image or UUID, losing the vTPM's keys. */
  allowStateReset: z.boolean().default(false),
  deletionPolicy: z.enum(deletionPolicies).default("archive"),
  /** Take over an existing vTPM (image, config, domain) instead of creating one. */
  adopt: z.boolean().default(false),
});

export const vtpmSchema = vtpmShape.superRefine(checkStubdomPaths, { when: () => true });

export type VtpmInputs = z.output<typeof vtpmSchema>;

/** What a vTPM's console prints once it serves its guest (Xen's vTPM documentation). */
export const VTPM_READY = "Waiting for frontend domain to connect";
