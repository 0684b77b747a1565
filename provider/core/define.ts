/**
 * One resource definition per kind. A kind declares its schema, a change class for every input
 * (in a record the compiler checks is complete), how it reads the host back, what it owns on the
 * dom0, and its create, update and delete; everything else a dynamic provider needs (check,
 * diff, values unknown at preview, defaults kept in state, ownership claims, the property bag)
 * is written here once for every kind. The model is pulumi-go-provider's `infer`.
 */
import { isDeepStrictEqual } from "node:util";
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { Dom0 } from "../dom0/dom0";
import type { ResourceKind } from "../dynamic";
import type { Connection } from "../transport/connection";
import { InputValidationError, validate, type CheckFailure } from "../validation";
import { providerVersion } from "../version";
import { artifactKey, declareInProgram, type Artifact, type OwnerRecord } from "./ownership";

/** The engine's placeholder for a value not known during preview (rpc.unknownValue). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * What changing an input means:
 * - `replace`: a new resource (a new overlay, a new network); the old one goes;
 * - `resetState`: a new vTPM image or UUID: keys are lost, so only with `allowStateReset`;
 * - `restart`: applied by rewriting the config and restarting the domain (only when the running
 *   domain really differs, see domainLifecycle.ts);
 * - `inPlace`: applied without a restart, or bookkeeping only.
 */
export type ChangeClass = "replace" | "resetState" | "restart" | "inPlace";

/**
 * A change class for every input key: the compiler refuses a definition that forgets one. The
 * class of `connection` is what a change of its host means; its credentials change in place.
 */
export type ChangeClasses<V> = { readonly [K in keyof V]-?: ChangeClass };

/** What `observe` reports: the inputs as the host shows them, and outputs beyond the inputs. */
export interface Observation<V, X> {
  /** Nothing of the resource is left on the host: read drops it. */
  readonly gone: boolean;
  /**
   * Input values as the host has them, overriding the declared ones. An artifact missing on the
   * host is reported on the input that places it, as `driftMarker(value, "missing")`.
   */
  readonly seen: Partial<V>;
  readonly extra: X;
}

/** The context of one lifecycle call. */
export interface Context {
  /**
   * The dom0, for kinds with a connection; undefined for kinds computed where Pulumi runs, and in
   * the delete of a kind that owns no artifacts.
   */
  readonly dom0?: Dom0;
  /** This resource's owner string (see ownership.ts). */
  readonly owner: string;
  /** The stored outputs (update, delete) or nothing (create). */
  readonly state: Record<string, unknown>;
  /**
   * create only: the artifact keys whose record already named this resource before it claimed
   * them. An earlier create of it made them and could neither finish nor clean up (the dom0
   * rebooted or went away meanwhile); they are this resource's to take up, not to refuse.
   */
  readonly resumed?: readonly string[];
}

export interface UpdateContext<V> extends Context {
  /** Inputs as the state last recorded them (the host's values after a refresh). */
  readonly olds: Record<string, unknown>;
  /** Each input that differs, with its class. */
  readonly changed: ReadonlyMap<keyof V & string, ChangeClass>;
}

export interface DeleteContext extends Context {
  /** Whether this resource owns the artifact (its record names this owner). */
  readonly owns: (a: Artifact) => boolean;
  /**
   * The artifact stays on the host (a retained key image): its record stays too, so nothing
   * else may claim it; the same resource declared again (or `adopt` by its owner) takes it back.
   */
  readonly keep: (a: Artifact) => void;
}

