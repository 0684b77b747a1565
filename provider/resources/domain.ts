/**
 * The host steps every domain kind (VtpmManager, Vtpm, Guest) shares: start in order, stop only
 * when nothing runs on it, create with cleanup of only what this create made, the one drift
 * policy for updates, and delete of only what the resource owns.
 *
 * The drift policy: a config edited while the running domain still matches is rewritten in
 * place; a domain restarts only when what it runs (libxl's record, `xl list -l`) differs from the
 * declaration, or it was renamed.
 */
import { isDeepStrictEqual } from "node:util";
import {
  driftMarker,
  markerOf,
  unmarked,
  type Context,
  type DeleteContext,
  type UpdateContext,
} from "../core/define";
import { artifactKey, type Artifact } from "../core/ownership";
import { ArtifactExistsError, BackendInUseError, type Dom0 } from "../dom0/dom0";
import type { FileReport, Inspection, InspectTarget } from "../dom0/inspect";
import { diffXlConfigs, parseXlConfig } from "../xl/config";
import { observeStubdomConfig, type Observed, type ObservedStubdom } from "../xl/observe";
import { runningDiffers } from "../xl/running";
import { RemoteCommandError } from "../transport/errors";
import { configPathOf, imagePathOf } from "./stubdom";

/** Inputs every domain kind has. */
export interface DomainInputs {
  readonly name: string;
  readonly configDir: string;
  readonly running: boolean;
  readonly adopt: boolean;
}

/** What differs between the domain kinds, so that one set of steps serves all three. */
export interface DomainKind<V extends DomainInputs> {
  /** "vTPM manager", "vTPM" or "guest", as errors name it. */
  readonly what: string;
  readonly renderConfig: (v: V) => string;
  /** What its console prints once it serves, and how long to wait for it. */
  readonly ready?: { readonly text: string; readonly timeoutSec: (v: V) => number };
  /** Other domains run on it (a manager's vTPMs, a vTPM's guest): no stop while they do. */
  readonly servesOthers: boolean;
  /** Destroyed only once its console says it is idle (the manager's rule for a consistent disk). */
  readonly stopWhenIdle?: boolean;
  /** Waits for what it needs to start (a guest's vTPM). */
  readonly beforeStart?: (dom0: Dom0, v: V) => Promise<void>;
  /** The domain it names as its vtpm backend (a vTPM's manager, a guest's vTPM), if any. */
  readonly backendOf?: (v: V) => string | undefined;
}

export function dom0Of(ctx: Context): Dom0 {
  if (!ctx.dom0) throw new Error("internal: a domain resource without a connection");
  return ctx.dom0;
}

/** The artifacts of a domain itself: its name and its config file. */
export function domainArtifacts(v: DomainInputs, what: string): Artifact[] {
  return [
    { type: "domain", name: v.name, role: `${what} domain`, property: "name" },
    { type: "file", name: configPathOf(v), role: `${what} config`, property: "configDir" },
  ];
}

export async function startDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
): Promise<void> {
  if (kind.beforeStart) await kind.beforeStart(dom0, v);
  await dom0.xlCreate(configPathOf(v), kind.backendOf?.(v));
  if (kind.ready) await dom0.waitForConsole(v.name, kind.ready.text, kind.ready.timeoutSec(v));
}

/**
 * Stops the running domain `name` of this kind, only when nothing runs on it (a manager's vTPMs, a
 * vTPM's guest: stopping it under them may corrupt keys). `usedBy` is what the inspection this step
 * follows read, in the same round trip as the rest; the destroy checks again as one step under
 * the domain's lock, so that nothing starts on it in between (another stack's vTPM on this
 * manager).
 */
export async function stopDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
  name: string,
  doing: string,
  usedBy: readonly string[],
): Promise<void> {
  refuseWhileUsed(kind, dom0, name, doing, usedBy);
  if (kind.stopWhenIdle && kind.ready)
    await dom0.waitForConsole(name, kind.ready.text, kind.ready.timeoutSec(v));
  if (kind.servesOthers) await dom0.xlDestroyUnlessUsed(name, kind.what, doing);
  else await dom0.xlDestroy(name);
}

