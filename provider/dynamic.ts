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

/** The provider's methods, each with its parameter list as Pulumi's dynamic provider calls it. */
const PROVIDER_METHODS = [
  ["check", "olds, news"],
  ["diff", "id, olds, news"],
  ["create", "inputs"],
  ["read", "id, props"],
  ["update", "id, olds, news"],
  ["delete", "id, props"],
] as const;

/**
 * The provider module of a kind: the text every resource of the kind carries as `__provider`, which
 * Pulumi's dynamic provider process loads (`require-from-string`) and calls `handler()` on. It
 * captures nothing but `kind` and loads the lifecycle from the installed package at call time, so
 * upgrading pulumi-tvd upgrades the behaviour of existing stacks, and no SSH client, socket or
 * pool is ever captured.
 *
 * Written out rather than made by `pulumi.dynamic.Resource`, which serializes a provider object
 * with Pulumi's closure serializer: that parses the functions with TypeScript and cost each program
 * run 0.4-0.6 s of CPU. test/unit/dynamicProvider.test.ts proves this text is, byte for byte, what
 * the serializer makes of the object below, which is what earlier releases stored, so their stacks
 * see no change:
 *
 *   { check: (olds, news) => require("pulumi-tvd/runtime").lifecycle(kind).check(olds, news), ... }
 */
export function providerModule(kind: ResourceKind): string {
  const fn = (name: string, params: string, captured: string, body: string) =>
    `function ${name}(${params}) {\n` +
    `  return (function() {\n` +
    `    with(${captured}) {\n\n` +
    `return ${body};\n\n` +
    `    }\n` +
    `  }).apply(undefined, undefined).apply(this, arguments);\n` +
    `}\n`;
  const methods = PROVIDER_METHODS.map(([method, args], i) => {
    // The serializer names a function's parameters by position: __0, __1, ...
    const positional = args
      .split(", ")
      .map((_, n) => `__${n}`)
      .join(", ");
    return fn(
      `__f${i + 1}`,
      positional,
      `{ kind: ${JSON.stringify(kind)}, this: undefined, arguments: undefined }`,
      `(${args}) => require("pulumi-tvd/runtime").lifecycle(kind).${method}(${args})`,
    );
  });
  return (
    `exports.handler = __f0;\n\n` +
    `var __provider = {${PROVIDER_METHODS.map(([method], i) => `${method}: __f${i + 1}`).join(", ")}};\n\n` +
    methods.map((m) => `${m}\n`).join("") +
    fn("__f0", "", "{ provider: __provider, this: undefined, arguments: undefined }", "() => provider")
  );
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
