// Two Trusted Virtual Domains on three Xen hosts: "red" spans all three with six members,
// "blue" spans two with three named members. Each member gets its own vTPM, a guest from the
// shared template, an SSH host certificate and an X.509 identity from its TVD's CAs, and a
// cloud-init seed carrying them before first boot; each TVD has its own bridge and VXLAN.
// Members boot through pv-grub from the template's own disk, which measures the kernel, command
// line and initrd into their vTPM, and join their TVD's network only once a quote proves it.
//
// The hosts come from an inventory in the lab's format (`npm run lab -- up --hosts 3` writes
// lab/state/inventory.json); point `inventory` at your own for real dom0s. The template's boot
// files, the very ones baked into it, are read from `bootDir` (the lab writes them beside its
// inventory) to compute the baseline every member must prove.
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
const bootDir = path.resolve(path.dirname(inventoryFile), config.get("bootDir") ?? "boot");

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

// The template names no kernel: pv-grub boots what its menu.lst names, from its own disk.
const template = { baseImage: "/var/lib/xen/images/debian-measured.raw", memoryMiB: 128 };
const measuredBoot = {
  kernel: path.join(bootDir, "vmlinuz"),
  initrd: path.join(bootDir, "initrd.img"),
  cmdline: readFileSync(path.join(bootDir, "cmdline"), "utf8").trim(),
  menuLst: "(hd0)/boot/grub/menu.lst", // the image is one ext4, no partitions
};

const red = new TrustedVirtualDomain("red", {
  hosts,
  template,
  members: 6,
  network: { subnet: "10.50.0.0/24" },
  measuredBoot,
  rotation: config.get("rotation"),
});

const blue = new TrustedVirtualDomain("blue", {
  hosts: hosts.slice(0, 2),
  template,
  members: [{ name: "web" }, { name: "api" }, { name: "db", memoryMiB: 256, host: hosts[1] }],
  // The same subnet as red on purpose: each TVD is its own network, so they never meet.
  network: { subnet: "10.50.0.0/24" },
  measuredBoot,
  rotation: config.get("rotation"),
});

export const summary = pulumi.interpolate`${red.summary}\n\n${blue.summary}`;
export const members = { red: red.members, blue: blue.members };
