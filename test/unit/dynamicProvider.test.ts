/**
 * The provider module every pulumi-tvd resource carries as `__provider` (provider/dynamic.ts): written
 * out instead of made by Pulumi's closure serializer, it must be what the serializer made of the
 * provider object earlier releases passed to `pulumi.dynamic.Resource`, byte for byte, so that a
 * stack those releases wrote sees no change; and it must route each call to the kind's lifecycle.
 */
import * as pulumi from "@pulumi/pulumi";
import { dynamicResourceType, providerModule, type ResourceKind } from "../../provider/dynamic";

// Every kind: the compiler refuses this object if one is missing.
const KINDS = Object.keys({
  HostFacts: 0,
  VtpmManager: 0,
  Vtpm: 0,
  Guest: 0,
  TvdAuthority: 0,
  MemberIdentity: 0,
  SeedImage: 0,
  TvdNetwork: 0,
  VtpmIdentity: 0,
  MemberAttestation: 0,
  MemberPort: 0,
  TvdRevocationList: 0,
} satisfies Record<ResourceKind, 0>) as ResourceKind[];

/** The provider object earlier releases handed `pulumi.dynamic.Resource` (0.x, provider/dynamic.ts). */
function earlierProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  /* eslint-disable @typescript-eslint/no-require-imports -- the object as it was */
  return {
    check: (olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).check(olds, news),
    diff: (id, olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).diff(id, olds, news),
    create: (inputs) => require("pulumi-tvd/runtime").lifecycle(kind).create(inputs),
    read: (id, props) => require("pulumi-tvd/runtime").lifecycle(kind).read(id, props),
    update: (id, olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).update(id, olds, news),
    delete: (id, props) => require("pulumi-tvd/runtime").lifecycle(kind).delete(id, props),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

describe("the provider module", () => {
  it.each(KINDS)("is what Pulumi's closure serializer makes of the %s provider object", async (kind) => {
    // What pulumi.dynamic.Resource does with a provider (@pulumi/pulumi dynamic/index.js).
    const provider = earlierProvider(kind);
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    expect(providerModule(kind)).toBe(serialized.text);
  });

  it("routes every method to the kind's lifecycle in the installed package, loaded at call time", async () => {
    for (const kind of KINDS) {
      const loaded: string[] = [];
      const runtime = {
        lifecycle: (k: string) =>
          new Proxy(
            {},
            {
              get:
                (_, method) =>
                (...args: unknown[]) =>
                  Promise.resolve({ k, method, args }),
            },
          ),
      };
      // How Pulumi's dynamic provider loads it: a CommonJS module whose handler() returns the provider.
      const module = { exports: {} as { handler?: () => Record<string, (...a: unknown[]) => unknown> } };
      new Function("exports", "require", "module", providerModule(kind))(
        module.exports,
        (id: string) => {
          loaded.push(id);
          return runtime;
        },
        module,
      );
      const provider = module.exports.handler!();
      expect(loaded).toEqual([]);
      expect(Object.keys(provider)).toEqual(["check", "diff", "create", "read", "update", "delete"]);
      await expect(provider.diff("id-1", { a: 1 }, { a: 2 })).resolves.toEqual({
        k: kind,
        method: "diff",
        args: ["id-1", { a: 1 }, { a: 2 }],
      });
      await expect(provider.create({ b: 1 })).resolves.toEqual({
        k: kind,
        method: "create",
        args: [{ b: 1 }],
      });
      expect(loaded).toEqual(["pulumi-tvd/runtime", "pulumi-tvd/runtime"]);
    }
  });

  it("is registered under the type pulumi.dynamic.Resource gives it", () => {
    expect(dynamicResourceType("Vtpm")).toBe("pulumi-nodejs:dynamic/pulumi-tvd:Vtpm");
  });
});
