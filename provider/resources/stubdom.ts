/**
 * What the two vTPM stub-domain resources (VtpmManager, Vtpm) share, pure: where their image and
 * config live, the rule that every such path sits under allowedRoots, and the rule that a change
 * losing their keys needs allowStateReset. Their shared host steps are in stubdomLifecycle.ts.
 */
import type { z } from "zod";
import type { ChangeClasses } from "../dynamic";
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
      configPath:
        name && typeof v.configDir === "string" ? configPathOf({ name, configDir: v.configDir }) : undefined,
    },
    ctx,
  );
}

/** A stub domain's diff: what changed, and why it is refused when it would lose keys. */
export interface StubdomDiff extends ChangeClasses {
  /** Why the change is refused, with the fix; undefined when it may go ahead. */
  readonly refused?: string;
}

/**
 * The rule both stub domains share: their image holds keys. A change that makes a new image,
 * or an image already gone out of band, goes ahead only with allowStateReset.
 */
export function guardStateReset(
  d: ChangeClasses,
  o: {
    readonly imagePresent: boolean;
    readonly allowStateReset: boolean;
    /** The refusal when the image is gone. */
    readonly lost: string;
    /** The refusal when a change of `replaces` would make a new image. */
    readonly resetting: (replaces: string[]) => string;
  },
): StubdomDiff {
  if (!o.imagePresent) {
    return {
      changed: [...new Set([...d.changed, "imagePath"])].sort(),
      replaces: ["imagePath"],
      restart: false,
      refused: o.allowStateReset ? undefined : o.lost,
    };
  }
  return { ...d, refused: d.replaces.length && !o.allowStateReset ? o.resetting(d.replaces) : undefined };
}
