/**
 * The provider module every pulumi-tvd resource carries as `__provider` (provider/dynamic.ts): one
 * line that routes each call to the kind's lifecycle. Stacks written by earlier releases carry the
 * text Pulumi's closure serializer made of a provider object instead: it must keep routing to the
 * same lifecycle, and a stack whose only difference is that text must see no change.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Lifecycle } from "../../provider/core/define";
import { resetProgramDeclarations } from "../../provider/core/ownership";
import { dynamicResourceType, providerModule, type ResourceKind } from "../../provider/dynamic";
import { lifecycle } from "../../provider/runtime";

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

/** What the serializer makes of the earlier provider object: the `__provider` those releases stored. */
async function earlierProviderModule(kind: ResourceKind): Promise<string> {
  // What pulumi.dynamic.Resource does with a provider (@pulumi/pulumi dynamic/index.js).
  const provider = earlierProvider(kind);
  return (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true })).text;
}

/**
 * Loads a provider module as Pulumi's dynamic provider does (a CommonJS module whose handler()
 * returns the provider), with `require` answering pulumi-tvd/runtime by a stand-in whose every
 * method echoes the kind, the method and the arguments.
 */
function load(text: string): {
  provider: () => Record<string, (...a: unknown[]) => unknown>;
  loaded: string[];
} {
  const loaded: string[] = [];
  const runtime = {
    lifecycle: (k: string) =>
      new Proxy(
        { check: 0, diff: 0, create: 0, read: 0, update: 0, delete: 0 },
        {
          get:
            (_, method) =>
            (...args: unknown[]) =>
              Promise.resolve({ k, method, args }),
        },
      ),
  };
  const module = { exports: {} as { handler?: () => Record<string, (...a: unknown[]) => unknown> } };
  new Function("exports", "require", "module", text)(
    module.exports,
    (id: string) => {
      loaded.push(id);
      return runtime;
    },
    module,
  );
  return { provider: () => module.exports.handler!(), loaded };
}

describe("the provider module", () => {
  it.each(KINDS)("is one short line naming the %s lifecycle", (kind) => {
    const text = providerModule(kind);
    // The engine stores it twice per resource and rewrites the state after every step.
    expect(text.trim().split("\n")).toHaveLength(1);
    expect(text.length).toBeLessThan(100);
    expect(text).toContain(`lifecycle(${JSON.stringify(kind)})`);
  });

  it.each(KINDS)(
    "routes every method of %s to the kind's lifecycle in the installed package, loaded only once the provider is asked for",
    async (kind) => {
      for (const text of [providerModule(kind), await earlierProviderModule(kind)]) {
        const { provider: handler, loaded } = load(text);
        expect(loaded).toEqual([]);
        const provider = handler();
        for (const method of ["check", "diff", "create", "read", "update", "delete"])
          expect(typeof provider[method]).toBe("function");
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
        expect(new Set(loaded)).toEqual(new Set(["pulumi-tvd/runtime"]));
      }
    },
  );

  it("gives a stack an earlier release wrote no change when only its provider text differs", async () => {
    resetProgramDeclarations();
    const vtpm: Lifecycle = lifecycle("Vtpm") as Lifecycle;
    const connection = {
      host: "10.0.0.5",
      port: 22,
      privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
      hostKeyFingerprint: "SHA256:" + "a".repeat(43),
    };
    const declared = { connection, name: "web-vtpm", manager: "vtpmmgr", owner: "p/s Vtpm web-vtpm" };
    const earlier = await earlierProviderModule("Vtpm");
    // What Pulumi's dynamic provider does with check's answer: the provider text goes on as sent.
    const checked = async (olds: Record<string, unknown>, news: Record<string, unknown>) => ({
      ...(await vtpm.check(olds, news)).inputs,
      __provider: news.__provider,
    });
    const stored = await checked({}, { ...declared, __provider: earlier });
    const next = await checked(stored, { ...declared, __provider: providerModule("Vtpm") });
    expect(next.__provider).not.toBe(stored.__provider);
    expect(await vtpm.diff("web-vtpm", stored, next)).toEqual({ changes: false });
    // A real change beside it is still one.
    const bigger = await checked(stored, { ...declared, memoryMiB: 32, __provider: providerModule("Vtpm") });
    expect(await vtpm.diff("web-vtpm", stored, bigger)).toMatchObject({ changes: true });
  });

  it("is registered under the type pulumi.dynamic.Resource gives it", () => {
    expect(dynamicResourceType("Vtpm")).toBe("pulumi-nodejs:dynamic/pulumi-tvd:Vtpm");
  });
});