/** Throws BackendInUseError, naming them, when domains use this one as their vtpm backend. */
function refuseWhileUsed<V extends DomainInputs>(
  kind: DomainKind<V>,
  dom0: Dom0,
  name: string,
  doing: string,
  usedBy: readonly string[],
): void {
  if (kind.servesOthers && usedBy.length)
    throw new BackendInUseError(dom0.endpoint, kind.what, name, doing, [...usedBy]);
}

/** A disk a domain is created with (a vTPM image, a guest overlay): made, and removed on failure. */
export interface DomainDisk {
  readonly path: string;
  readonly make: () => Promise<void>;
}

/**
 * Creates a domain: its disk (never over an existing one), its 0600 config, and starts it when
 * `running`. Its artifacts are already claimed, so nothing here can be another's. A failure
 * removes exactly what this create made: a domain only if this create started it, the config
 * and disk only if this create wrote them (a new disk holds nothing yet); after a step that got
 * no answer, whatever is at their names (claimed fresh, so this create's own).
 *
 * What an earlier create of this resource left (`resumed`, see Context) is taken up as an update
 * would: the disk it made is kept (never made over), the config written, the domain started, or
 * restarted only if the running one differs.
 */
export async function createDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
  disk: DomainDisk,
  resumed: readonly string[] = [],
): Promise<void> {
  if (resumed.length) {
    const report = await dom0.inspect(v.name, [{ role: "image", path: disk.path }]);
    const left =
      resumed.includes(artifactKey({ type: "file", name: disk.path })) && report.files[disk.path]?.exists;
    console.error(
      `pulumi-tvd: taking up what an earlier create of ${kind.what} ${v.name} left on ${dom0.endpoint} (${resumed.join(", ")})`,
    );
    const olds = { name: v.name, configDir: v.configDir };
    return updateDomain(
      kind,
      { dom0, owner: "", state: {}, olds, changed: new Map() },
      v,
      left ? {} : { prepare: disk.make, restart: report.domain.running },
    );
  }
  const made: string[] = [];
  let started = false;
  try {
    await disk.make();
    made.push(disk.path);
    await dom0.writeFileAtomic(configPathOf(v), kind.renderConfig(v), "0600", v.name);
    made.push(configPathOf(v));
    if (v.running) {
      if (kind.beforeStart) await kind.beforeStart(dom0, v);
      await dom0.xlCreate(configPathOf(v), kind.backendOf?.(v));
      started = true;
      if (kind.ready) await dom0.waitForConsole(v.name, kind.ready.text, kind.ready.timeoutSec(v));
    }
  } catch (e) {
    // A step that got no answer (a timeout, a cut connection) may have done its work on the dom0:
    // a domain started, a disk or config linked into place. Every artifact was claimed fresh (none
    // existed), so whatever is at its name now is this create's own, and goes.
    const unanswered = e instanceof RemoteCommandError && e.exitCode === null;
    if (started || unanswered) await dom0.xlDestroy(v.name).catch(() => undefined);
    const written = unanswered ? [disk.path, configPathOf(v)] : made;
    await dom0.removeFiles(written).catch(() => undefined);
    throw e;
  }
}

/**
 * Takes over an existing domain after checking it is the one declared: every input the host
 * shows otherwise is named (by property only: some are secrets).
 */
export async function adoptDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
  seen: Partial<V>,
): Promise<void> {
  const problems = Object.entries(seen)
    .filter(([k, value]) => k !== "running" && !isDeepStrictEqual(value, (v as Record<string, unknown>)[k]))
    .map(([k, value]) => (markerOf(value) ? `${k}: ${String(value)}` : `${k} differs in ${configPathOf(v)}`));
  if (problems.length)
    throw new Error(`cannot adopt ${kind.what} ${v.name} on ${dom0.endpoint}: ${problems.join("; ")}`);
  if (v.running && !seen.running) await startDomain(kind, dom0, v);
}

