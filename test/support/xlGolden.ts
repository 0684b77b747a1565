/** The configs the golden tests render: one of each domain kind, as the Xen docs set them up. */
import {
  renderGuestConfig,
  renderVtpmConfig,
  renderVtpmManagerConfig,
  VTPM_KERNEL,
  VTPMMGR_KERNEL,
} from "../../provider/xl/domains";
import type { XlConfig } from "../../provider/xl/config";

export const goldenConfigs: Record<string, XlConfig> = {
  "vtpmmgr.cfg": renderVtpmManagerConfig({
    name: "vtpmmgr",
    kernel: VTPMMGR_KERNEL,
    memoryMiB: 16,
    image: "/var/lib/xen/vtpm/vtpmmgr.img",
    iomem: ["fed40,5"],
    tpmLocality: 2,
    tpm2: true,
    ownerAuth: "well-known",
    srkAuth: "well-known",
  }),
  "web1-vtpm.cfg": renderVtpmConfig({
    name: "web1-vtpm",
    kernel: VTPM_KERNEL,
    memoryMiB: 8,
    image: "/var/lib/xen/vtpm/web1-vtpm.img",
    manager: "vtpmmgr",
    uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839",
    logLevel: "info",
    hwInitPcr: "0-7",
  }),
  "web1.cfg": renderGuestConfig({
    name: "web1",
    memoryMiB: 256,
    vcpus: 2,
    boot: {
      kind: "direct",
      kernel: "/usr/lib/xen/boot/vmlinuz",
      ramdisk: "/usr/lib/xen/boot/initrd.img",
      cmdline: "root=/dev/xvda ro console=hvc0",
    },
    disks: [
      { target: "/var/lib/xen/images/web1.qcow2", format: "qcow2", vdev: "xvda", access: "rw" },
      { target: "/var/lib/xen/images/web1-data.raw", format: "raw", vdev: "xvdb", access: "rw" },
    ],
    vifs: [{ bridge: "xenbr0", mac: "00:16:3e:00:00:01" }],
    vtpmBackend: "web1-vtpm",
  }),
  "db1-pvgrub.cfg": renderGuestConfig({
    name: "db1",
    memoryMiB: 512,
    vcpus: 1,
    boot: {
      kind: "pvgrub",
      kernel: "/usr/lib/xen/boot/pv-grub-x86_64.gz",
      extra: "(hd0,0)/boot/grub/menu.lst",
    },
    disks: [{ target: "/var/lib/xen/images/db1.qcow2", format: "qcow2", vdev: "xvda", access: "rw" }],
    vifs: [],
    vtpmBackend: "db1-vtpm",
  }),
};
