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

/**
 * Every path pulumi-tvd will write must sit under allowedRoots, derived defaults included. Runs
 * even when other properties failed, so check reports every failure at once; it looks only at
 * the values that are well formed, and a bad name is reported once, as the name.
 */
export const vtpmSchema = vtpmShape.superRefine(
  (v, ctx) => {
    if (!Array.isArray(v.allowedRoots) || !v.allowedRoots.every((r) => typeof r === "string")) return;
    const under = pathUnder(v.allowedRoots);
    const nameOk = domainName.safeParse(v.name).success;
    const paths: Record<string, string | undefined> = {
      imagePath: typeof v.imagePath === "string" ? v.imagePath : nameOk ? imagePathOf(v) : undefined,
      configPath: nameOk && typeof v.configDir === "string" ? configPathOf(v) : undefined,
    };
    for (const [property, p] of Object.entries(paths)) {
      if (p === undefined) continue;
      const r = under.safeParse(p);
      if (!r.success)
        ctx.addIssue({ code: "custom", path: [property], message: `${p}: ${r.error.issues[0].message}` });
    }
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
