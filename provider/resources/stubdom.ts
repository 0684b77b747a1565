/**
 * What the two vTPM stub-domain resources (VtpmManager, Vtpm) share, pure: where their image and
 * config live, and the rule that every such path sits under allowedRoots. Their shared host steps
 * are in domain.ts.
 */
import type { z } from "zod";
import { checkPathsUnderRoots, domainName } from "../names";

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
 * A refinement for a stub domain's schema: its image and config, derived defaults included, sit
 * under allowedRoots. Pass it with `{ when: () => true }` so it runs even when other properties
 * failed; a bad name is reported once, as the name.
 */
export function checkStubdomPaths(v: StubdomPathInputs, ctx: z.RefinementCtx): void {
  const name = domainName.safeParse(v.name).success ? (v.name as string) : undefined;
  checkPathsUnderRoots(
    v.allowedRoots,
    {
      imagePath: typeof v.imagePath === "string" ? v.imagePath : name ? imagePathOf({ name }) : undefined,
      // Reported on configDir, the input: the config's own name comes from a valid name.
      configDir:
        name && typeof v.configDir === "string" ? configPathOf({ name, configDir: v.configDir }) : undefined,
    },
    ctx,
  );
}