export interface ResourceDefinition<V extends object, X extends object> {
  readonly kind: ResourceKind;
  /** The input schema, refinements included; its shape's keys are the inputs. */
  readonly schema: z.ZodType<V> & { readonly shape?: Record<string, z.ZodType> };
  /** Every input key of the schema's shape. */
  readonly shape: Record<keyof V & string, z.ZodType>;
  readonly changes: ChangeClasses<V>;
  /** Inputs held as secrets (beyond `connection`, always secret). */
  readonly secrets?: readonly (keyof V & string)[];
  /**
   * Inputs that create and update use but the state never keeps (another resource's private
   * keys): left out of the outputs and of the diff, and absent (undefined) when read and delete
   * parse the stored state. Only with an object schema.
   */
  readonly transient?: readonly (keyof V & string)[];
  /**
   * Defaults computed from other inputs (an image path from the name), filled in by check. The
   * owner (`<project>/<stack> <Kind> <name>`) is given where it is known, for a default that must
   * come out the same each time the same resource is created (a vTPM's UUID).
   */
  readonly derived?: (v: V, owner: string | undefined) => Partial<V>;
  /** What the resource makes and owns on its dom0. */
  readonly artifacts?: (v: V) => Artifact[];
  /** Files it uses but does not own (a guest's extra disks): never a vTPM key image. */
  readonly uses?: (v: V) => Artifact[];
  /** The resource's ID, from its inputs or from what create made (a CA's serial). */
  readonly id: (v: V, made: Partial<X>) => string;
  /** One name, one thing on the host: the old one goes before the new one comes. */
  readonly deleteBeforeReplace?: boolean;
  /** Why a diff may not go ahead (keys lost, ...), or undefined. */
  readonly refuse?: (
    news: V,
    changed: ReadonlyMap<keyof V & string, ChangeClass>,
    olds: Record<string, unknown>,
  ) => string | undefined;
  /** The message when a resetState change is asked for without allowStateReset. */
  readonly stateReset?: (news: V, keys: string[]) => string;
  readonly observe: (ctx: Context, v: V) => Promise<Observation<V, X>>;
  /**
   * Whether create and update observe the host again once they are done (the default), to
   * record what it shows. A kind whose create and update return everything they saw, and whose
   * observe costs its subject something (a member's agent asked to re-read its TPM), says false:
   * a rotation then asks the TPM nothing.
   * @default true
   */
  readonly observeAfterWrite?: boolean;
  /**
   * What a create or update that finished without reaching its goal leaves as drift on its inputs
   * (a member whose attestation failed: the PCRs that left the baseline), so that the next `up`
   * tries again, as it would after a refresh had found the same. Only with observeAfterWrite false.
   * @default - nothing: what was made is as declared
   */
  readonly unsettled?: (v: V, made: Partial<X>) => Partial<V>;
  /** Makes the resource; its artifacts are already claimed. Returns outputs it alone knows. */
  readonly create: (ctx: Context, v: V) => Promise<Partial<X> | void>;
  readonly update: (ctx: UpdateContext<V>, v: V) => Promise<Partial<X> | void>;
  readonly delete: (ctx: DeleteContext, v: V) => Promise<void>;
}

// The detail may hold parentheses of its own ("another EK (sha256:...)"): the value ends at the
// first " (<what> on the host".
const MARKER = /^(.*?) \((missing|changed|foreign) on the host.*\)$/s;

/**
 * How `observe` reports what is not as declared on an input whose change would replace the
 * resource or reset its state (an artifact missing, a config naming another UUID, an overlay on
 * another base): the declared value with what is wrong, so the preview shows it on that input and
 * `up` repairs it in place (or, for a key image that is gone, asks for allowStateReset). Inputs
 * applied by a restart are reported with the host's value as it is.
 */
export function driftMarker(
  value: string | number,
  what: "missing" | "changed" | "foreign",
  detail = "",
): string {
  return `${value} (${what} on the host${detail ? `: ${detail}` : ""})`;
}

/** The declared value a drift marker stands for, or undefined when `value` is no marker. */
export function unmarked(value: unknown): string | undefined {
  return markerOf(value)?.value;
}

/** A drift marker's declared value and what is wrong with it. */
export function markerOf(
  value: unknown,
): { value: string; what: "missing" | "changed" | "foreign" } | undefined {
  if (typeof value !== "string") return undefined;
  const m = MARKER.exec(value);
  return m ? { value: m[1], what: m[2] as "missing" | "changed" | "foreign" } : undefined;
}

export function holdsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(holdsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(holdsUnknown);
  return false;
}

/** Drops the engine's bookkeeping keys (`__provider`, ...) from a property bag. */
export function userProps(props: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !k.startsWith("__")));
}

/** Protobuf Structs have no `undefined`: unset optional properties are left out. */
export function wireSafe<T extends object>(props: T): T {
  return JSON.parse(JSON.stringify(props)) as T;
}

/** Bookkeeping inputs every kind carries besides its schema. */
const OWNER = "owner";
const DEFAULTS = "defaults";

/** The part of a connection that says which host: a change of it is a new resource. */
function endpointOf(c: unknown): unknown {
  if (!c || typeof c !== "object" || holdsUnknown(c)) return c;
  const { host, port } = c as { host?: unknown; port?: unknown };
  return `${String(host)}:${String(port ?? 22)}`;
}

