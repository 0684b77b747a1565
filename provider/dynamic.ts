import type * as pulumi from "@pulumi/pulumi";

/** Resource kinds the runtime module serves; each has one lifecycle in provider/resources/<kind>/. */
export type ResourceKind =
  | "HostFacts"
  | "VtpmManager"
  | "Vtpm"
  | "Guest"
  | "TvdAuthority"
  | "MemberIdentity"
  | "SeedImage"
  | "TvdNetwork"
  | "VtpmIdentity"
  | "MemberAttestation"
  | "MemberPort"
  | "TvdRevocationList";

/**
 * The provider object Pulumi serializes into state with every resource. It must stay tiny and
 * stable: it captures nothing but `kind` and loads the lifecycle from the installed package at call
 * time, so upgrading pulumi-tvd upgrades the behaviour of existing stacks and no SSH client, socket
 * or pool is ever captured.
 */
export function serializableProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  // One object per kind: @pulumi/pulumi caches a provider's serialized closure by the object's
  // identity, and serializing it (v8 inspection of every captured function) cost each resource
  // ~20 ms of the program's time when each got an object of its own.
  let provider = providers.get(kind);
  if (!provider) providers.set(kind, (provider = providerOf(kind)));
  return provider;
}

const providers = new Map<ResourceKind, pulumi.dynamic.ResourceProvider>();

function providerOf(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  /* eslint-disable @typescript-eslint/no-require-imports -- resolved at call time on purpose, see above */
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

/**
 * The owner string of a resource of this program (see core/ownership.ts): computed where the
 * program runs, passed as the `owner` input, recorded on the dom0 with every artifact it makes.
 */
export function resourceOwner(kind: ResourceKind, resourceName: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily: only programs need the runtime
  const p = require("@pulumi/pulumi") as typeof pulumi;
  return `${p.getProject()}/${p.getStack()} ${kind} ${resourceName}`.replace(/[\p{Cc}]/gu, " ");
}
