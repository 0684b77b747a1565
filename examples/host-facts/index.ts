// Records the facts of every host in a lab inventory (or any inventory of real dom0s in the
// same format): kernel, Xen and xl, qemu-img and swtpm versions, free space for vTPM images.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { HostFacts } from "pulumi-tvd";

interface InventoryHost {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  hostKeyFingerprint: string;
}

const config = new pulumi.Config();
// Relative to the project root (where Pulumi.yaml is), whatever directory the program runs in.
const inventoryFile = path.resolve(
  pulumi.runtime.getRootDirectory(),
  config.get("inventory") ?? "lab/state/inventory.json",
);
const inventory = JSON.parse(readFileSync(inventoryFile, "utf8")) as { hosts: InventoryHost[] };

export const hosts = Object.fromEntries(
  inventory.hosts.map((h) => {
    const facts = new HostFacts(h.name, {
      connection: {
        host: h.host,
        port: h.port,
        user: h.user,
        privateKey: pulumi.secret(readFileSync(h.privateKeyPath, "utf8")),
        hostKeyFingerprint: h.hostKeyFingerprint,
      },
    });
    return [
      h.name,
      {
        kernel: facts.kernel,
        xenVersion: facts.xenVersion,
        qemuImg: facts.qemuImgVersion,
        swtpm: facts.swtpmVersion,
        xenDataFreeMiB: facts.xenDataFreeMiB,
      },
    ];
  }),
);
