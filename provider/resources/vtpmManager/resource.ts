import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import { MANAGER_SECRETS } from "./args";
import type { DomainArgs } from "../../inputs";

export interface VtpmManagerArgs extends DomainArgs {
  /** @default "/var/lib/xen/vtpm/<name>.img" */
  readonly imagePath?: pulumi.Input<string>;
  /** @default 16 (the manager uses the first 2 MiB) */
  readonly imageSizeMiB?: pulumi.Input<number>;
  /** @default 16, or 128 for a TPM 2.0 manager */
  readonly memoryMiB?: pulumi.Input<number>;
  /** @default "/usr/lib/xen/boot/vtpmmgr-stubdom.gz" */
  readonly kernel?: pulumi.Input<string>;
  /**
   * An initramfs for the stub-domain kernel. Real stub domains (mini-os) take none; a Linux
   * kernel in their place, such as the real-Xen lab's stand-ins, needs one (and 96 MiB or more).
   * @default - none
   */
  readonly ramdisk?: pulumi.Input<string>;
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
  /** Allow a new manager image (every served vTPM's keys are lost). @default false */
  readonly allowStateReset?: pulumi.Input<boolean>;
}

/**
 * The vTPM manager domain of one dom0 (vtpmmgr-stubdom): its raw image, its xl config and the
 * running domain. Deleting it refuses while vTPM domains use it, destroys it only when idle,
 * and archives its image.
 */
export class VtpmManager extends TvdResource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly domid: pulumi.Output<number | null>;
  declare public readonly running: pulumi.Output<boolean>;

  constructor(name: string, args: VtpmManagerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "VtpmManager",
      name,
      args,
      { secretInputs: MANAGER_SECRETS, outputs: ["name", "domid", "running"] },
      opts,
    );
  }
}
