/** pulumi-tvd: Trusted Virtual Domains on Xen, as Pulumi resources. */
export * from "./provider";
