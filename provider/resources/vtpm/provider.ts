/**
 * Vtpm lifecycle. check and diff never touch a host; create, read, update and delete wire the
 * pure core (render, observe, diff) to Dom0 operations. The UUID is generated once, at create,
 * and kept in state: it is the vTPM's identity to its manager.
 */
import { randomUUID } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { Dom0 } from "../../dom0/dom0";
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
import { renderXlConfig } from "../../xl/config";
import { renderVtpmConfig } from "../../xl/domains";
import { configPathOf, imagePathOf } from "../stubdom";
import {
  adoptStubdom,
  createStubdom,
  inspectStubdom,
  refuseWhileUsed,
  startStubdom,
  type StubdomKind,
} from "../stubdomLifecycle";
import { VTPM_READY, vtpmSchema, type VtpmInputs } from "./args";
import { diffVtpm } from "./diff";

const KIND = "Vtpm";
const parse = (props: Record<string, unknown>) => parseInputs(vtpmSchema, KIND, props);

/** Inputs with the UUID settled: the user's, or the one generated at create. */
type SettledVtpm = VtpmInputs & { uuid: string };

export interface VtpmOutputs extends SettledVtpm {
  readonly domid: number | null;
  /** The UUID the running vTPM domain presents to its manager (`xl vtpm-list`). */
  readonly runningUuid: string | null;
  readonly imagePresent: boolean;
  readonly configDrift: string[];
  readonly providerVersion: string;
}

const vtpm: StubdomKind<SettledVtpm> = {
  what: "vTPM",
  ready: VTPM_READY,
  readyTimeoutSec: (v) => v.readyTimeoutSec,
  renderConfig: (v) =>
    renderXlConfig(
      renderVtpmConfig({
        name: v.name,
        kernel: v.kernel,
        ramdisk: v.ramdisk,
        memoryMiB: v.memoryMiB,
        image: imagePathOf(v),
        manager: v.manager,
        uuid: v.uuid,
        logLevel: v.logLevel,
        hwInitPcr: v.hwInitPcr,
        maintCmds: v.maintCmds,
      }),
      `vTPM ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
    ),
};

/**
 * The vTPM as it is on the host. Its identity (`uuid` in outputs) never changes on read: a
 * config edited to another UUID is reported as drift on the `uuid` input, and `up` writes the
 * identity back without a restart when the running domain still presents it.
 */
async function observe(dom0: Dom0, v: SettledVtpm, userSet: Record<string, unknown>) {
  const seen = await inspectStubdom(vtpm, dom0, v);
  const domain = seen.report.domain;
  let inputs: SettledVtpm = { ...v, running: domain.running };
  const o = seen.observed;
  if (o) {
    inputs = {
      ...inputs,
      kernel: o.kernel ?? inputs.kernel,
      ramdisk: o.ramdisk,
      memoryMiB: o.memoryMiB ?? inputs.memoryMiB,
      manager: o.vtpm?.backend ?? inputs.manager,
      uuid: o.vtpm?.uuid ?? inputs.uuid,
      logLevel: o.options.loglevel as VtpmInputs["logLevel"],
      hwInitPcr: o.options.hwinitpcr,
      maintCmds: o.options.maintcmds === undefined ? undefined : o.options.maintcmds === "1",
    };
  }
  // Outputs keep what was applied (what the running domain was started with); the config's
  // values go to the reported inputs, where the engine shows them as drift.
  const outputs: VtpmOutputs & { inputKeys: string[] } = {
    ...v,
    running: domain.running,
    domid: domain.domid ?? null,
    runningUuid: domain.vtpms[0]?.uuid ?? null,
    imagePresent: seen.imagePresent,
    configDrift: seen.configDrift,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  };
  return {
    inputs: wireSafe(observedInputs(userSet, v, inputs)),
    running: domain.running,
    gone: seen.gone,
    outputs: wireSafe(outputs),
  };
}

/** The UUID this vTPM has: the declared one, else the one in state (generated at create). */
function settle(v: VtpmInputs, uuid: unknown): SettledVtpm {
  return { ...v, uuid: v.uuid ?? (typeof uuid === "string" ? uuid : randomUUID()) };
}

export const vtpmLifecycle = {
  check: checkWith(vtpmSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    const old = parse(olds);
    const d = diffVtpm({ inputs: old, uuid: String(olds.uuid) }, parse(news), olds.imagePresent !== false);
    if (d.refused) throw new Error(d.refused);
    // The running domain presents another UUID than its own: a restart with the right one.
    const identityDrift = olds.runningUuid !== null && olds.runningUuid !== olds.uuid && old.running;
    const result = diffResult(d, olds);
    return { ...result, changes: result.changes || identityDrift };
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const parsed = parse(props);
    const dom0 = await Dom0.connect(parsed.connection);
    let v: SettledVtpm;
    if (parsed.adopt) {
      // An adopted vTPM keeps the UUID its keys are bound to.
      const existing = (await inspectStubdom(vtpm, dom0, settle(parsed, undefined))).observed?.vtpm?.uuid;
      v = settle(parsed, existing);
      await adoptStubdom(vtpm, dom0, v);
    } else {
      v = settle(parsed, undefined);
      await createStubdom(vtpm, dom0, v);
    }
    return { id: v.name, outs: (await observe(dom0, v, userProps(props))).outputs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const userSet = userSetOf(props);
    const v = settle(parse(userSet), props.uuid);
    return readResult(id, await observe(await Dom0.connect(v.connection), v, userSet));
  },

  async update(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    const before = parse(olds);
    const v = settle(parse(news), olds.uuid);
    const dom0 = await Dom0.connect(v.connection);
    const now = await observe(dom0, v, userProps(news));
    // A config edited out of band is repaired by rewriting it; the running domain is restarted
    // only when what it runs differs from the declaration (inputs changed, or the UUID it
    // presents to the manager is not its own).
    const needsRestart =
      diffVtpm({ inputs: before, uuid: v.uuid }, v).restart ||
      (now.outputs.runningUuid !== null && now.outputs.runningUuid !== v.uuid);
    if (now.running && needsRestart) {
      await refuseWhileUsed(dom0, vtpm.what, v.name, "restart");
      await dom0.xlDestroy(v.name);
    }
    await dom0.writeFileAtomic(configPathOf(v), vtpm.renderConfig(v), "0600", v.name);
    const running = now.running && !needsRestart;
    if (v.running && !running) await startStubdom(vtpm, dom0, v);
    if (!v.running && running) {
      await refuseWhileUsed(dom0, vtpm.what, v.name, "stop");
      await dom0.xlDestroy(v.name);
    }
    return { outs: (await observe(dom0, v, userProps(news))).outputs };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = settle(parse(props), props.uuid);
    const dom0 = await Dom0.connect(v.connection);
    await refuseWhileUsed(dom0, vtpm.what, v.name, "destroy");
    await dom0.xlDestroy(v.name);
    await dom0.removeFiles([configPathOf(v)]);
    // The image is the vTPM's keys: by default archived, never deleted.
    if (v.deletionPolicy === "archive") await dom0.archive(imagePathOf(v));
    if (v.deletionPolicy === "destroy") await dom0.removeFiles([imagePathOf(v)]);
  },
};
