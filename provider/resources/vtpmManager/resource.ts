import * as pulumi from "@pulumi/pulumi";
import { serializableProvider } from "../../dynamic";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";

export interface VtpmManagerArgs {
  /** How to reach the dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /** The manager's domain name; vTPMs name it as their backend. */
  readonly name: pulumi.Input<string>;
  /**
   * Directories pulumi-tvd may write in on this dom0.
   * @default ["/var/lib/xen", "/etc/xen"]
   */
  readonly allowedRoots?: pulumi.Input<pulumi.Input<string>[]>;
  /** @default "/var/lib/xen/vtpm/<name>.img" */
  readonly imagePath?: pulumi.Input<string>;
  /** @default 16 (the manager uses the first 2 MiB) */
  readonly imageSizeMiB?: pulumi.Input<number>;
  /** @default 16, or 128 for a TPM 2.0 manager */
  readonly memoryMiB?: pulumi.Input<number>;
  /** @default "/usr/lib/xen/boot/vtpmmgr-stubdom.gz" */
  readonly kernel?: pulumi.Input<string>;
  /** @default "/etc/xen" */
  readonly configDir?: pulumi.Input<string>;
  /** Talk TPM 2.0 to the hardware TPM. @default false */
  readonly tpm2?: pulumi.Input<boolean>;
  /** @default - the manager's own default (0) */
  readonly tpmLocality?: pulumi.Input<number>;
  /** @default ["fed40,5"] (all five TPM localities) */
  readonly iomem?: pulumi.Input<pulumi.Input<string>[]>;
  /** Hardware TPM owner authorization; kept as a secret. @default - the manager's default */
  readonly ownerAuth?: pulumi.Input<string>;
  /** SRK authorization; kept as a secret. @default - the manager's default */
  readonly srkAuth?: pulumi.Input<string>;
  /** How long to wait for "Waiting for commands". @default 120 */
  readonly readyTimeoutSec?: pulumi.Input<number>;
  /** @default true */
  readonly running?: pulumi.Input<boolean>;
  /** Allow a new manager image (every served vTPM's keys are lost). @default false */
  readonly allowStateReset?: pulumi.Input<boolean>;
  /** Take over an existing manager instead of creating one. @default false */
  readonly adopt?: pulumi.Input<boolean>;
}

/**
 * The vTPM manager domain of one dom0 (vtpmmgr-stubdom): its raw image, its xl config and the
 * running domain. Deleting it refuses while vTPM domains use it, destroys it only when idle,
 * and archives its image.
 */
export class VtpmManager extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly domid: pulumi.Output<number | null>;
  declare public readonly running: pulumi.Output<boolean>;
  declare public readonly imagePresent: pulumi.Output<boolean>;
  declare public readonly configDrift: pulumi.Output<string[]>;
  declare public readonly providerVersion: pulumi.Output<string>;

  constructor(name: string, args: VtpmManagerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      serializableProvider("VtpmManager"),
      name,
      {
        ...args,
        // Every output the class declares must be in the bag, set or not.
        name: args.name,
        running: args.running,
        connection: pulumi.secret(args.connection),
        ownerAuth: args.ownerAuth === undefined ? undefined : pulumi.secret(args.ownerAuth),
        srkAuth: args.srkAuth === undefined ? undefined : pulumi.secret(args.srkAuth),
        domid: undefined,
        imagePresent: undefined,
        configDrift: undefined,
        providerVersion: undefined,
      },
      { ...opts, additionalSecretOutputs: ["connection", "ownerAuth", "srkAuth"] },
      "pulumi-tvd",
      "VtpmManager",
    );
  }
}