/**
 * What a domain's config file says, as inputs: `parse` reads the file and `toInputs` lays what it
 * read over the declaration. A missing or unreadable file, or anything else edited in it (a
 * comment aside), shows as drift on configDir; another identity in the file (a vTPM's UUID) is
 * drift on that input, never a new identity.
 */
export function configSeen<V extends DomainInputs, O>(
  kind: DomainKind<V>,
  v: V,
  config: FileReport | undefined,
  parse: (text: string) => Observed<O>,
  toInputs: (o: O) => Partial<V>,
  identity: readonly (keyof V & string)[] = [],
): Record<string, unknown> {
  const path = configPathOf(v);
  if (!config?.exists) return { configDir: driftMarker(v.configDir, "missing", path) };
  const o = parse(config.content ?? "");
  if (!o.ok) return { configDir: driftMarker(v.configDir, "changed", `${path} is unreadable`) };
  const seen: Record<string, unknown> = { ...toInputs(o.value) };
  const other = diffXlConfigs(
    parseXlConfig(config.content ?? ""),
    parseXlConfig(kind.renderConfig({ ...v, ...seen })),
  );
  if (other.length) seen.configDir = driftMarker(v.configDir, "changed", `${path}: ${other.join(", ")}`);
  for (const k of identity) {
    const declared = (v as Record<string, unknown>)[k];
    if (seen[k] !== undefined && String(seen[k]).toLowerCase() !== String(declared).toLowerCase())
      seen[k] = driftMarker(String(declared), "changed", `the config says ${String(seen[k])}`);
  }
  return seen;
}

/**
 * A stub domain (manager or vTPM) as the host shows it, in one round trip: its config (see
 * configSeen), its domain, and a missing image as drift on imagePath.
 */
export async function observeStubdomain<V extends DomainInputs & { imagePath?: string }>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
  fromConfig: (o: ObservedStubdom) => Partial<V>,
  identity: readonly (keyof V & string)[] = [],
): Promise<{ gone: boolean; seen: Partial<V>; report: Inspection }> {
  const imagePath = imagePathOf(v);
  const report = await inspectDomain(dom0, v, [{ role: "image", path: imagePath }]);
  const config = report.files[configPathOf(v)];
  const image = report.files[imagePath];
  const seen: Record<string, unknown> = {
    ...configSeen(kind, v, config, observeStubdomConfig, fromConfig, identity),
    running: report.domain.running,
  };
  if (!image?.exists) seen.imagePath = driftMarker(imagePath, "missing");
  return {
    gone: !config?.exists && !image?.exists && !report.domain.running,
    seen: seen as Partial<V>,
    report,
  };
}

/**
 * A stub domain's raw image as the disk it is created with: never made over an existing file
 * (a vTPM's or manager's keys), with the fix in the error.
 */
export function rawImageDisk<V extends DomainInputs & { imagePath?: string; imageSizeMiB: number }>(
  kind: DomainKind<V>,
  dom0: Dom0,
  v: V,
  adoptHint: string,
): DomainDisk {
  const path = imagePathOf(v);
  return {
    path,
    make: async () => {
      try {
        await dom0.createRawImage(path, v.imageSizeMiB, v.name);
      } catch (e) {
        if (!(e instanceof ArtifactExistsError)) throw e;
        throw new Error(
          `${kind.what} image ${path} already exists on ${dom0.endpoint}; pulumi-tvd never overwrites it. ` +
            `Set adopt: true${adoptHint} to take the existing ${kind.what} over, or choose another imagePath`,
        );
      }
    },
  };
}

/** The name and config path a stored state places the domain at (drift markers read through). */
export function placedAt(state: Record<string, unknown>): { name: string; configPath: string } {
  const name = unmarked(state.name) ?? String(state.name);
  return {
    name,
    configPath: configPathOf({ name, configDir: unmarked(state.configDir) ?? String(state.configDir) }),
  };
}

/**
 * Applies new inputs to a domain: the one drift policy. `olds` name the domain as it was (a
 * rename stops the old one first); `disk.prepare` repairs the kind's disk before a start, and
 * `disk.restart` says the running domain lost its disk.
 */
