import { isDeepStrictEqual } from "node:util";
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { InputValidationError, validate, type CheckFailure } from "./validation";

/**
 * The engine's placeholder for a value not known during preview (rpc.unknownValue in
 * @pulumi/pulumi). Inputs holding it cannot be validated yet.
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Resource kinds the runtime module serves; each has one lifecycle in provider/resources/<kind>/. */
export type ResourceKind =
  | "HostFacts"
  | "VtpmManager"
  | "Vtpm"
  | "Guest"
  | "TvdAuthority"
  | "MemberIdentity"
  | "SeedImage"
  | "TvdNetwork";

/**
 * The provider object Pulumi serializes into state with every resource. It must stay tiny and
 * stable: it captures nothing but `kind` and loads the lifecycle from the installed package at call
 * time, so upgrading pulumi-tvd upgrades the behaviour of existing stacks and no SSH client, socket
 * or pool is ever captured.
 */
export function serializableProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  /* eslint-disable @typescript-eslint/no-require-imports -- resolved at call time on purpose, see above */
  return {
    check: (olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).check(olds, news),
    diff: (id, olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).diff(id, olds, news),
    create: (inputs) => require("pulumi-tvd/runtime").lifecycle(kind).create(inputs),
    read: (id, props) => require("pulumi-tvd/runtime").lifecycle(kind).read(id, props),
    update: (id, olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).update(id, olds, news),
    delete: (id, props) => require("pulumi-tvd/runtime").lifecycle(kind).delete(id, props),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

function holdsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(holdsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(holdsUnknown);
  return false;
}

/** Drops the engine's bookkeeping keys (`__provider`, ...) from a property bag. */
export function userProps(props: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !k.startsWith("__")));
}

/**
 * `check` for every resource: validates all inputs at once and reports each bad property. A
 * property still unknown at preview time is validated when it becomes known.
 */
export function checkInputs(schema: z.ZodType, news: Record<string, unknown>): pulumi.dynamic.CheckResult {
  const props = userProps(news);
  const result = validate(schema, props);
  if (result.ok) return { inputs: news };
  const failures: CheckFailure[] = result.failures.filter((f) => {
    const top = f.property.split(".")[0];
    return !holdsUnknown(props[top]);
  });
  return { inputs: news, failures };
}

/** The `check` of a resource whose inputs are `schema`: every lifecycle's is this one. */
export function checkWith(
  schema: z.ZodType,
): (olds: Record<string, unknown>, news: Record<string, unknown>) => Promise<pulumi.dynamic.CheckResult> {
  return async (_olds, news) => checkInputs(schema, news);
}

/**
 * Parses the inputs part of a property bag that `check` accepted. Stored state (olds, read's
 * props) also holds outputs; only the schema's own keys are taken from it.
 */
export function parseInputs<S extends z.ZodObject>(
  schema: S,
  resource: string,
  props: Record<string, unknown>,
): z.output<S> {
  const keys = new Set(Object.keys(schema.shape));
  const inputs = Object.fromEntries(Object.entries(props).filter(([k]) => keys.has(k)));
  const result = validate(schema, inputs);
  if (!result.ok) throw new InputValidationError(resource, result.failures);
  return result.value;
}

/**
 * What `read` reports as inputs: the observed values, but a property the user never set is left
 * unset when the host shows its default, so that refresh does not invent changes.
 */
export function observedInputs<T extends object>(
  userSet: Record<string, unknown>,
  defaults: T,
  observed: T,
): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(observed)) {
    const isDefault = isDeepStrictEqual(value, (defaults as Record<string, unknown>)[key]);
    if (key in userSet || !isDefault) out[key] = value;
  }
  return out as Partial<T>;
}

/**
 * A property bag the engine can carry: protobuf Structs have no `undefined`, so unset optional
 * properties are left out rather than sent as undefined.
 */
export function wireSafe<T extends object>(props: T): T {
  return JSON.parse(JSON.stringify(props)) as T;
}

/**
 * The inputs the user set, from a state property bag. `read` gets outputs only, so outputs carry
 * `inputKeys` (which inputs the user set) for read to report only those.
 */
export function userSetOf(props: Record<string, unknown>): Record<string, unknown> {
  const keys = Array.isArray(props.inputKeys) ? (props.inputKeys as string[]) : Object.keys(userProps(props));
  return Object.fromEntries(keys.filter((k) => k in props).map((k) => [k, props[k]]));
}

/** What an input change means for a resource: which properties differ, replace, or restart it. */
export interface ChangeClasses {
  readonly changed: string[];
  readonly replaces: string[];
  /** Nothing replaces it and something it runs with changed: the domain restarts. */
  readonly restart: boolean;
}

/**
 * Compares two comparable views of a resource's inputs (defaults resolved) and sorts what differs
 * into replacing and restarting changes. Pure; every resource's diff is built on it.
 */
export function classifyChanges(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  replacing: readonly string[],
  restarting: readonly string[],
): ChangeClasses {
  const changed = [...new Set([...Object.keys(olds), ...Object.keys(news)])]
    .filter((k) => !isDeepStrictEqual(olds[k], news[k]))
    .sort();
  const replaces = changed.filter((k) => replacing.includes(k));
  const restart = replaces.length === 0 && changed.some((k) => restarting.includes(k));
  return { changed, replaces, restart };
}

/**
 * The engine's diff result. A config edited out of band (outputs' `configDrift`, from the last
 * read) is a change even when no input changed: `up` writes the config back.
 */
export function diffResult(d: ChangeClasses, olds: Record<string, unknown>): pulumi.dynamic.DiffResult {
  const configDrift = Array.isArray(olds.configDrift) && olds.configDrift.length > 0;
  return {
    changes: d.changed.length > 0 || configDrift,
    replaces: d.replaces,
    // One name, one domain: the old one must be gone before the new one starts.
    deleteBeforeReplace: d.replaces.length > 0,
  };
}

/** The engine's read result: nothing when the resource is gone from the host, so it is dropped. */
export function readResult(
  id: string,
  seen: { gone: boolean; outputs: object; inputs: object },
): pulumi.dynamic.ReadResult {
  return seen.gone
    ? {}
    : { id, props: seen.outputs as Record<string, unknown>, inputs: seen.inputs as Record<string, unknown> };
}

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

/**
 * The owner string of a resource of this program (see core/ownership.ts): computed where the
 * program runs, passed as the `owner` input, recorded on the dom0 with every artifact it makes.
 */
export function resourceOwner(kind: ResourceKind, resourceName: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily: only programs need the runtime
  const p = require("@pulumi/pulumi") as typeof pulumi;
  return `${p.getProject()}/${p.getStack()} ${kind} ${resourceName}`.replace(/[\p{Cc}]/gu, " ");
}
