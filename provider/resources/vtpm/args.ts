import { z } from "zod";
import { domainName, pathUnder, sizeMiB, vtpmUuid } from "../../names";
import { connectionSchema } from "../../transport/connection";
import { absolutePath } from "../../validation";
import { VTPM_KERNEL } from "../../xl/domains";

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
  /** Allow changes that create a new vTPM image or UUID, losing the vTPM's keys. */
  allowStateReset: z.boolean().default(false),
  deletionPolicy: z.enum(deletionPolicies).default("archive"),
  /** Take over an existing vTPM (image, config, domain) instead of creating one. */
  adopt: z.boolean().default(false),
});

/** Derived defaults must obey the same roots as explicit paths. */
function checkPathsUnderRoots(
  v: { allowedRoots: string[]; name: string; configDir: string; imagePath?: string },
  ctx: z.RefinementCtx,
): void {
  const under = pathUnder(v.allowedRoots);
  const paths = { imagePath: imagePathOf(v), configPath: configPathOf(v) };
  for (const [property, p] of Object.entries(paths)) {
    const r = under.safeParse(p);
    if (!r.success)
      ctx.addIssue({ code: "custom", path: [property], message: `${p}: ${r.error.issues[0].message}` });
  }
}

export const vtpmSchema = vtpmShape.superRefine(
  (v, ctx) => {
    // Runs even when other properties failed, so that check reports every failure at once; the
    // values it needs may then be missing or malformed, and it looks only at well-formed ones.
    const ok =
      Array.isArray(v.allowedRoots) &&
      v.allowedRoots.every((r) => typeof r === "string") &&
      // A bad name is reported once, as the name, not again through the paths made from it.
      domainName.safeParse(v.name).success &&
      typeof v.configDir === "string" &&
      (v.imagePath === undefined || typeof v.imagePath === "string");
    if (ok) checkPathsUnderRoots(v, ctx);
  },
  { when: () => true },
);

export type VtpmInputs = z.output<typeof vtpmSchema>;

export function imagePathOf(v: { imagePath?: string; name: string }): string {
  return v.imagePath ?? `/var/lib/xen/vtpm/${v.name}.img`;
}

export function configPathOf(v: { configDir: string; name: string }): string {
  return `${v.configDir}/${v.name}.cfg`;
}