/**
 * `check`: validates every input at once, reporting each bad property; fills every default in,
 * keeping a default the deployed resource got from an earlier release (`defaults`, the values in force when it was deployed), so a new
 * release with other defaults never changes it behind the user's back; and refuses two resources
 * of one program on one artifact. Values unknown at preview are kept as they are.
 */
export function checkOf<V extends object, X extends object>(def: ResourceDefinition<V, X>) {
  return async (
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult> => {
    const props = userProps(news);
    const owner = typeof props[OWNER] === "string" ? (props[OWNER] as string) : undefined;
    // The defaults in force when the resource was deployed: read never changes them, so drift on
    // a defaulted input (the host's value) is never taken for its default.
    const kept = keptDefaults(olds);
    const inputs: Record<string, unknown> = {};
    const defaults: Record<string, unknown> = {};
    for (const key of Object.keys(def.shape)) {
      if (props[key] !== undefined) inputs[key] = props[key];
      else if (key in kept) inputs[key] = defaults[key] = kept[key];
    }
    const result = validate(def.schema, inputs);
    const failures: CheckFailure[] = Object.keys(props)
      .filter((k) => !(k in def.shape) && k !== OWNER && k !== DEFAULTS && props[k] !== undefined)
      .map((k) => ({
        property: k,
        reason: `is not an input of ${def.kind}; remove it or check its spelling`,
      }));
    let checked: Record<string, unknown> = { ...inputs };
    if (result.ok) {
      const v = result.value as Record<string, unknown>;
      // A derived default (an image path from the name, a generated UUID) is made once and kept
      // like the others: renaming a vTPM keeps its image, and its UUID is made once.
      const derived: Record<string, unknown> = def.derived ? { ...def.derived(result.value, owner) } : {};
      checked = { ...v };
      for (const key of Object.keys(def.shape)) {
        if (inputs[key] !== undefined) continue;
        const value = key in derived ? derived[key] : v[key];
        if (value === undefined) continue;
        checked[key] = defaults[key] = value;
      }
      failures.push(...stateResetFailures(def, olds, checked));
      if (owner && def.artifacts) {
        const full = checked as V;
        const host = endpointOf((full as { connection?: unknown }).connection);
        const items = [
          ...def.artifacts(full).map((a) => ({ key: artifactKey(a), role: a.role, property: a.property })),
          ...(def.uses
            ? def
                .uses(full)
                .map((a) => ({ key: artifactKey(a), role: a.role, property: a.property, use: true }))
            : []),
        ];
        failures.push(...declareInProgram(String(host), owner, items));
      }
    } else {
      // A property still unknown at preview is validated when it becomes known.
      failures.push(...result.failures.filter((f) => !holdsUnknown(inputs[f.property.split(".")[0]])));
      for (const [key, field] of Object.entries(def.shape) as Array<[string, z.ZodType]>) {
        const r = field.safeParse(inputs[key]);
        if (r.success && r.data !== undefined) checked[key] = r.data;
      }
    }
    const out: Record<string, unknown> = { ...news, ...checked, [DEFAULTS]: defaults };
    return failures.length ? { inputs: out, failures } : { inputs: out };
  };
}

/**
 * A change of a resetState input (a new key image, a UUID, a vTPM's identity), or such an artifact
 * gone from the host (a "missing" drift marker a refresh left in the stored inputs), without
 * allowStateReset: a failure on each such input, with the kind's message. Check, not diff, refuses
 * it: the engine also calls diff to show a refresh, with the stored inputs as news. A value still
 * unknown at preview is judged when it is known.
 */
function stateResetFailures<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  olds: Record<string, unknown>,
  checked: Record<string, unknown>,
): CheckFailure[] {
  const created = !Object.keys(def.shape).some((k) => olds[k] !== undefined);
  if (created || checked.allowStateReset === true || holdsUnknown(checked.allowStateReset)) return [];
  const resetting = [...changesOf(def.changes, olds, checked, def.transient)]
    .filter(([k, c]) => c === "resetState" && !holdsUnknown(checked[k]))
    .map(([k]) => k);
  if (!resetting.length) return [];
  const v = checked as V;
  const reason = def.stateReset
    ? def.stateReset(v, resetting)
    : `changing ${resetting.join(", ")} loses state; set allowStateReset: true`;
  return [{ property: resetting[0], reason }];
}

