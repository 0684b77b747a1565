import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import type { DomainArgs, Inputs } from "../../inputs";
import { Vtpm } from "../vtpm/resource";

export interface GuestVifArgs {
  /** The dom0 bridge the interface joins. */
  readonly bridge: string;
  /** @default - xl picks one in 00:16:3e */
  readonly mac?: string;
  /** The guest's address with its prefix, e.g. "10.50.0.11/24". @default - none (the guest's seed or DHCP decides) */
  readonly ip?: string;
  /**
   * dom0's name for the vif's backend interface, the same at every start (a TVD member's port is
   * found by it). At most 15 characters, not vif<N>...
   * @default - xl's vif<domid>.<devid>
   */
  readonly vifname?: string;
}

export interface GuestDiskArgs {
  /** An existing disk file on the dom0. */
  readonly target: string;
  /** @default "raw" */
  readonly format?: "raw" | "qcow2";
  /** xvdb ... xvdz (xvda is the overlay). */
  readonly vdev: string;
  /** @default "rw" */
  readonly access?: "rw" | "ro";
}

export interface GuestArgs extends DomainArgs {
  /** The template the guest's disk is an overlay of; only read, never written. */
  readonly baseImage: pulumi.Input<string>;
  /** @default "raw" */
  readonly baseImageFormat?: pulumi.Input<"raw" | "qcow2">;
  /** The guest's own disk, a qcow2 overlay of baseImage. @default "/var/lib/xen/images/<name>.qcow2" */
  readonly overlayPath?: pulumi.Input<string>;
  /** @default 512 */
  readonly memoryMiB?: pulumi.Input<number>;
  /** @default 1 */
  readonly vcpus?: pulumi.Input<number>;
  /**
   * "direct" boots `kernel` (+ ramdisk, cmdline); "pvgrub" boots pv-grub, which measures the
   * guest kernel into PCR 4 and its cmdline and initrd into PCR 5.
   * @default "direct"
   */
  readonly bootLoader?: pulumi.Input<"direct" | "pvgrub">;
  /** The PV kernel (direct), or pv-grub itself. @default - required for direct; pv-grub's path for pvgrub */
  readonly kernel?: pulumi.Input<string>;
  /** @default - none */
  readonly ramdisk?: pulumi.Input<string>;
  /** The kernel command line (direct), or pv-grub's menu (pvgrub). @default - none */
  readonly cmdline?: pulumi.Input<string>;
  /** @default [] (no network) */
  readonly vifs?: pulumi.Input<pulumi.Input<Inputs<GuestVifArgs>>[]>;
  /**
   * The guest's vTPM: the resource (the guest then starts after it and is destroyed before it)
   * or its domain name.
   * @default - no vTPM
   */
  readonly vtpm?: Vtpm | pulumi.Input<string>;
  /** @default [] */
  readonly extraDisks?: pulumi.Input<pulumi.Input<Inputs<GuestDiskArgs>>[]>;
  /** How long to wait for the vTPM to serve before starting the guest. @default 60 */
  readonly vtpmReadyTimeoutSec?: pulumi.Input<number>;
}

/**
 * A PV guest: a qcow2 overlay of a base image (O(1), no copy), its xl config with
 * `vtpm=["backend=<vtpm domain>"]`, and the running domain, started only once its vTPM serves.
 */
export class Guest extends TvdResource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly domid: pulumi.Output<number | null>;
  declare public readonly running: pulumi.Output<boolean>;
  declare public readonly overlayBackingFile: pulumi.Output<string | null>;
  declare public readonly vtpmAttached: pulumi.Output<boolean>;

  constructor(name: string, args: GuestArgs, opts?: pulumi.CustomResourceOptions) {
    // vtpm.name is an output of the vTPM: the engine orders create and delete by it.
    const vtpm = args.vtpm instanceof Vtpm ? args.vtpm.name : args.vtpm;
    super(
      "Guest",
      name,
      { ...args, vtpm },
      { outputs: ["name", "running", "domid", "overlayBackingFile", "vtpmAttached"] },
      opts,
    );
  }
}
