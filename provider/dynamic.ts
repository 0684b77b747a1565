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

/** The type token of a kind's resources: what `pulumi.dynamic.Resource` names them, so that stacks stay as they are. */
export function dynamicResourceType(kind: ResourceKind): string {
  return `pulumi-nodejs:dynamic/pulumi-tvd:${kind}`;
}

/**
 * The provider module of a kind: the text every resource of the kind carries as `__provider`, which
 * Pulumi's dynamic provider process loads (`require-from-string`) and calls `handler()` on. It
 * captures nothing but the kind's name and loads the lifecycle from the installed package when the
 * provider process first needs it, so upgrading pulumi-tvd upgrades the behaviour of existing
 * stacks, and no SSH client, socket or pool is ever captured.
 *
 * One line, because the engine writes it into every resource's inputs and outputs and rewrites
 * the whole state file after every step (serialized, checksummed and backed up: 70 % of the
 * engine's CPU in an `up` of 201 resources). Earlier releases stored the 2.1 KB text Pulumi's
 * closure serializer made of a provider object (test/unit/dynamicProvider.test.ts makes it). Their
 * stacks keep working and see no diff: that text routes to the same lifecycle, and a change of
 * `__provider` alone is none. Their next `up` stores this text in the inputs; the outputs keep
 * the earlier one until the resource next changes.
 */
export function providerModule(kind: ResourceKind): string {
  return `exports.handler = () => require("pulumi-tvd/runtime").lifecycle(${JSON.stringify(kind)});\n`;
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
