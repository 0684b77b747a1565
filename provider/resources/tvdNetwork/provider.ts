/**
 * TvdNetwork lifecycle: one TVD's bridge and VXLAN on one dom0. check and diff never touch a
 * host; create, read, update and delete are one round trip each (plus read-back).
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
import { tvdNetworkSchema, vxlanOf, type TvdNetworkInputs } from "./args";
import { diffTvdNetwork, inputsSeen, observeNetwork } from "./diff";

const KIND = "TvdNetwork";
const parse = (props: Record<string, unknown>) => parseInputs(tvdNetworkSchema, KIND, props);

export interface TvdNetworkOutputs extends TvdNetworkInputs {
  readonly bridgePresent: boolean;
  readonly vxlanPresent: boolean;
  readonly vxlanOnBridge: boolean;
  /** The VNI the VXLAN device really carries, null when it is missing. */
  readonly vxlanId: number | null;
  /** Interfaces on the bridge besides the VXLAN: the guests' vifs. */
  readonly ports: string[];
  readonly providerVersion: string;
}

/**
 * The network as it is on the host. Outputs keep the bridge and VNI the network is found by, and
 * carry the observed peers, local address, port and MTU, so that the next diff sees drift there
 * and update repairs it.
 */
async function observe(dom0: Dom0, v: TvdNetworkInputs, userSet: Record<string, unknown>) {
  const { links, fdb } = await dom0.readVxlanBridge(v.bridge, vxlanOf(v));
  const seen = observeNetwork(links, fdb, v.bridge, vxlanOf(v));
  const inputs = inputsSeen(v, seen);
  const outputs: TvdNetworkOutputs & { inputKeys: string[] } = {
    ...inputs,
    bridge: v.bridge,
    vni: v.vni,
    bridgePresent: seen.bridgePresent,
    vxlanPresent: seen.vxlanPresent,
    vxlanOnBridge: seen.vxlanOnBridge,
    vxlanId: seen.vxlanId ?? null,
    ports: seen.ports,
    inputKeys: Object.keys(userSet).sort(),
    providerVersion,
  };
  return {
    gone: !seen.bridgePresent && !seen.vxlanPresent,
    inputs: wireSafe(observedInputs(userSet, v, inputs)),
    outputs: wireSafe(outputs),
  };
}

export const tvdNetworkLifecycle = {
  check: checkWith(tvdNetworkSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    const d = diffTvdNetwork(olds, news);
    // A bridge or VXLAN missing on the host is remade in place, though no input changed.
    const result = diffResult(d, olds);
    return { ...result, changes: result.changes || d.repair };
  },

  async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const v = parse(props);
    const dom0 = await Dom0.connect(v.connection);
    await dom0.ensureVxlanBridge(v);
    return { id: v.bridge, outs: (await observe(dom0, v, userProps(props))).outputs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const userSet = userSetOf(props);
    const v = parse(userSet);
    return readResult(id, await observe(await Dom0.connect(v.connection), v, userSet));
  },

  /** Only peers, MTU or the connection reach here (the rest replaces); what is missing is remade. */
  async update(
    _id: string,
    _olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    const v = parse(news);
    const dom0 = await Dom0.connect(v.connection);
    await dom0.ensureVxlanBridge(v);
    return { outs: (await observe(dom0, v, userProps(news))).outputs };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    const v = parse(props);
    await (await Dom0.connect(v.connection)).deleteVxlanBridge(v.bridge, vxlanOf(v));
  },
};
