import type * as pulumi from "@pulumi/pulumi";
import { Dom0 } from "../../dom0/dom0";
import { checkWith, parseInputs } from "../../dynamic";
import { providerVersion } from "../../version";
import { hostFactsSchema, type HostFactsInputs, type HostFactsOutputs } from "./args";
import { diffHostFacts } from "./diff";

const parse = (props: Record<string, unknown>) => parseInputs(hostFactsSchema, "HostFacts", props);

async function probe(inputs: HostFactsInputs): Promise<HostFactsOutputs> {
  const dom0 = await Dom0.connect(inputs.connection);
  return { ...inputs, ...(await dom0.probeFacts(inputs.xenDataDir)), providerVersion };
}

function inputsOf(outs: HostFactsOutputs): HostFactsInputs {
  return { connection: outs.connection, xenDataDir: outs.xenDataDir };
}

/** HostFacts lifecycle: check and diff never touch the host; create, read and update probe it once. */
export const hostFactsLifecycle = {
  check: checkWith(hostFactsSchema),

  async diff(
    _id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    return diffHostFacts(parse(olds), parse(news));
  },

  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const parsed = parse(inputs);
    const outs = await probe(parsed);
    return { id: `${parsed.connection.host}:${parsed.connection.port}`, outs };
  },

  async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const outs = await probe(parse(props));
    return { id, props: outs, inputs: inputsOf(outs) };
  },

  async update(
    _id: string,
    _olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await probe(parse(news)) };
  },

  /** Facts live only in the stack's state; nothing on the host to remove. */
  async delete(): Promise<void> {},
};
