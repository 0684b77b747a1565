import { z } from "zod";
import { connectionSchema } from "../../transport/connection";
import { absolutePath } from "../../validation";
import type { HostFactsReport } from "../../dom0/facts";

export const hostFactsSchema = z.strictObject({
  connection: connectionSchema,
  xenDataDir: absolutePath.default("/var/lib/xen"),
});

export type HostFactsInputs = z.output<typeof hostFactsSchema>;

/** The outputs beyond the inputs: the facts, as last probed. */
export type HostFactsExtra = HostFactsReport;
