/**
 * The lifecycle steps both vTPM stub domains (VtpmManager, Vtpm) share on a dom0: create with an
 * image that is never overwritten, inspect, adopt, and the refusal to stop one that is in use.
 */
import { ArtifactExistsError, type Dom0 } from "../dom0/dom0";
import type { Inspection } from "../dom0/inspect";
import { diffXlConfigs, parseXlConfig } from "../xl/config";
import { observeStubdomConfig, type ObservedStubdom } from "../xl/observe";
import { configPathOf, imagePathOf } from "./stubdom";

/** A stub domain's lifecycle vocabulary, so both resources word their errors alike. */
export interface StubdomKind<V> {
  /** "vTPM manager" or "vTPM", as errors name it. */
  readonly what: string;
  /** What its console prints once it is ready. */
  readonly ready: string;
  readonly readyTimeoutSec: (v: V) => number;
  readonly renderConfig: (v: V) => string;
}

type StubdomInputs = { name: string; imagePath?: string; configDir: string; imageSizeMiB: number };

/** Starts a stub domain from its written config and waits until its console says it is ready. */
export async function startStubdom<V extends StubdomInputs>(
  kind: StubdomKind<V>,
  dom0: Dom0,
  v: V,
): Promise<void> {
  await dom0.xlCreate(configPathOf(v));
  await dom0.waitForConsole(v.name, kind.ready, kind.readyTimeoutSec(v));
}

/**
 * Creates a stub domain's image (never over an existing one), its 0600 config, and starts it
 * when `running`. A failure after the image was made removes what this create made: the image
 * is new and empty, so nothing of value is lost, and the next `up` starts clean.
 */
export async function createStubdom<V extends StubdomInputs & { running: boolean }>(
  kind: StubdomKind<V>,
  dom0: Dom0,
  v: V,
): Promise<void> {
  try {
    await dom0.createRawImage(imagePathOf(v), v.imageSizeMiB, v.name);
  } catch (e) {
    if (e instanceof ArtifactExistsError) {
      throw new Error(
        `${kind.what} image ${imagePathOf(v)} already exists on ${dom0.endpoint}; pulumi-tvd never overwrites it. ` +
          `Set adopt: true to take the existing ${kind.what} over, or choose another imagePath`,
      );
    }
    throw e;
  }
  try {
    await dom0.writeFileAtomic(configPathOf(v), kind.renderConfig(v), "0600", v.name);
    if (v.running) await startStubdom(kind, dom0, v);
  } catch (e) {
    await dom0.xlDestroy(v.name).catch(() => undefined);
    await dom0.removeFiles([configPathOf(v), imagePathOf(v)]).catch(() => undefined);
    throw e;
  }
}

/** A stub domain as `read` sees it in one round trip: config, image and domain. */
export interface StubdomInspection {
  readonly report: Inspection;
  /** The config read back, when it exists and parses. */
  readonly observed?: ObservedStubdom;
  /** Settings where the config differs from what would be rendered; "(missing)" without one. */
  readonly configDrift: string[];
  readonly imagePresent: boolean;
  /** Nothing of it is left on the host: read drops the resource. */
  readonly gone: boolean;
}

export async function inspectStubdom<V extends StubdomInputs>(
  kind: StubdomKind<V>,
  dom0: Dom0,
  v: V,
): Promise<StubdomInspection> {
  const configPath = configPathOf(v);
  const imagePath = imagePathOf(v);
  const report = await dom0.inspect(v.name, [
    { role: "config", path: configPath },
    { role: "image", path: imagePath },
  ]);
  const config = report.files[configPath];
  const image = report.files[imagePath];
  let observed: ObservedStubdom | undefined;
  let configDrift = ["(missing)"];
  if (config?.exists && config.content !== undefined) {
    const seen = observeStubdomConfig(config.content);
    observed = seen.ok ? seen.value : undefined;
    configDrift = seen.ok
      ? diffXlConfigs(parseXlConfig(config.content), parseXlConfig(kind.renderConfig(v)))
      : ["(unreadable)"];
  }
  return {
    report,
    observed,
    configDrift,
    imagePresent: image?.exists === true,
    gone: !config?.exists && !image?.exists && !report.domain.running,
  };
}

/**
 * Takes over an existing stub domain after checking it is the one declared: its image exists
 * and its config says what would be rendered. Every difference is named.
 */
export async function adoptStubdom<V extends StubdomInputs & { running: boolean }>(
  kind: StubdomKind<V>,
  dom0: Dom0,
  v: V,
): Promise<void> {
  const seen = await inspectStubdom(kind, dom0, v);
  const problems: string[] = [];
  if (!seen.imagePresent) problems.push(`image ${imagePathOf(v)} does not exist`);
  for (const field of seen.configDrift) problems.push(`config ${configPathOf(v)} differs in ${field}`);
  if (problems.length) {
    throw new Error(`cannot adopt ${kind.what} ${v.name} on ${dom0.endpoint}: ${problems.join("; ")}`);
  }
  if (v.running && !seen.report.domain.running) await startStubdom(kind, dom0, v);
}

/**
 * Refuses to go on while other domains use this stub domain as their vtpm backend (a
 * manager's vTPMs, a vTPM's guest): stopping it under them may corrupt keys.
 */
export async function refuseWhileUsed(dom0: Dom0, what: string, name: string, doing: string): Promise<void> {
  const users = await dom0.domainsUsing(name);
  if (users.length) {
    throw new Error(
      `refusing to ${doing} ${what} ${name} on ${dom0.endpoint}: domains use it as their vTPM backend: ${users.join(", ")}. ` +
        "Stop or destroy them first (their keys are safe in the vTPM images)",
    );
  }
}