/** The defaults a stored bag recorded (none for state older than this bookkeeping). */
function keptDefaults(props: Record<string, unknown>): Record<string, unknown> {
  const d = props[DEFAULTS];
  return d && typeof d === "object" && !Array.isArray(d) && !holdsUnknown(d)
    ? (d as Record<string, unknown>)
    : {};
}

/** Comparable form of one input: connections by their host, arrays and objects as they are. */
function comparableValue(key: string, value: unknown): unknown {
  return key === "connection" ? endpointOf(value) : value;
}

/**
 * What differs between the stored state (outputs: the host's values after a refresh) and the new
 * inputs, each with its class. A drift marker on an input compares as its declared value
 * repaired in place; the connection's credentials change in place, its host as declared.
 * Transient inputs (not kept in state) are not compared.
 */
export function changesOf<V extends object>(
  changes: ChangeClasses<V>,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  transient: readonly string[] = [],
): Map<keyof V & string, ChangeClass> {
  const out = new Map<keyof V & string, ChangeClass>();
  for (const [key, declared] of Object.entries(changes) as Array<[keyof V & string, ChangeClass]>) {
    if (transient.includes(key)) continue;
    const o = olds[key];
    const n = news[key];
    if (holdsUnknown(n)) {
      out.set(key, declared);
      continue;
    }
    if (key === "connection") {
      if (!isDeepStrictEqual(endpointOf(o), endpointOf(n))) out.set(key, declared);
      else if (!isDeepStrictEqual(o, n)) out.set(key, "inPlace");
      continue;
    }
    if (isDeepStrictEqual(comparableValue(key, o), comparableValue(key, n))) continue;
    const marker = markerOf(o);
    // Drift on the host is repaired in place, but a key image that is gone is lost state.
    if (marker && marker.value === (typeof n === "number" ? String(n) : n))
      out.set(key, marker.what === "missing" && declared === "resetState" ? "resetState" : "inPlace");
    else out.set(key, declared);
  }
  return out;
}

/**
 * The engine's diff: a step only when an input differs (so the preview always shows what
 * changes), replacing for `replace` and, with allowStateReset, `resetState` changes.
 */
export function diffOf<V extends object, X extends object>(def: ResourceDefinition<V, X>) {
  return async (
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> => {
    const changed = changesOf(def.changes, olds, news, def.transient);
    if (changed.size === 0) return { changes: false };
    // A reset of what cannot be made again is refused by check (see stateResetFailures): the
    // engine also diffs what a refresh read back against the state, with the state's inputs as
    // news, only to show the refresh, and nothing may be refused there.
    if (!holdsUnknown(news)) {
      const v = parseInputs(def, news);
      const refused = def.refuse?.(v, changed, olds);
      if (refused) throw new Error(refused);
    }
    const replaces = [...changed].filter(([, c]) => c === "replace" || c === "resetState").map(([k]) => k);
    return {
      changes: true,
      replaces,
      deleteBeforeReplace: replaces.length > 0 && def.deleteBeforeReplace === true,
    };
  };
}

/** What a create or update leaves: observed again, or (observeAfterWrite: false) as it was made. */
async function observeWritten<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  ctx: Context,
  v: V,
): Promise<Observation<V, X>> {
  if (def.observeAfterWrite !== false) return def.observe(ctx, v);
  const extra = storedExtra(def, ctx.state) as X;
  return { gone: false, seen: def.unsettled?.(v, extra) ?? {}, extra };
}

/** Parses the inputs of a property bag (stored state holds outputs too); throws every failure. */
export function parseInputs<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  props: Record<string, unknown>,
): V {
  const inputs = Object.fromEntries(
    Object.keys(def.shape)
      .filter((k) => props[k] !== undefined)
      .map((k) => [k, declaredOf(def.shape[k as keyof V & string], props[k])]),
  );
  // Stored state (read, delete) lacks the transient inputs: they are parsed as absent.
  const absent = (def.transient ?? []).filter((k) => inputs[k] === undefined);
  const result = validate(absent.length ? optional(def, absent) : def.schema, inputs);
  if (!result.ok) throw new InputValidationError(def.kind, result.failures);
  return {
    ...(result.value as object),
    ...(def.derived
      ? Object.fromEntries(
          Object.entries(
            def.derived(
              result.value,
              typeof props[OWNER] === "string" ? (props[OWNER] as string) : undefined,
            ),
          ).filter(([k]) => inputs[k] === undefined),
        )
      : {}),
  } as V;
}

