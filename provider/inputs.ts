import type * as pulumi from "@pulumi/pulumi";

/** A props type whose every property may be a Pulumi Input (an Output of another resource, a secret). */
export type Inputs<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };
