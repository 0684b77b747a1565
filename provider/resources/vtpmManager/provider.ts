/**
 * VtpmManager lifecycle. check and diff never touch a host; create, read, update and delete
 * wire the pure core (render, observe, diff) to Dom0 operations.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ArtifactExistsError, Dom0 } from "../../dom0/dom0";
import { checkInputs, observedInputs, parseInputs, userProps, wireSafe } from "../../dynamic";
import { providerVersion } from "../../version";
import { diffXlConfigs, parseXlConfig, renderXlConfig } from "../../xl/config";
import { renderVtpmManagerConfig } from "../../xl/domains";
import { observeStubdomConfig } from "../../xl/observe";
import { configPathOf, imagePathOf } from "../stubdom";
import { MANAGER_READY, managerMemoryMiB, vtpmManagerSchema, type VtpmManagerInputs } from "./args";
import { diffVtpmManager } from "./diff";

const KIND = "VtpmManager";
const parse = (props: Record<string, unknown>) => parseInputs(vtpmManagerSchema, KIND, props);

export interface VtpmManagerOutputs extends VtpmManagerInputs {
  readonly domid: number | null;
  readonly imagePresent: boolean;
  readonly providerVersion: string;
}

function renderConfig(v: VtpmManagerInputs): string {
  const config = renderVtpmManagerConfig({
    name: v.name,
    kernel: v.kernel,
    memoryMiB: managerMemoryMiB(v),
    image: imagePathOf(v),
    iomem: v.iomem,
    tpmLocality: v.tpmLocality,
    tpm2: v.tpm2,
    ownerAuth: v.ownerAuth,
    srkAuth: v.srkAuth,
  });
  return renderXlConfig(
    config,
    `vTPM manager ${v.name}, written by pulumi-tvd ${providerVersion}; edits show as drift`,
  );
}

async function start(dom0: Dom0, v: VtpmManagerInputs): Promise<void> {
  await dom0.xlCreate(configPathOf(v));
  await dom0.waitForConsole(v.name, MANAGER_READY, v.readyTimeoutSec);
}

/**
 * The manager as it is on the host: the user's inputs, with what the host says overriding them.
 * `userSet` is the inputs bag as the user wrote it (state inputs), to report only what they set.
 */
async function observe(dom0: Dom0, v: VtpmManagerInputs, userSet: Record<string, unknown>) {
  const configPath = configPathOf(v);
  const imagePath = imagePathOf(v);
  const report = await dom0.inspect(v.name, [
    { role: "config", path: configPath },
    { role: "image", path: imagePath },
  ]);
  const config = report.files[configPath];
  const image = report.files[imagePath];
  let inputs: VtpmManagerInputs = { ...v, running: report.domain.running };
  let configDrift: string[] = [];
  if (config?.exists && config.content !== undefined) {
    const seen = observeStubdomConfig(config.content);
    configDrift = seen.ok
      ? diffXlConfigs(parseXlConfig(config.content), parseXlConfig(renderConfig(v)))
      : ["(unreadable)"];
    if (seen.ok) {
      const o = seen.value;
      inputs = {
        ...inputs,
        kernel: o.kernel ?? inputs.kernel,
        memoryMiB: o.memoryMiB ?? inputs.memoryMiB,
        iomem: o.iomem ? [...o.iomem] : inputs.iomem,
        tpm2: o.options.tpm2 === "1",
        tpmLocality: o.options.tpmlocality !== undefined ? Number(o.options.tpmlocality) : undefined,
        ownerAuth: o.options.owner_auth,
        srkAuth: o.options.srk_auth,
      };
      // Only what the user set is reported: an unset memoryMiB stays unset when it has its default.
      if (
        v.memoryMiB === undefined &&
        inputs.memoryMiB === managerMemoryMiB({ ...v, memoryMiB: undefined })
      ) {
        inputs = { ...inputs, memoryMiB: undefined };
      }
    }
  } else {
    configDrift = ["(missing)"];
  }
  return {
    inputs: wireSafe(observedInputs(userSet, v, inputs)),
    gone: !config?.exists && !image?.exists && !report.domain.running,
    outputs: wireSafe({
      ...inputs,
      domid: report.domain.domid ?? null,
      imagePresent: image?.exists === true,
      configDrift,
      // Which inputs the user set, so that a later read reports only those (read gets outputs only).
      inputKeys: Object.keys(userSet).sort(),
      providerVersion,
    }),
  };
}

