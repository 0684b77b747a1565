// An application team's program: the platform team's construct, installed like any dependency.
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { ThreeTierTvd, type Environment } from "@acme/tvd-three-tier";
import { XenHost } from "pulumi-tvd";

const config = new pulumi.Config();
// The hosts, as `npm run lab -- up` writes them (or your own inventory of dom0s).
const inventory = JSON.parse(readFileSync(config.require("inventory"), "utf8")) as {
  hosts: {
    name: string;
    host: string;
    port: number;
    privateKeyPath: string;
    hostKeyFingerprint: string;
    underlayIp: string;
  }[];
};
const hosts = inventory.hosts.map(
  (h) =>
    new XenHost(h.name, {
      connection: {
        host: h.host,
        port: h.port,
        privateKey: pulumi.secret(readFileSync(h.privateKeyPath, "utf8")),
        hostKeyFingerprint: h.hostKeyFingerprint,
      },
      tunnelIp: h.underlayIp,
      guestMemoryMiB: 2048,
      manager: { readyTimeoutSec: 30 },
    }),
);

const shop = new ThreeTierTvd("shop", {
  team: "shop",
  env: (config.get("env") ?? "dev") as Environment, // the construct refuses any other value, naming it
  size: "small",
  hosts,
  image: { baseImage: "/var/lib/xen/images/debian-base.raw", kernel: "/usr/lib/xen/boot/vmlinuz" },
  agentTimeoutSec: 60,
});

export const tvd = shop.tvdName;
export const tiers = shop.tiers;
export const members = shop.members;
export const summary = shop.summary;