export async function updateDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  ctx: UpdateContext<V>,
  v: V,
  disk: { readonly prepare?: () => Promise<void>; readonly restart?: boolean } = {},
): Promise<void> {
  const dom0 = dom0Of(ctx);
  const { name: oldName, configPath: oldConfigPath } = placedAt(ctx.olds);
  const report = await dom0.inspect(oldName, []);
  const running = report.domain.running;
  const renamed = oldName !== v.name;
  const desired = kind.renderConfig(v);
  const fields = running ? runningDiffers(report.domain.config, desired) : [];
  const differs = running && (renamed || disk.restart === true || fields.length > 0);
  if (differs)
    console.error(
      `pulumi-tvd: restarting ${kind.what} ${oldName} on ${dom0.endpoint}: ${renamed ? `renamed to ${v.name}` : disk.restart ? "its disk was remade" : `the running domain differs in ${fields.join(", ")}`}`,
    );
  if (running && (differs || !v.running))
    await stopDomain(
      kind,
      dom0,
      v,
      oldName,
      renamed ? "rename" : differs ? "restart" : "stop",
      report.domain.usedBy,
    );
  if (disk.prepare) await disk.prepare();
  await dom0.writeFileAtomic(configPathOf(v), desired, "0600", v.name);
  if (oldConfigPath !== configPathOf(v)) await dom0.removeFiles([oldConfigPath]);
  if (v.running && (!running || differs)) await startDomain(kind, dom0, v);
}

/**
 * Deletes a domain, its config and the kind's `files` that go with it (a guest's overlay), each
 * only when this resource owns it; the files in one round trip.
 */
export async function deleteDomain<V extends DomainInputs>(
  kind: DomainKind<V>,
  ctx: DeleteContext,
  v: V,
  files: readonly Artifact[] = [],
): Promise<void> {
  const dom0 = dom0Of(ctx);
  const [domain, config] = domainArtifacts(v, kind.what);
  if (ctx.owns(domain)) {
    const report = await dom0.inspect(v.name, []);
    if (report.domain.running) await stopDomain(kind, dom0, v, v.name, "destroy", report.domain.usedBy);
    else refuseWhileUsed(kind, dom0, v.name, "destroy", report.domain.usedBy);
  }
  await dom0.removeFiles([config, ...files].filter((f) => ctx.owns(f)).map((f) => f.name));
}

/** One round trip: the domain, its config and the kind's files. */
export async function inspectDomain(
  dom0: Dom0,
  v: DomainInputs,
  files: readonly InspectTarget[],
): Promise<Inspection> {
  return dom0.inspect(v.name, [{ role: "config", path: configPathOf(v) }, ...files]);
}

/**
 * create and update of a stub domain (manager or vTPM): adopt what is there after checking it
 * (`observe` is the kind's), or make its image, config and domain; updates follow the drift policy.
 */
export function stubdomVerbs<V extends DomainInputs & { imagePath?: string; imageSizeMiB: number }>(
  kind: DomainKind<V>,
  observe: (ctx: Context, v: V) => Promise<{ seen: Partial<V> }>,
  adoptHint: string,
): { create: (ctx: Context, v: V) => Promise<void>; update: (ctx: UpdateContext<V>, v: V) => Promise<void> } {
  return {
    async create(ctx, v) {
      const dom0 = dom0Of(ctx);
      if (v.adopt) return adoptDomain(kind, dom0, v, (await observe(ctx, v)).seen);
      await createDomain(kind, dom0, v, rawImageDisk(kind, dom0, v, adoptHint), ctx.resumed);
    },
    update: (ctx, v) => updateDomain(kind, ctx, v),
  };
}

/**
 * Moves a key image into the dom0's archive and records the archive entry as this resource's
 * (role "archived <role>"): it outlives the resource, and nothing else may claim or overwrite it.
 */
export async function archiveKeyImage(ctx: DeleteContext, image: Artifact): Promise<string | undefined> {
  const dom0 = dom0Of(ctx);
  const dest = await dom0.archive(image.name);
  if (dest) await dom0.claim(ctx.owner, [{ ...image, name: dest, role: `archived ${image.role}` }], true);
  return dest;
}