export const vtpmManagerLifecycle = {
  async check(
    _olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult> {
    return checkInputs(vtpmManagerSchema, news);
  },

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    const d = diffVtpmManager(parse(olds), parse(news), olds.imagePresent !== false);
    if (d.refused) throw new Error(d.refused);
    const configDrift = Array.isArray(olds.configDrift) && olds.configDrift.length > 0;
    return {
      changes: d.changed.length > 0 || configDrift,
      replaces: d.replaces,
      // One name, one domain: the old manager must be gone before the new one starts.
      deleteBeforeReplace: d.replaces.length > 0,
    };
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    if (v.adopt) return { id: v.name, outs: await adopt(dom0, v, userProps(props)) };
    try {
      await dom0.createRawImage(imagePathOf(v), v.imageSizeMiB, v.name);
    } catch (e) {
      if (e instanceof ArtifactExistsError) {
        throw new Error(
          `vTPM manager image ${imagePathOf(v)} already exists on ${dom0.endpoint}; pulumi-tvd never overwrites it. ` +
            "Set adopt: true to take the existing manager over, or choose another imagePath",
        );
      }
      throw e;
    }
    try {
      await dom0.writeFileAtomic(configPathOf(v), renderConfig(v), "0600", v.name);
      if (v.running) await start(dom0, v);
    } catch (e) {
      // The image is new and empty: nothing of value is lost by removing what this create made.
      await dom0.xlDestroy(v.name).catch(() => undefined);
      await dom0.removeFiles([configPathOf(v), imagePathOf(v)]).catch(() => undefined);
      throw e;
    }
    return { id: v.name, outs: (await observe(dom0, v, userProps(props))).outputs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const keys = Array.isArray(props.inputKeys)
      ? (props.inputKeys as string[])
      : Object.keys(userProps(props));
    const userSet = Object.fromEntries(keys.filter((k) => k in props).map((k) => [k, props[k]]));
    const v = parse(userSet);
    const seen = await observe(await Dom0.connect(v.connection), v, userSet);
    if (seen.gone) return {};
    return { id, props: seen.outputs, inputs: seen.inputs };
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
    const config = renderConfig(v);
    const needsRestart =
      diffVtpmManager(before, v).restart || (now.outputs.configDrift as string[]).length > 0;
    if (now.inputs.running && needsRestart) {
      const users = await dom0.domainsUsing(v.name);
      if (users.length) {
        throw new Error(
          `cannot restart vTPM manager ${v.name} on ${dom0.endpoint} while vTPM domains use it: ${users.join(", ")}; ` +
            "stop them first (their keys are safe in their images)",
        );
      }
      await dom0.waitForConsole(v.name, MANAGER_READY, v.readyTimeoutSec);
      await dom0.xlDestroy(v.name);
    }
    await dom0.writeFileAtomic(configPathOf(v), config, "0600", v.name);
    const running = now.inputs.running && !needsRestart;
    if (v.running && !running) await start(dom0, v);
    if (!v.running && running) {
      await dom0.waitForConsole(v.name, MANAGER_READY, v.readyTimeoutSec);
      await dom0.xlDestroy(v.name);
    }
    return { outs: (await observe(dom0, v, userProps(news))).outputs };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    const users = await dom0.domainsUsing(v.name);
    if (users.length) {
      throw new Error(
        `refusing to destroy vTPM manager ${v.name} on ${dom0.endpoint}: vTPM domains use it: ${users.join(", ")}. ` +
          "Destroy them first; a manager destroyed under its vTPMs may corrupt their keys",
      );
    }
    const { inputs } = await observe(dom0, v, {});
    if (inputs.running ?? true) {
      // Only while idle: the docs' rule for a consistent manager disk.
      await dom0.waitForConsole(v.name, MANAGER_READY, v.readyTimeoutSec);
      await dom0.xlDestroy(v.name);
    }
    await dom0.removeFiles([configPathOf(v)]);
    // The image holds the keys of every vTPM the manager served: archived, never deleted.
    await dom0.archive(imagePathOf(v));
  },
};

/** Takes over an existing manager after checking it is the one declared. */
async function adopt(
  dom0: Dom0,
  v: VtpmManagerInputs,
  userSet: Record<string, unknown>,
): Promise<VtpmManagerOutputs & { configDrift: string[] }> {
  const seen = await observe(dom0, v, userSet);
  const problems: string[] = [];
  if (!seen.outputs.imagePresent) problems.push(`image ${imagePathOf(v)} does not exist`);
  for (const field of seen.outputs.configDrift)
    problems.push(`config ${configPathOf(v)} differs in ${field}`);
  if (problems.length) {
    throw new Error(`cannot adopt vTPM manager ${v.name} on ${dom0.endpoint}: ${problems.join("; ")}`);
  }
  if (v.running && !seen.inputs.running) await start(dom0, v);
  return (await observe(dom0, v, userSet)).outputs as VtpmManagerOutputs & { configDrift: string[] };
}
