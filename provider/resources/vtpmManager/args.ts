import { z } from "zod";
import { domainName, sizeMiB } from "../../names";
import { connectionSchema, wholeSeconds } from "../../transport/connection";
import { absolutePath } from "../../validation";
import { VTPMMGR_KERNEL } from "../../xl/domains";
import { checkStubdomPaths } from "../stubdom";

/** Owner and SRK authorization as vtpmmgr-stubdom takes them: well-known, or a SHA-1 hash. */
const authSpec = z
  .string()
  .regex(
    /^(well-known|(hash:)?[0-9a-f]{40})$/,
    "must be well-known or a 40-hex-digit SHA-1 (optionally hash:<sha1>)",
  );

const shape = z.strictObject({
  connection: connectionSchema,
  name: domainName,
  allowedRoots: z.array(absolutePath).min(1).default(["/var/lib/xen", "/etc/xen"]),
  imagePath: absolutePath.optional(),
  imageSizeMiB: sizeMiB(1024).default(16),
  /** @default 16, or 128 for a TPM 2.0 manager */
  memoryMiB: sizeMiB(65536).optional(),
  kernel: absolutePath.default(VTPMMGR_KERNEL),
  /** An initramfs for a Linux stub-domain kernel (the real-Xen lab's stand-ins); mini-os needs none. */
  ramdisk: absolutePath.optional(),
  configDir: absolutePath.default("/etc/xen"),
  tpm2: z.boolean().default(false),
  tpmLocality: z.number().int().min(0).max(4).optional(),
  iomem: z
    .array(z.string().regex(/^[0-9a-fA-F]+(,\d+)?$/, 'must look like "fed40,5" (first page, count)'))
    .default(["fed40,5"]),
  ownerAuth: authSpec.optional(),
  srkAuth: authSpec.optional(),
  readyTimeoutSec: wholeSeconds(3600).default(120),
  /** The manager domain runs; out-of-band stops show as drift on this property. */
  running: z.boolean().default(true),
  /** Allow changes that create a new manager image: every vTPM's keys sealed by it are lost. */
  allowStateReset: z.boolean().default(false),
  /** Take over an existing manager (image, config, domain) instead of creating one. */
  adopt: z.boolean().default(false),
});

/** Inputs kept as secrets: the hardware TPM's owner and SRK authorization. */
export const MANAGER_SECRETS = ["ownerAuth", "srkAuth"] as const;

export const vtpmManagerSchema = shape.superRefine(checkStubdomPaths, { when: () => true });

export type VtpmManagerInputs = z.output<typeof vtpmManagerSchema>;

export function managerMemoryMiB(v: Pick<VtpmManagerInputs, "memoryMiB" | "tpm2">): number {
  return v.memoryMiB ?? (v.tpm2 ? 128 : 16);
}

/** What the manager's console prints once it may serve vTPMs, and may be destroyed safely. */
export const MANAGER_READY = "Waiting for commands";
