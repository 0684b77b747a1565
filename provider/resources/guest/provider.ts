/**
 * Guest lifecycle. check and diff never touch a host; create, read, update and delete wire the
 * pure core (render, observe, diff) to Dom0 operations. The overlay is the guest's disk: it is
 * made from the base image once, kept across restarts, and removed only when the guest is.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ArtifactExistsError, ArtifactMissingError, Dom0 } from "../../dom0/dom0";
import {
  checkWith,
  diffResult,
  observedInputs,
  parseInputs,
  readResult,
  userProps,
  userSetOf,
  wireSafe,
} from "../../dynamic";
import { providerVersion } from "../../version";
import { diffXlConfigs, parseXlConfig, renderXlConfig } from "../../xl/config";
import { renderGuestConfig } from "../../xl/domains";
import { observeGuestConfig } from "../../xl/observe";
import { configPathOf } from "../stubdom";
import { VTPM_READY } from "../vtpm/args";
import { guestDomainOf, guestSchema, overlayPathOf, type GuestInputs } from "./args";
import { diffGuest } from "./diff";
import { guestInputsFromConfig } from "./observe";

const KIND = "Guest";
const parse = (props: Record<string, unknown>) => parseInputs(guestSchema, KIND, props);

export interface GuestOutputs extends GuestInputs {
  readonly domid: number | null;
  readonly overlayPresent: boolean;
  /** The overlay's backing file as `qemu-img info` reports it. */
  readonly overlayBackingFile: string | null;
  /** The running guest has its vTPM attached (`xl vtpm-list`). */
  readonly vtpmAttached: boolean;
  readonly configDrift: string[];
  readonly providerVersion: string;
}

function renderConfig(v: GuestInputs): string {
  return renderXlConfig(
    renderGuestConfig(guestDomainOf(v)),
    `guest ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
  );
}

/** The guest as it is on the host; see the VtpmManager's observe for the reporting rules. */
async function observe(dom0: Dom0, v: GuestInputs, userSet: Record<string, unknown>) {
  const configPath = configPathOf(v);
  const overlayPath = overlayPathOf(v);
  const report = await dom0.inspect(v.name, [
    { role: "config", path: configPath },
    { role: "overlay", path: overlayPath },
  ]);
  const config = report.files[configPath];
  const overlay = report.files[overlayPath];
  let inputs: GuestInputs = { ...v, running: report.domain.running };
  let configDrift = ["(missing)"];
  if (config?.exists && config.content !== undefined) {
    const seen = observeGuestConfig(config.content);
    if (seen.ok) {
      inputs = guestInputsFromConfig(seen.value, inputs);
      configDrift = diffXlConfigs(parseXlConfig(config.content), parseXlConfig(renderConfig(v)));
    } else {
      configDrift = ["(unreadable)"];
    }
  }
  const backing = overlay?.qemu?.backingFile;
  // An overlay rebased out of band no longer derives from the declared base: drift on baseImage.
  if (backing !== undefined) inputs = { ...inputs, baseImage: backing };
  // Outputs keep what was applied (what the running domain was started with); the config's
  // values go to the reported inputs, where the engine shows them as drift.
  const outputs: GuestOutputs & { inputKeys: string[] } = {
    ...v,
    running: report.domain.running,
    domid: report.domain.domid ?? null,
    overlayPresent: overlay?.exists === true,
    overlayBackingFile: backing ?? null,
    vtpmAttached: report.domain.vtpms.length > 0,
    configDrift,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  };
  return {
    inputs: wireSafe(observedInputs(userSet, v, inputs)),
    running: report.domain.running,
    overlayPresent: outputs.overlayPresent,
    gone: !config?.exists && !overlay?.exists && !report.domain.running,
    outputs: wireSafe(outputs),
  };
}

/** Starts the guest, only once its vTPM serves (xl would fail on a vTPM not yet listening). */
async function start(dom0: Dom0, v: GuestInputs): Promise<void> {
  if (v.vtpm) await dom0.waitForConsole(v.vtpm, VTPM_READY, v.vtpmReadyTimeoutSec);
  await dom0.xlCreate(configPathOf(v));
}

/** A new overlay on the base image, never over an existing one, with errors that say the fix. */
async function createOverlay(dom0: Dom0, v: GuestInputs): Promise<void> {
  try {
    await dom0.createOverlay(v.baseImage, v.baseImageFormat, overlayPathOf(v), v.name);
  } catch (e) {
    if (e instanceof ArtifactExistsError) {
      throw new Error(
        `guest overlay ${overlayPathOf(v)} already exists on ${dom0.endpoint}; pulumi-tvd never overwrites a guest's disk. ` +
          "Set adopt: true to take the existing guest over, or choose another overlayPath",
      );
    }
    if (e instanceof ArtifactMissingError) {
      throw new Error(
        `base image ${v.baseImage} does not exist on ${dom0.endpoint}; copy the template there or fix baseImage`,
      );
    }
    throw e;
  }
}

