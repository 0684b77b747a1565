/**
 * What an input change means for a member identity. Pure. The member's SSH host key is its
 * identity and survives every change but a new name; everything else (names, lifetime, rotation,
 * a new CA) is applied by reissuing both certificates for the same host key.
 */
import { classifyChanges, type ChangeClasses } from "../../dynamic";
import { comparableInputs } from "../../dynamic";
import { CA_SECRETS, memberIdentitySchema } from "./args";

const REPLACING = ["memberName"] as const;

function comparable(props: Record<string, unknown>): Record<string, unknown> {
  const v = comparableInputs(memberIdentitySchema, props);
  // Stored state does not hold the CA's private keys; the CA's public halves identify it.
  for (const key of CA_SECRETS) delete v[key];
  return v;
}

/** `olds` and `news` are whole property bags (stored state holds outputs too). */
export function diffMemberIdentity(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): ChangeClasses {
  return classifyChanges(comparable(olds), comparable(news), REPLACING, []);
}