/** The declared value of an input, a drift marker on it undone (a marked number is a number again). */
function declaredOf(field: z.ZodType, value: unknown): unknown {
  const declared = unmarked(value);
  if (declared === undefined) return value;
  return !field.safeParse(declared).success && field.safeParse(Number(declared)).success
    ? Number(declared)
    : declared;
}

/** The kind's schema with `keys` optional. */
function optional<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  keys: readonly string[],
) {
  const schema = def.schema as unknown as { partial?: (mask: Record<string, true>) => z.ZodType<V> };
  if (typeof schema.partial !== "function")
    throw new Error(`${def.kind}: transient inputs need an object schema`);
  return schema.partial(Object.fromEntries(keys.map((k) => [k, true])));
}

/** The property bag of a resource: the host's view of every input, then what only outputs say. */
function outputsOf<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  v: V,
  props: Record<string, unknown>,
  seen: Observation<V, X>,
  made: Partial<X> | void,
): Record<string, unknown> {
  const outs: Record<string, unknown> = {
    ...v,
    ...seen.seen,
    ...seen.extra,
    ...(made ?? {}),
    [OWNER]: props[OWNER],
    [DEFAULTS]: props[DEFAULTS],
    providerVersion,
  };
  for (const key of def.transient ?? []) delete outs[key];
  return wireSafe(outs);
}

async function contextOf<V extends object>(
  v: V,
  props: Record<string, unknown>,
  connect = true,
): Promise<Context> {
  const c = connect ? (v as { connection?: Connection }).connection : undefined;
  return { dom0: c ? await Dom0.connect(c) : undefined, owner: ownerIn(props), state: props };
}

function ownerIn(props: Record<string, unknown>): string {
  return typeof props[OWNER] === "string" ? (props[OWNER] as string) : "(unknown owner)";
}

/** Every verb of a dynamic provider, all present. */
export type Lifecycle = Required<
  Pick<pulumi.dynamic.ResourceProvider, "check" | "diff" | "create" | "read" | "update" | "delete">
>;

