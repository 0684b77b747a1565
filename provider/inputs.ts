import type * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "./transport/connection";

/** A props type whose every property may be a Pulumi Input (an Output of another resource, a secret). */
export type Inputs<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/** What every resource that owns one xl domain on a dom0 takes (VtpmManager, Vtpm, Guest). */
export interface DomainArgs {
  /** How to reach the dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /** The xl domain name; also the name of its config file, `<configDir>/<name>.cfg`. */
  readonly name: pulumi.Input<string>;
  /**
   * Directories pulumi-tvd may write in on this dom0.
   * @default ["/var/lib/xen", "/etc/xen"]
   */
  readonly allowedRoots?: pulumi.Input<pulumi.Input<string>[]>;
  /** @default "/etc/xen" */
  readonly configDir?: pulumi.Input<string>;
  /**
   * The domain runs; a stop out of band shows as drift on this property.
   * @default true
   */
  readonly running?: pulumi.Input<boolean>;
  /**
   * Take over what already exists on the dom0 (Pulumi's import does not work for dynamic
   * providers); every field that differs from the declaration is named.
   * @default false
   */
  readonly adopt?: pulumi.Input<boolean>;
}
