/**
 * A guest's config, as read back from the host, laid over its declared inputs: a config edited
 * out of band then shows as drift on the property that changed. Pure.
 */
import type { ObservedGuest } from "../../xl/observe";
import { kernelOf, type GuestInputs } from "./args";

type ExtraDisk = GuestInputs["extraDisks"][number];

/**
 * What the config says wins over what was declared. A value the schema would refuse (a vhd disk,
 * a missing vdev) is passed on as it is: it must show as drift, not pass as the declared value.
 * Settings the config lacks keep their declared value; the config-level diff names them.
 */
export function guestInputsFromConfig(observed: ObservedGuest, v: GuestInputs): GuestInputs {
  const pvgrub = observed.extra !== undefined && (observed.kernel ?? "").includes("pv-grub");
  const kernel = observed.kernel ?? kernelOf(v);
  return {
    ...v,
    memoryMiB: observed.memoryMiB ?? v.memoryMiB,
    vcpus: observed.vcpus ?? v.vcpus,
    bootLoader: pvgrub ? "pvgrub" : "direct",
    // An unset kernel stays unset while the config boots its default.
    kernel: kernel === kernelOf(v) ? v.kernel : kernel,
    ramdisk: observed.ramdisk,
    cmdline: pvgrub ? observed.extra : observed.cmdline,
    vifs: observed.vifs.map((vif) => ({ ...vif })),
    vtpm: observed.vtpm,
    extraDisks: observed.disks
      .slice(1)
      .map((d) => ({ target: d.target, format: d.format, vdev: d.vdev, access: d.access }) as ExtraDisk),
  };
}
