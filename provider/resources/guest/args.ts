import { z } from "zod";
import { checkPathsUnderRoots, domainName, safePath, sizeMiB } from "../../names";
import { connectionSchema, wholeSeconds } from "../../transport/connection";
import { absolutePath } from "../../validation";
import { PVGRUB_KERNEL, type GuestDomain } from "../../xl/domains";
import { configPathOf } from "../stubdom";

const diskFormat = z.enum(["raw", "qcow2"]);
const VCPUS = "must be a whole number of vCPUs from 1 to 128";

/**
 * A vif's backend interface name: a Linux interface name (at most 15 characters), never one of
 * xl's own vif<domid>.<devid> names, which another domain's vif takes when that domain starts.
 */
export const vifName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
    "must be an interface name of 1 to 15 letters, digits, '_', '.' or '-', starting with a letter or digit, such as tvp-red-01",
  )
  .refine((n) => !/^vif\d/.test(n), {
    message: "must not look like xl's own vif<domid>.<devid> names: choose a name such as tvp-<member>",
  });

/** A network interface on a dom0 bridge; every value goes into an xl vif spec unquoted. */
const vif = z.strictObject({
  /** A Linux interface name: at most 15 characters (IFNAMSIZ less the NUL). */
  bridge: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be a bridge name of 1 to 15 letters, digits, '_', '.' or '-'"),
  /** @default - xl picks a random 00:16:3e MAC each time the guest starts */
  mac: z
    .string()
    .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, "must be a lowercase MAC address such as 00:16:3e:00:00:01")
    .optional(),
  /** @default - none: the guest's address comes from its seed or DHCP */
  ip: z
    .string()
    .regex(
      /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/([0-9]|[12]\d|3[0-2])$/,
      "must be an IPv4 address with its prefix length, such as 10.50.0.11/24",
    )
    .optional(),
  /**
   * The name of the vif's backend interface in dom0, the same each time the guest starts, so that
   * dom0 can find its port (a MemberPort moves it between a TVD's holding and TVD bridges).
   * @default - xl's vif<domid>.<devid>, which changes with every start
   */
  vifname: vifName.optional(),
});

/** A disk the guest sees besides its overlay; pulumi-tvd attaches it but never creates it. */
const extraDisk = z.strictObject({
  target: safePath,
  /** @default - "raw" */
  format: diskFormat.default("raw"),
  vdev: z.string().regex(/^xvd[b-z]$/, "must be xvdb to xvdz (xvda is the guest's overlay disk)"),
  /** @default - "rw" */
  access: z.enum(["rw", "ro"]).default("rw"),
});

/**
 * Guest inputs. The guest boots from a qcow2 overlay on a read-only base image, so many guests
 * share one template. Paths it writes must sit under `allowedRoots`; the schema is checked before
 * any host is touched.
 */
