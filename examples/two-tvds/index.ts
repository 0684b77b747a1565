// Two Trusted Virtual Domains on three Xen hosts: "red" spans all three with six members,
// "blue" spans two with three named members. Each member gets its own vTPM, a guest from the
// shared template, an SSH host certificate and an X.509 identity from its TVD's CAs, and a
// cloud-init seed carrying them before first boot; each TVD has its own bridge and VXLAN.
//
// The hosts come from an inventory in the lab's format (`npm run lab -- up --hosts 3` writes
// lab/state/inventory.json); point `inventory` at your own for real dom0s.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { TrustedVirtualDomain, XenHost } from "pulumi-tvd";

interface InventoryHost {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  hostKeyFingerprint: string;
  underlayIp: string;
}

const config = new pulumi.Config();
const inventoryFile = path.resolve(
  pulumi.runtime.getRootDirectory(),
  config.get("inventory") ?? "lab/state/inventory.json",
);
const inventory = JSON.parse(readFileSync(inventoryFile, "utf8")) as { hosts: InventoryHost[] };

const hosts = inventory.hosts.map(
  (h) =>
    new XenHost(h.name, {
      connection: {
        host: h.host,
        port: h.port,
        user: h.user,
        privateKey: pulumi.secret(readFileSync(h.privateKeyPath, "utf8")),
        hostKeyFingerprint: h.hostKeyFingerprint,
      },
      tunnelIp: h.underlayIp,
      guestMemoryMiB: 8192,
    }),
);

const template = {
  baseImage: "/var/lib/xen/images/debian-base.raw",
  memoryMiB: 128,
  kernel: "/usr/lib/xen/boot/vmlinuz",
  ramdisk: "/usr/lib/xen/boot/initrd.img",
  cmdline: "root=/dev/xvda ro console=hvc0",
};

const red = new TrustedVirtualDomain("red", {
  hosts,
  template,
  members: 6,
  network: { subnet: "10.50.0.0/24" },
  rotation: config.get("rotation"),
});

const blue = new TrustedVirtualDomain("blue", {
  hosts: hosts.slice(0, 2),
  template,
  members: [{ name: "web" }, { name: "api" }, { name: "db", memoryMiB: 256, host: hosts[1] }],
  // The same subnet as red on purpose: each TVD is its own network, so they never meet.
  network: { subnet: "10.50.0.0/24" },
  rotation: config.get("rotation"),
});

export const summary = pulumi.interpolate`${red.summary}\n\n${blue.summary}`;
export const members = { red: red.members, blue: blue.members };
