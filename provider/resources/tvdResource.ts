/**
 * The property bag every resource class hands the engine, written once: the owner string, the
 * inputs, secret inputs wrapped as secrets (the connection always: it holds the private key),
 * every output the class declares present (Pulumi wires only the keys in the bag), and the
 * outputs to keep secret.
 */
import * as pulumi from "@pulumi/pulumi";
import { dynamicResourceType, providerModule, resourceOwner, type ResourceKind } from "../dynamic";

export interface BagSpec {
  /** Inputs held as secrets, in state and outputs alike; `connection` is always one. */
  readonly secretInputs?: readonly string[];
  /** Outputs the class declares (inputs among them are passed through). */
  readonly outputs: readonly string[];
  /** Outputs computed by the provider that hold secrets (private keys). */
  readonly secretOutputs?: readonly string[];
}

export abstract class TvdResource extends pulumi.CustomResource {
  /** The pulumi-tvd release that last applied this resource. */
  declare public readonly providerVersion: pulumi.Output<string>;

  protected constructor(
    kind: ResourceKind,
    name: string,
    inputs: object,
    spec: BagSpec,
    opts?: pulumi.CustomResourceOptions,
  ) {
    const bag: Record<string, unknown> = { ...inputs };
    const secret = ["connection", ...(spec.secretInputs ?? [])].filter((k) => bag[k] !== undefined);
    for (const k of secret) bag[k] = pulumi.secret(bag[k]);
    for (const k of [...spec.outputs, ...(spec.secretOutputs ?? []), "providerVersion"])
      if (!(k in bag)) bag[k] = undefined;
    bag.owner = resourceOwner(kind, name);
    // What pulumi.dynamic.Resource registers, with the provider module written out (dynamic.ts).
    bag.__provider = providerModule(kind);
    // While it registers a resource, @pulumi/pulumi captures a stack trace for every promise behind
    // every property (4 per property, kept for its promise-leak report) and formats each through
    // source-map-support: 5 ms of the program's CPU per resource, a second at 201 resources. None
    // is captured here; the leak report still names the resource and property, Pulumi records the
    // resource's source position with a limit of its own, and an error thrown from within gets
    // this constructor's stack instead.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(dynamicResourceType(kind), name, bag, {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          ...secret,
          ...(spec.secretOutputs ?? []),
        ],
      });
    } catch (e) {
      Error.stackTraceLimit = stackTraceLimit;
      if (e instanceof Error && !/\n\s+at /.test(e.stack ?? "")) Error.captureStackTrace(e, TvdResource);
      throw e;
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }
}
