/**
 * VtpmManager lifecycle. check and diff never touch a host; create, read, update and delete
 * wire the pure core (render, observe, diff) to Dom0 operations.
 */
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
import { renderVtpmManagerConfig } from "../../xl/domains";
import { configPathOf, imagePathOf } from "../stubdom";
import {
  adoptStubdom,
  createStubdom,
  inspectStubdom,
  refuseWhileUsed,
  startStubdom,
  type StubdomKind,
} from "../stubdomLifecycle";
import { MANAGER_READY, managerMemoryMiB, vtpmManagerSchema, type VtpmManagerInputs } from "./args";
import { diffVtpmManager } from "./diff";

const KIND = "VtpmManager";
const parse = (props: Record<string, unknown>) => parseInputs(vtpmManagerSchema, KIND, props);

export interface VtpmManagerOutputs extends VtpmManagerInputs {
  readonly domid: number | null;
  readonly imagePresent: boolean;
  readonly configDrift: string[];
  readonly providerVersion: string;
}

const manager: StubdomKind<VtpmManagerInputs> = {
  what: "vTPM manager",
  ready: MANAGER_READY,
  readyTimeoutSec: (v) => v.readyTimeoutSec,
  renderConfig: (v) =>
    renderXlConfig(
      renderVtpmManagerConfig({
        name: v.name,
        kernel: v.kernel,
        ramdisk: v.ramdisk,
        memoryMiB: managerMemoryMiB(v),
        image: imagePathOf(v),
        iomem: v.iomem,
        tpmLocality: v.tpmLocality,
        tpm2: v.tpm2,
        ownerAuth: v.ownerAuth,
        srkAuth: v.srkAuth,
      }),
      `vTPM manager ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
    ),
};

/**
 * The manager as it is on the host: the user's inputs, with what the host says overriding them.
 * `userSet` is the inputs bag as the user wrote it (state inputs), to report only what they set.
 */
async function observe(dom0: Dom0, v: VtpmManagerInputs, userSet: Record<string, unknown>) {
  const seen = await inspectStubdom(manager, dom0, v);
  let inputs: VtpmManagerInputs = { ...v, running: seen.report.domain.running };
  const o = seen.observed;
  if (o) {
    inputs = {
      ...inputs,
      kernel: o.kernel ?? inputs.kernel,
      ramdisk: o.ramdisk,
      memoryMiB: o.memoryMiB ?? inputs.memoryMiB,
      iomem: o.iomem ? [...o.iomem] : inputs.iomem,
      tpm2: o.options.tpm2 === "1",
      tpmLocality: o.options.tpmlocality !== undefined ? Number(o.options.tpmlocality) : undefined,
      ownerAuth: o.options.owner_auth,
      srkAuth: o.options.srk_auth,
    };
    // Only what the user set is reported: an unset memoryMiB stays unset when it has its default.
    if (v.memoryMiB === undefined && inputs.memoryMiB === managerMemoryMiB({ ...v, memoryMiB: undefined })) {
      inputs = { ...inputs, memoryMiB: undefined };
    }
  }
  const outputs: VtpmManagerOutputs & { inputKeys: string[] } = {
    ...inputs,
    domid: seen.report.domain.domid ?? null,
    imagePresent: seen.imagePresent,
    configDrift: seen.configDrift,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  };
  return {
    inputs: wireSafe(observedInputs(userSet, v, inputs)),
    running: inputs.running,
    gone: seen.gone,
    outputs: wireSafe(outputs),
  };
}

/** Only while idle: the docs' rule for a consistent manager disk. */
async function stopWhenIdle(dom0: Dom0, v: VtpmManagerInputs): Promise<void> {
  await dom0.waitForConsole(v.name, MANAGER_READY, v.readyTimeoutSec);
  await dom0.xlDestroy(v.name);
}

export const vtpmManagerLifecycle = {
  check: checkWith(vtpmManagerSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    const d = diffVtpmManager(parse(olds), parse(news), olds.imagePresent !== false);
    if (d.refused) throw new Error(d.refused);
    return diffResult(d, olds);
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    if (v.adopt) await adoptStubdom(manager, dom0, v);
    else await createStubdom(manager, dom0, v);
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
    const before = parse(olds);
    const v = parse(news);
    const dom0 = await Dom0.connect(v.connection);
    const now = await observe(dom0, v, userProps(news));
    const needsRestart = diffVtpmManager(before, v).restart || now.outputs.configDrift.length > 0;
    if (now.running && needsRestart) {
      await refuseWhileUsed(dom0, manager.what, v.name, "restart");
      await stopWhenIdle(dom0, v);
    }
    await dom0.writeFileAtomic(configPathOf(v), manager.renderConfig(v), "0600", v.name);
    const running = now.running && !needsRestart;
    if (v.running && !running) await startStubdom(manager, dom0, v);
    if (!v.running && running) await stopWhenIdle(dom0, v);
    return { outs: (await observe(dom0, v, userProps(news))).outputs };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    await refuseWhileUsed(dom0, manager.what, v.name, "destroy");
    if ((await observe(dom0, v, {})).running) await stopWhenIdle(dom0, v);
    await dom0.removeFiles([configPathOf(v)]);
    // The image holds the keys of every vTPM the manager served: archived, never deleted.
    await dom0.archive(imagePathOf(v));
  },
};
