/**
 * Pulumi's own mocks (`pulumi.runtime.setMocks`) playing the engine for tests of resources and
 * constructs: every registration is recorded, inputs come back as outputs, and what a provider
 * computes (a CA, a UUID, a fingerprint) is filled in by the test's `computed`, by kind.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

/** Sets the mocks; each registration is appended to `registered` (empty it between tests). */
export function mockEngine(
  registered: Registered[],
  computed: (kind: string, name: string) => Record<string, unknown>,
): Promise<void> {
  return pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs });
        const kind = args.type.split(":").pop()!;
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computed(kind, args.name) } };
      },
      call: () => {
        throw new Error("no resource of pulumi-tvd calls a provider function");
      },
    },
    "mocked",
    "unit",
  );
}
