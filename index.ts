/** pulumi-tvd: Trusted Virtual Domains on Xen, as Pulumi resources and constructs. */
export * from "./constructs";
export * from "./provider";