const guestShape = z.strictObject({
  connection: connectionSchema,
  name: domainName,
  /** @default - ["/var/lib/xen", "/etc/xen"] */
  allowedRoots: z.array(absolutePath).min(1).default(["/var/lib/xen", "/etc/xen"]),
  /** The template the overlay is backed by; only read, so it may sit outside allowedRoots. */
  baseImage: safePath,
  /** @default - "raw" */
  baseImageFormat: diskFormat.default("raw"),
  /** @default - /var/lib/xen/images/<name>.qcow2 */
  overlayPath: absolutePath.optional(),
  /** @default - "/etc/xen" */
  configDir: absolutePath.default("/etc/xen"),
  /** @default - 512 */
  memoryMiB: sizeMiB(1048576).default(512),
  /** @default - 1 */
  vcpus: z.number().int(VCPUS).min(1, VCPUS).max(128, VCPUS).default(1),
  /**
   * "direct" boots `kernel` from dom0; "pvgrub" boots the kernel on the guest's disk, measured.
   * @default - "direct"
   */
  bootLoader: z.enum(["direct", "pvgrub"]).default("direct"),
  /** @default - required for "direct"; pv-grub (/usr/lib/xen/boot/pv-grub-x86_64.gz) for "pvgrub" */
  kernel: safePath.optional(),
  /** @default - no initrd (with "pvgrub", the guest's menu.lst names it) */
  ramdisk: safePath.optional(),
  /**
   * The kernel command line for "direct"; pv-grub's own arguments for "pvgrub", e.g.
   * "(hd0,0)/boot/grub/menu.lst".
   * @default - none
   */
  cmdline: z
    .string()
    .regex(/^[^"\p{Cc}]*$/u, "must not hold double quotes, newlines or other control characters")
    .optional(),
  /** @default - no network interfaces */
  vifs: z.array(vif).default([]),
  /** @default - no vTPM; otherwise the name of the guest's own vtpm-stubdom domain */
  vtpm: domainName.optional(),
  /** @default - none: the overlay (xvda) only */
  extraDisks: z.array(extraDisk).default([]),
  /**
   * The guest domain runs; out-of-band stops show as drift on this property.
   * @default - true
   */
  running: z.boolean().default(true),
  /**
   * How long a start waits for the guest's vTPM to come up.
   * @default - 60
   */
  vtpmReadyTimeoutSec: wholeSeconds(3600).default(60),
  /**
   * Take over an existing guest (overlay, config, domain) instead of creating one.
   * @default - false
   */
  adopt: z.boolean().default(false),
});

export function overlayPathOf(v: { overlayPath?: string; name: string }): string {
  return v.overlayPath ?? `/var/lib/xen/images/${v.name}.qcow2`;
}

/** The kernel xl boots; validated inputs leave it unset only for pv-grub. */
export function kernelOf(v: { kernel?: string }): string {
  return v.kernel ?? PVGRUB_KERNEL;
}

/**
 * Every check that spans properties. Runs even when other properties failed, so that check
 * reports every failure at once; it looks only at well-formed values.
 */
function checkGuest(
  v: Partial<Record<keyof z.input<typeof guestShape>, unknown>>,
  ctx: z.RefinementCtx,
): void {
  const name = domainName.safeParse(v.name).success ? (v.name as string) : undefined;
  checkPathsUnderRoots(
    v.allowedRoots,
    {
      overlayPath:
        typeof v.overlayPath === "string" ? v.overlayPath : name ? overlayPathOf({ name }) : undefined,
      configDir:
        name && typeof v.configDir === "string" ? configPathOf({ name, configDir: v.configDir }) : undefined,
    },
    ctx,
  );
  if (v.bootLoader === "direct" && v.kernel === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["kernel"],
      message:
        'is required when bootLoader is "direct": set kernel to the guest\'s PV kernel, e.g. /usr/lib/xen/boot/vmlinuz, or bootLoader: "pvgrub"',
    });
  }
  if (v.bootLoader === "pvgrub" && v.ramdisk !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["ramdisk"],
      message:
        'cannot be set with bootLoader: "pvgrub" (pv-grub loads the initrd the guest\'s menu.lst names): unset ramdisk or use bootLoader: "direct"',
    });
  }
  const firstUse = new Map<string, number>();
  (Array.isArray(v.extraDisks) ? (v.extraDisks as unknown[]) : []).forEach((d, i) => {
    const vdev = (d as { vdev?: unknown } | null)?.vdev;
    if (typeof vdev !== "string") return;
    const first = firstUse.get(vdev);
    if (first === undefined) firstUse.set(vdev, i);
    else
      ctx.addIssue({
        code: "custom",
        path: ["extraDisks", i, "vdev"],
        message: `${vdev} is already extraDisks[${first}]'s vdev; give each disk its own`,
      });
  });
}

export const guestSchema = guestShape.superRefine(checkGuest, { when: () => true });

export type GuestInputs = z.output<typeof guestSchema>;

/** The domain the renderer writes: the overlay is always the first disk, xvda. */
export function guestDomainOf(v: GuestInputs): GuestDomain {
  const kernel = kernelOf(v);
  return {
    name: v.name,
    memoryMiB: v.memoryMiB,
    vcpus: v.vcpus,
    boot:
      v.bootLoader === "pvgrub"
        ? { kind: "pvgrub", kernel, extra: v.cmdline }
        : { kind: "direct", kernel, ramdisk: v.ramdisk, cmdline: v.cmdline },
    disks: [{ target: overlayPathOf(v), format: "qcow2", vdev: "xvda", access: "rw" }, ...v.extraDisks],
    vifs: v.vifs,
    vtpmBackend: v.vtpm,
  };
}
