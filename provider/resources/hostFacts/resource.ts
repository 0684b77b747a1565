import * as pulumi from "@pulumi/pulumi";
import { resourceOwner, serializableProvider } from "../../dynamic";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";

export interface HostFactsArgs {
  /** How to reach the dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /**
   * Directory whose free space is reported (where vTPM images and overlays live).
   * @default "/var/lib/xen"
   */
  readonly xenDataDir?: pulumi.Input<string>;
}

/**
 * The facts of one dom0 that later resources gate on: kernel, xl and Xen version, qemu-img and
 * swtpm versions, and free space under the Xen data directory. `pulumi refresh` (or
 * `preview --refresh`) reads them again, so a changed host shows up as drift.
 */
export class HostFacts extends pulumi.dynamic.Resource {
  declare public readonly kernel: pulumi.Output<string>;
  declare public readonly xlPath: pulumi.Output<string | null>;
  declare public readonly xenVersion: pulumi.Output<string | null>;
  declare public readonly qemuImgVersion: pulumi.Output<string | null>;
  declare public readonly swtpmVersion: pulumi.Output<string | null>;
  declare public readonly xenDataFreeMiB: pulumi.Output<number | null>;
  declare public readonly xenDataDir: pulumi.Output<string>;
  declare public readonly providerVersion: pulumi.Output<string>;

  constructor(name: string, args: HostFactsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      serializableProvider("HostFacts"),
      name,
      {
        owner: resourceOwner("HostFacts", name),
        connection: pulumi.secret(args.connection),
        xenDataDir: args.xenDataDir,
        kernel: undefined,
        xlPath: undefined,
        xenVersion: undefined,
        qemuImgVersion: undefined,
        swtpmVersion: undefined,
        xenDataFreeMiB: undefined,
        providerVersion: undefined,
      },
      { ...opts, additionalSecretOutputs: ["connection"] },
      "pulumi-tvd",
      "HostFacts",
    );
  }
}
