import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import type { DomainArgs } from "../../inputs";
import { VtpmManager } from "../vtpmManager/resource";
import type { deletionPolicies } from "./args";

export interface VtpmArgs extends DomainArgs {
  /**
   * The vTPM manager that seals this vTPM's keys: the resource (the vTPM then depends on it, so
   * it starts after and is destroyed before the manager) or its domain name.
   */
  readonly manager: VtpmManager | pulumi.Input<string>;
  /** @default "/var/lib/xen/vtpm/<name>.img" */
  readonly imagePath?: pulumi.Input<string>;
  /** @default 8 */
  readonly imageSizeMiB?: pulumi.Input<number>;
  /** @default 8 */
  readonly memoryMiB?: pulumi.Input<number>;
  /** @default "/usr/lib/xen/boot/vtpm-stubdom.gz" */
  readonly kernel?: pulumi.Input<string>;
  /**
   * An initramfs for the stub-domain kernel. Real stub domains (mini-os) take none; a Linux
   * kernel in their place, such as the real-Xen lab's stand-ins, needs one (and 96 MiB or more).
   * @default - none
   */
  readonly ramdisk?: pulumi.Input<string>;
  /**
   * The vTPM's identity to its manager. Changing it loses the vTPM's keys.
   * @default - made once from the project, stack and resource name (a name-based UUID), kept in state
   */
  readonly uuid?: pulumi.Input<string>;
  /** @default - the stub domain's default */
  readonly logLevel?: pulumi.Input<"error" | "info" | "debug">;
  /** PCRs initialised from the hardware TPM, e.g. "0-7" or "all". @default - none */
  readonly hwInitPcr?: pulumi.Input<string>;
  /** Allow TPM maintenance commands. @default - the stub domain's default */
  readonly maintCmds?: pulumi.Input<boolean>;
  /** How long create waits for "Waiting for frontend domain to connect". @default 60 */
  readonly readyTimeoutSec?: pulumi.Input<number>;
  /** Allow a new image or UUID, which loses the vTPM's keys. @default false */
  readonly allowStateReset?: pulumi.Input<boolean>;
  /**
   * What happens to the image (the keys) on delete: moved to the archive, left in place, or removed.
   * @default "archive"
   */
  readonly deletionPolicy?: pulumi.Input<(typeof deletionPolicies)[number]>;
}

/**
 * A guest's virtual TPM (vtpm-stubdom): its raw image holding the keys, its xl config with
 * `vtpm=["backend=<manager>,uuid=<uuid>"]`, and the running domain. Its image is never
 * overwritten and, by default, archived on delete.
 */
export class Vtpm extends TvdResource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly manager: pulumi.Output<string>;
  /** The vTPM's identity to its manager. */
  declare public readonly uuid: pulumi.Output<string>;
  declare public readonly runningUuid: pulumi.Output<string | null>;
  declare public readonly domid: pulumi.Output<number | null>;
  declare public readonly running: pulumi.Output<boolean>;

  constructor(name: string, args: VtpmArgs, opts?: pulumi.CustomResourceOptions) {
    // manager.name is an output of the manager: the engine orders create and delete by it.
    const manager = args.manager instanceof VtpmManager ? args.manager.name : args.manager;
    super(
      "Vtpm",
      name,
      { ...args, manager },
      { outputs: ["name", "manager", "uuid", "runningUuid", "domid", "running"] },
      opts,
    );
  }
}
