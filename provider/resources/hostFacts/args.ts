import { z } from "zod";
import { connectionSchema } from "../../transport/connection";
import { absolutePath } from "../../validation";
import type { HostFactsReport } from "../../dom0/facts";

export const hostFactsSchema = z.strictObject({
  connection: connectionSchema,
  xenDataDir: absolutePath.default("/var/lib/xen"),
});

export type HostFactsInputs = z.output<typeof hostFactsSchema>;

/** What the resource stores: its inputs, the facts, and the provider version that read them. */
export type HostFactsOutputs = HostFactsInputs & HostFactsReport & { readonly providerVersion: string };
