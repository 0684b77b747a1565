/**
 * @pulumi/pulumi with its resources on paper, for tests that build constructs thousands of times
 * (issue 12.4): a component resource registers nothing, and a pulumi-tvd resource only records the
 * property bag its class hands the engine, so a construct's own validation and wiring run as
 * they are, without an engine (Pulumi's own mocks cost milliseconds per resource). Every input
 * of a resource reads back as its output, as an engine echoing its inputs would; the outputs a
 * resource computes (a CA, a host key) are filled in by `paperOutputs`.
 *
 * Install it in a test file with
 *   jest.mock("@pulumi/pulumi", () => jest.requireActual("../support/paperPulumi").paperPulumi());
 */
import type * as pulumi from "@pulumi/pulumi";

/** One resource a construct declared: its kind ("Guest", ...), name and property bag. */
export interface PaperResource {
  readonly kind: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
}

const recorded: PaperResource[] = [];
let outputsOf: (kind: string, key: string, props: Record<string, unknown>) => unknown = () => undefined;

/** What a resource computes, by kind and output name, in place of an engine. */
export function paperOutputs(
  fn: (kind: string, key: string, props: Record<string, unknown>) => unknown,
): void {
  outputsOf = fn;
}

/** The resources declared since the last call, and forgets them. */
export function takePaperResources(): PaperResource[] {
  return recorded.splice(0, recorded.length);
}

/** A value with every Output in it resolved, as the engine hands inputs to a provider's check. */
export async function resolved<T>(value: T): Promise<T> {
  actualPulumi ??= jest.requireActual("@pulumi/pulumi") as typeof pulumi;
  if (actualPulumi.Output.isInstance(value)) {
    // An Output's own promise (internal to Pulumi, but cheaper than an apply), else an apply.
    const own = (value as unknown as { promise?: () => Promise<T> }).promise;
    return resolved(
      typeof own === "function"
        ? await own.call(value)
        : await new Promise<T>((resolve) => value.apply((v) => resolve(v as T))),
    );
  }
  if (value instanceof Promise) return resolved(await value);
  if (Array.isArray(value)) return (await Promise.all(value.map((v) => resolved(v)))) as T;
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolved(v)]));
    return Object.fromEntries(entries) as T;
  }
  return value;
}

let loading = false;
let actualPulumi: typeof pulumi | undefined;

export function paperPulumi(): typeof pulumi {
  // Pulumi's own modules require its index while it loads: they get the real one.
  if (loading) return jest.requireActual("@pulumi/pulumi");
  loading = true;
  const actual = jest.requireActual("@pulumi/pulumi") as typeof pulumi;
  loading = false;
  // Project and stack names for the owner strings resource classes compute; nothing registers.
  void actual.runtime.setMocks(
    {
      newResource: () => {
        throw new Error("paperPulumi: nothing registers with an engine");
      },
      call: () => {
        throw new Error("paperPulumi: nothing calls an engine");
      },
    },
    "hostile",
    "paper",
  );
  class ComponentResource {
    registerOutputs(): void {}
  }
  // pulumi-tvd's resources are custom resources of Pulumi's dynamic provider (provider/dynamic.ts).
  class CustomResource {
    constructor(type: string, name: string, bag: Record<string, unknown>) {
      const kind = type.replace(/^pulumi-nodejs:dynamic\/pulumi-tvd:/, "");
      // The provider module is the same text for every resource of a kind: not the construct's to set.
      const { __provider: _module, ...props } = bag;
      recorded.push({ kind, name, props });
      // Made when a construct reads them: most outputs of most resources never are.
      for (const [key, value] of Object.entries(props)) {
        let out: unknown;
        Object.defineProperty(this, key, {
          get: () => (out ??= actual.output(value === undefined ? outputsOf(kind, key, props) : value)),
          enumerable: true,
        });
      }
    }
  }
  return {
    ...actual,
    ComponentResource: ComponentResource as unknown as typeof pulumi.ComponentResource,
    CustomResource: CustomResource as unknown as typeof pulumi.CustomResource,
  };
}
