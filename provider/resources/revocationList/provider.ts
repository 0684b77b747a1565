/**
 * TvdRevocationList, declared once. Computed where Pulumi runs, like TvdAuthority: the state is
 * the list. It remembers every member serial it was given; one no longer given (its member left
 * the TVD, or a rotation reissued its certificate) is revoked from then on, and every change
 * issues a new CRL with the next number, signed by the TVD's CA. Serials given as held (members
 * failing their attestation) are listed with reason certificateHold while they are given, and the
 * next list without one lifts its hold. Another CA starts a new list.
 */
import {
  defineResource,
  stateObservation,
  storedExtra,
  type ChangeClasses,
  type ResourceDefinition,
} from "../../core/define";
import { createCrl } from "../../pki/crl";
import {
  CRL_SECRETS,
  revocationListSchema,
  type RevocationListExtra,
  type RevocationListInputs,
} from "./args";

const changes: ChangeClasses<RevocationListInputs> = {
  caCertPem: "replace",
  caKeyPem: "inPlace",
  memberSerials: "inPlace",
  heldSerials: "inPlace",
  validityDays: "inPlace",
};

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

/**
 * The next list from the last one and the serials given now. Pure but for the clock.
 * A serial given again (a member back) is no longer revoked.
 */
export function nextRevocations(
  last: Pick<RevocationListExtra, "revoked" | "seenSerials"> | undefined,
  memberSerials: readonly string[],
  now: Date,
): Pick<RevocationListExtra, "revoked" | "seenSerials" | "revokedSerials"> {
  const current = new Set(memberSerials);
  const kept = (last?.revoked ?? []).filter((r) => !current.has(r.serial));
  const already = new Set(kept.map((r) => r.serial));
  const fresh = (last?.seenSerials ?? [])
    .filter((s) => !current.has(s) && !already.has(s))
    .map((serial) => ({ serial, revokedAt: now.toISOString() }));
  const revoked = [...kept, ...fresh].sort((a, b) =>
    a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0,
  );
  return {
    revoked,
    revokedSerials: revoked.map((r) => r.serial),
    seenSerials: sorted([...(last?.seenSerials ?? []), ...memberSerials]),
  };
}

/**
 * The holds from the last list and the serials on hold now: a hold keeps the time it began; one
 * revoked for good is not also held. Pure but for the clock.
 */
export function nextHolds(
  last: Pick<RevocationListExtra, "held"> | undefined,
  heldSerials: readonly string[],
  revokedSerials: readonly string[],
  now: Date,
): RevocationListExtra["held"] {
  const since = new Map((last?.held ?? []).map((h) => [h.serial, h.heldAt]));
  return sorted(heldSerials)
    .filter((s) => !revokedSerials.includes(s))
    .map((serial) => ({ serial, heldAt: since.get(serial) ?? now.toISOString() }));
}

function issue(v: RevocationListInputs, last: RevocationListExtra | undefined): RevocationListExtra {
  const now = new Date();
  const next = nextRevocations(last, v.memberSerials, now);
  const held = nextHolds(last, v.heldSerials, next.revokedSerials, now);
  const crlNumber = (last?.crlNumber ?? 0) + 1;
  return {
    ...next,
    held,
    crlNumber,
    crlPem: createCrl({
      caCertPem: v.caCertPem,
      caKeyPem: v.caKeyPem,
      revoked: [
        ...next.revoked,
        ...held.map((h) => ({ serial: h.serial, revokedAt: h.heldAt, reason: "certificateHold" as const })),
      ],
      crlNumber,
      validityDays: v.validityDays,
      thisUpdate: now,
    }),
  };
}

export const definition: ResourceDefinition<RevocationListInputs, RevocationListExtra> = {
  kind: "TvdRevocationList",
  schema: revocationListSchema,
  shape: revocationListSchema.shape,
  changes,
  secrets: [...CRL_SECRETS],
  transient: [...CRL_SECRETS],
  id: (_v, made) => `crl-${String(made.crlNumber ?? "")}`.replace(/-$/, ""),

  /** The state is the list: there is nothing elsewhere to observe. */
  async observe(ctx) {
    return stateObservation(definition, ctx.state);
  },

  async create(_ctx, v) {
    return issue(v, undefined);
  },

  async update(ctx, v) {
    return issue(v, storedExtra(definition, ctx.olds) as unknown as RevocationListExtra);
  },

  /** The list lived only in the stack's state. */
  async delete() {},
};

export const revocationListLifecycle = defineResource(definition);
