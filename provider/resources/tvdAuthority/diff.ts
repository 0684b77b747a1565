/**
 * What an input change means for a TVD's CA. Pure. The CA is computed where Pulumi runs and owns
 * nothing on any host; what it is made from (its name, its lifetime) is baked into the
 * certificate, so any change makes a new CA, and every member certificate follows it.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { classifyChanges, type ChangeClasses } from "../../dynamic";
import { tvdAuthoritySchema } from "./args";

const REPLACING = ["tvdName", "validityDays"] as const;

/**
 * The schema's own properties of a property bag, defaults applied, for comparison. Unlike
 * parseInputs it never throws: at preview a value may still be unknown (the engine's placeholder),
 * and it is then kept as is and compares as a change.
 */
export function comparableInputs(
  schema: z.ZodObject,
  props: Record<string, unknown>,
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(schema.shape).map(([key, field]) => {
      const r = (field as z.ZodType).safeParse(props[key]);
      return [key, r.success ? r.data : props[key]];
    }),
  );
}

/**
 * The engine's diff result for a resource computed locally: nothing outside the stack is bound to
 * its name, so a replacement is created before the old one is deleted.
 */
export function localDiffResult(d: ChangeClasses): pulumi.dynamic.DiffResult {
  return { changes: d.changed.length > 0, replaces: d.replaces, deleteBeforeReplace: false };
}

/** `olds` and `news` are whole property bags (stored state holds outputs too). */
export function diffTvdAuthority(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): ChangeClasses {
  return classifyChanges(
    comparableInputs(tvdAuthoritySchema, olds),
    comparableInputs(tvdAuthoritySchema, news),
    REPLACING,
    [],
  );
}
