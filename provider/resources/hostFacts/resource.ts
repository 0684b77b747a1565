import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
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
export class HostFacts extends TvdResource {
  declare public readonly kernel: pulumi.Output<string>;
  declare public readonly xlPath: pulumi.Output<string | null>;
  declare public readonly xenVersion: pulumi.Output<string | null>;
  declare public readonly qemuImgVersion: pulumi.Output<string | null>;
  declare public readonly swtpmVersion: pulumi.Output<string | null>;
  declare public readonly xenDataFreeMiB: pulumi.Output<number | null>;
  declare public readonly xenDataDir: pulumi.Output<string>;

  constructor(name: string, args: HostFactsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "HostFacts",
      name,
      args,
      { outputs: ["kernel", "xlPath", "xenVersion", "qemuImgVersion", "swtpmVersion", "xenDataFreeMiB"] },
      opts,
    );
  }
}
