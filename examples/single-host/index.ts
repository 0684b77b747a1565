// One dom0: a vTPM manager, and three guests built from one base image, each with its own vTPM.
// Point it at any dom0 (or a lab host: `npm run lab -- up` prints the inventory to take the
// values from):
//   pulumi config set host 127.0.0.1
//   pulumi config set port 2201
//   pulumi config set hostKeyFingerprint SHA256:...
//   pulumi config set --secret privateKey < ~/.ssh/id_ed25519
// On the real-Xen lab (`npm run lab -- up --xen`), whose stub domains are Linux stand-ins:
//   pulumi config set standInStubdoms true
import * as pulumi from "@pulumi/pulumi";
import { Guest, Vtpm, VtpmManager } from "pulumi-tvd";

const config = new pulumi.Config();
const connection = {
  host: config.require("host"),
  port: config.getNumber("port") ?? 22,
  privateKey: config.requireSecret("privateKey"),
  hostKeyFingerprint: config.require("hostKeyFingerprint"),
};

// Real stub domains (mini-os) run in 8-16 MiB with no initramfs. The real-Xen lab's stand-ins
// are Debian's kernel with a busybox initramfs: they need ramdisk= and at least 96 MiB.
const standIn = config.getBoolean("standInStubdoms") ?? false;
const stubdom = (kind: "vtpmmgr" | "vtpm") =>
  standIn ? { ramdisk: `/usr/lib/xen/boot/${kind}-stubdom-initrd.gz`, memoryMiB: 128 } : {};

const manager = new VtpmManager("vtpmmgr", { connection, name: "vtpmmgr", ...stubdom("vtpmmgr") });

const guests = ["web1", "web2", "db1"].map((name) => {
  // Passing the resources (not their names) orders start and destroy: manager, vTPM, guest.
  const vtpm = new Vtpm(`${name}-vtpm`, { connection, name: `${name}-vtpm`, manager, ...stubdom("vtpm") });
  const guest = new Guest(name, {
    connection,
    name,
    baseImage: "/var/lib/xen/images/debian-base.raw",
    memoryMiB: config.getNumber("guestMemoryMiB") ?? 128,
    kernel: "/usr/lib/xen/boot/vmlinuz",
    ramdisk: "/usr/lib/xen/boot/initrd.img",
    cmdline: "root=/dev/xvda ro console=hvc0",
    vtpm,
  });
  return { name, vtpm, guest };
});

export const managerDomid = manager.domid;
export const members = Object.fromEntries(
  guests.map(({ name, vtpm, guest }) => [
    name,
    { domid: guest.domid, vtpm: vtpm.name, vtpmUuid: vtpm.uuid, vtpmAttached: guest.vtpmAttached },
  ]),
);
