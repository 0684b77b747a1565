/**
 * What the two vTPM stub-domain resources (VtpmManager, Vtpm) share: where their image and
 * config live, and the rule that every such path sits under allowedRoots.
 */
import type { z } from "zod";
import { domainName, pathUnder } from "../names";

export function imagePathOf(v: { imagePath?: string; name: string }): string {
  return v.imagePath ?? `/var/lib/xen/vtpm/${v.name}.img`;
}

export function configPathOf(v: { configDir: string; name: string }): string {
  return `${v.configDir}/${v.name}.cfg`;
}

interface StubdomPathInputs {
  allowedRoots?: unknown;
  name?: unknown;
  imagePath?: unknown;
  configDir?: unknown;
}

/**
 * A refinement for a stub domain's schema: every path pulumi-tvd will write, derived defaults
 * included, sits under allowedRoots. Pass it with `{ when: () => true }` so it runs even when
 * other properties failed (check reports every failure at once); it looks only at well-formed
 * values, and a bad name is reported once, as the name.
 */
export function checkStubdomPaths(v: StubdomPathInputs, ctx: z.RefinementCtx): void {
  if (!Array.isArray(v.allowedRoots) || !v.allowedRoots.every((r) => typeof r === "string")) return;
  const under = pathUnder(v.allowedRoots as string[]);
  const name = domainName.safeParse(v.name).success ? (v.name as string) : undefined;
  const paths: Record<string, string | undefined> = {
    imagePath: typeof v.imagePath === "string" ? v.imagePath : name ? imagePathOf({ name }) : undefined,
    configPath:
      name && typeof v.configDir === "string" ? configPathOf({ name, configDir: v.configDir }) : undefined,
  };
  for (const [property, p] of Object.entries(paths)) {
    if (p === undefined) continue;
    const r = under.safeParse(p);
    if (!r.success)
      ctx.addIssue({ code: "custom", path: [property], message: `${p}: ${r.error.issues[0].message}` });
  }
}