/** The dynamic provider of a kind: every verb written once, the kind's own steps plugged in. */
export function defineResource<V extends object, X extends object>(def: ResourceDefinition<V, X>): Lifecycle {
  const artifactsOf = (v: V) => (def.artifacts ? def.artifacts(v) : []);
  return {
    check: checkOf(def),
    diff: diffOf(def),

    async create(props) {
      const v = parseInputs(def, props);
      const ctx = await contextOf(v, props);
      const artifacts = artifactsOf(v);
      const adopt = (v as { adopt?: boolean }).adopt === true;
      const claimed = ctx.dom0 && artifacts.length ? await ctx.dom0.claim(ctx.owner, artifacts, adopt) : [];
      const resumed = ctx.dom0 ? artifacts.map(artifactKey).filter((k) => !claimed.includes(k)) : [];
      let made: Partial<X> | void;
      try {
        made = await def.create({ ...ctx, resumed }, v);
      } catch (e) {
        // Only the records this create made go, of what is not there: its own create removed what
        // it made, but a step that got no answer may have done its work all the same (a seed
        // written, a bridge made), which keeps its record for the next up to take up. A create
        // that adopted releases them all: what it adopted was there before.
        if (ctx.dom0 && claimed.length) {
          const dom0 = ctx.dom0;
          const there = adopt
            ? new Map<string, OwnerRecord>()
            : await dom0.owners(artifacts).catch(() => undefined);
          const gone = there ? claimed.filter((k) => !there.get(k)?.exists) : [];
          await dom0.release(ctx.owner, gone).catch(() => undefined);
        }
        throw e;
      }
      // What the unfinished create it took up claimed and never made (a UUID generated then) goes.
      if (ctx.dom0 && resumed.length) await ctx.dom0.releaseStale(ctx.owner, artifacts.map(artifactKey));
      const seen = await observeWritten(def, { ...ctx, state: { ...props, ...(made ?? {}) } }, {
        ...v,
        ...(made ?? {}),
      } as V);
      return { id: def.id(v, made ?? {}), outs: outputsOf(def, v, props, seen, made) };
    },

    async read(id, props) {
      const v = parseInputs(def, props);
      const ctx = await contextOf(v, props);
      const seen = await def.observe(ctx, v);
      if (seen.gone) return {};
      const outs = outputsOf(def, v, props, seen, undefined);
      const inputs = Object.fromEntries(
        [...Object.keys(def.shape), OWNER, DEFAULTS]
          .filter((k) => outs[k] !== undefined)
          .map((k) => [k, outs[k]]),
      );
      return { id, props: outs, inputs };
    },

    async update(_id, olds, news) {
      const v = parseInputs(def, news);
      const ctx = await contextOf(v, olds);
      const owner = ownerIn(news);
      const changed = changesOf(def.changes, olds, news, def.transient);
      // What the resource now places elsewhere (a rename) is claimed first, the old released after.
      // State written before ownership records existed claims what it made, as adopt would.
      const legacy = olds[OWNER] === undefined;
      const before = artifactKeysOf(def, olds);
      const after = artifactsOf(v);
      const fresh = legacy ? after : after.filter((a) => !before.includes(artifactKey(a)));
      const claimed = ctx.dom0 && fresh.length ? await ctx.dom0.claim(owner, fresh, legacy) : [];
      let made: Partial<X> | void;
      try {
        made = await def.update({ ...ctx, owner, olds, changed }, v);
      } catch (e) {
        if (ctx.dom0 && claimed.length) await ctx.dom0.release(owner, claimed).catch(() => undefined);
        throw e;
      }
      const gone = before.filter((k) => !after.some((a) => artifactKey(a) === k));
      if (ctx.dom0 && gone.length) await ctx.dom0.release(owner, gone);
      const state = { ...olds, ...news, ...(made ?? {}) };
      const seen = await observeWritten(def, { ...ctx, owner, state }, { ...v, ...(made ?? {}) } as V);
      return {
        // What the host shows now wins over what the state kept from the last apply (a domid).
        outs: outputsOf(
          def,
          v,
          news,
          { ...seen, extra: { ...storedExtra(def, olds), ...seen.extra } as X },
          made,
        ),
      };
    },

    async delete(_id, props) {
      const v = parseInputs(def, props);
      // A kind that owns nothing on its host is deleted without contacting it.
      const ctx = await contextOf(v, props, def.artifacts !== undefined);
      const artifacts = artifactsOf(v);
      const records = ctx.dom0 && artifacts.length ? await ctx.dom0.owners(artifacts) : new Map();
      // State written before ownership records existed has no owner: what it made is its own.
      const legacy = props[OWNER] === undefined;
      const owns = (a: Artifact) => {
        const r = records.get(artifactKey(a));
        return r?.owner === ctx.owner || (legacy && r?.owner === undefined);
      };
      const foreign = artifacts.filter((a) => records.get(artifactKey(a))?.exists && !owns(a));
      for (const a of foreign) {
        const r = records.get(artifactKey(a));
        console.error(
          `pulumi-tvd: leaving ${a.role} ${a.name} on ${ctx.dom0?.endpoint}: ${r?.owner ? `owned by ${r.owner}` : "not made by this resource"}`,
        );
      }
      const kept = new Set<string>();
      await def.delete({ ...ctx, owns, keep: (a) => kept.add(artifactKey(a)) }, v);
      const released = artifacts
        .filter(owns)
        .map(artifactKey)
        .filter((k) => !kept.has(k));
      if (ctx.dom0 && released.length) await ctx.dom0.release(ctx.owner, released);
    },
  };
}

/** The artifact keys a stored state places; none when it no longer parses. */
function artifactKeysOf<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  props: Record<string, unknown>,
): string[] {
  if (!def.artifacts) return [];
  try {
    return def.artifacts(parseInputs(def, props)).map(artifactKey);
  } catch {
    return [];
  }
}

/**
 * The observation of a kind computed where Pulumi runs (a CA, a CRL): its state is the thing
 * itself, so there is nothing elsewhere to read and nothing that can drift.
 */
export function stateObservation<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  state: Record<string, unknown>,
): Observation<V, X> {
  return { gone: false, seen: {}, extra: storedExtra(def, state) as unknown as X };
}

/**
 * Outputs beyond the inputs that a stored state holds and a kind keeps from one apply to the next
 * (a generated UUID); for a kind computed where Pulumi runs, the state is all there is to read.
 */
export function storedExtra<V extends object, X extends object>(
  def: ResourceDefinition<V, X>,
  state: Record<string, unknown>,
): Record<string, unknown> {
  const keys = new Set([...Object.keys(def.shape), OWNER, DEFAULTS, "providerVersion"]);
  return Object.fromEntries(Object.entries(userProps(state)).filter(([k]) => !keys.has(k)));
}