export const guestLifecycle = {
  check: checkWith(guestSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    return diffResult(diffGuest(parse(olds), parse(news), olds.overlayPresent !== false), olds);
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    if (v.adopt) {
      await adopt(dom0, v);
    } else {
      await createOverlay(dom0, v);
      try {
        await dom0.writeFileAtomic(configPathOf(v), renderConfig(v), "0600", v.name);
        if (v.running) await start(dom0, v);
      } catch (e) {
        // The overlay is new and holds nothing yet: removing what this create made loses nothing.
        await dom0.xlDestroy(v.name).catch(() => undefined);
        await dom0.removeFiles([configPathOf(v), overlayPathOf(v)]).catch(() => undefined);
        throw e;
      }
    }
    return { id: v.name, outs: (await observe(dom0, v, userProps(props))).outputs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const userSet = userSetOf(props);
    const v = parse(userSet);
    return readResult(id, await observe(await Dom0.connect(v.connection), v, userSet));
  },

  async update(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    const v = parse(news);
    const dom0 = await Dom0.connect(v.connection);
    const now = await observe(dom0, v, userProps(news));
    const d = diffGuest(parse(olds), v, now.overlayPresent);
    // xl applies none of these to a running PV guest: the domain restarts, the overlay stays.
    // A config edited out of band only matters at the next start: rewriting it is enough.
    const needsRestart = d.restart || d.recreateOverlay === true;
    if (now.running && (needsRestart || !v.running)) await dom0.xlDestroy(v.name);
    // The overlay vanished out of band: what it held is gone already; a fresh one from the base
    // lets the guest boot again.
    if (!now.overlayPresent) await createOverlay(dom0, v);
    await dom0.writeFileAtomic(configPathOf(v), renderConfig(v), "0600", v.name);
    if (v.running && (!now.running || needsRestart)) await start(dom0, v);
    return { outs: (await observe(dom0, v, userProps(news))).outputs };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    await dom0.xlDestroy(v.name);
    await dom0.removeFiles([configPathOf(v), overlayPathOf(v)]);
  },
};

/** Takes over an existing guest after checking it is the one declared; every difference is named. */
async function adopt(dom0: Dom0, v: GuestInputs): Promise<void> {
  const seen = await observe(dom0, v, {});
  const problems: string[] = [];
  if (!seen.overlayPresent) problems.push(`overlay ${overlayPathOf(v)} does not exist`);
  else if (seen.outputs.overlayBackingFile !== v.baseImage)
    problems.push(
      `overlay ${overlayPathOf(v)} is backed by ${seen.outputs.overlayBackingFile}, not ${v.baseImage}`,
    );
  for (const field of seen.outputs.configDrift as string[])
    problems.push(`config ${configPathOf(v)} differs in ${field}`);
  if (problems.length) {
    throw new Error(`cannot adopt guest ${v.name} on ${dom0.endpoint}: ${problems.join("; ")}`);
  }
  if (v.running && !seen.running) await start(dom0, v);
}
