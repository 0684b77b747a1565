/**
 * The property bag every resource class hands the engine, written once: the owner string, the
 * inputs, secret inputs wrapped as secrets (the connection always: it holds the private key),
 * every output the class declares present (Pulumi wires only the keys in the bag), and the
 * outputs to keep secret.
 */
import * as pulumi from "@pulumi/pulumi";
import { resourceOwner, serializableProvider, type ResourceKind } from "../dynamic";

export interface BagSpec {
  /** Inputs held as secrets, in state and outputs alike; `connection` is always one. */
  readonly secretInputs?: readonly string[];
  /** Outputs the class declares (inputs among them are passed through). */
  readonly outputs: readonly string[];
  /** Outputs computed by the provider that hold secrets (private keys). */
  readonly secretOutputs?: readonly string[];
}

export abstract class TvdResource extends pulumi.dynamic.Resource {
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
    super(
      serializableProvider(kind),
      name,
      bag,
      {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          ...secret,
          ...(spec.secretOutputs ?? []),
        ],
      },
      "pulumi-tvd",
      kind,
    );
  }
}
