/**
 * What an input change means for a TVD's CA. Pure. The CA is computed where Pulumi runs and owns
 * nothing on any host; what it is made from (its name, its lifetime) is baked into the
 * certificate, so any change makes a new CA, and every member certificate follows it.
 */
import { classifyChanges, comparableInputs, type ChangeClasses } from "../../dynamic";
import { tvdAuthoritySchema } from "./args";

const REPLACING = ["tvdName", "validityDays"] as const;

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
