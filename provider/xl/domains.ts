/**
 * The three kinds of domain pulumi-tvd writes, as Xen's vTPM documentation configures them.
 * Pure: inputs are validated before they get here.
 */
import type { XlConfig } from "./config";

export const VTPMMGR_KERNEL = "/usr/lib/xen/boot/vtpmmgr-stubdom.gz";
export const VTPM_KERNEL = "/usr/lib/xen/boot/vtpm-stubdom.gz";
/** pv-grub as Xen installs it: boots the guest's own kernel from its disk, measuring it first. */
export const PVGRUB_KERNEL = "/usr/lib/xen/boot/pv-grub-x86_64.gz";

/** What both stub domains' configs are made of besides their own device and options. */
interface StubdomDomain {
  readonly name: string;
  readonly kernel: string;
  /**
   * Real stub domains (mini-os) need none. A stub-domain kernel that is a Linux bzImage, such as
   * the real-Xen lab's stand-ins, gets its initramfs only this way.
   */
  readonly ramdisk?: string;
  readonly memoryMiB: number;
  readonly image: string;
}

/**
 * Both vTPM stub domains: a mini-os kernel, a raw image as first disk (in the docs' legacy
 * syntax), one device setting of their own, and their options on the extra= command line.
 */
function renderStubdomConfig(
  d: StubdomDomain,
  device: readonly [string, readonly string[]],
  options: ReadonlyArray<string | undefined>,
): XlConfig {
  const extra = options.filter((x): x is string => x !== undefined);
  return [
    ["name", d.name],
    ["kernel", d.kernel],
    ...(d.ramdisk ? ([["ramdisk", d.ramdisk]] as const) : []),
    ["memory", d.memoryMiB],
    ["disk", [`file:${d.image},hda,w`]],
    device,
    ...(extra.length ? ([["extra", extra.join(" ")]] as const) : []),
  ];
}

export interface VtpmManagerDomain extends StubdomDomain {
  /** TPM MMIO pages the manager may map, e.g. "fed40,5" (all five localities). */
  readonly iomem: readonly string[];
  readonly tpmLocality?: number;
  readonly tpm2?: boolean;
  readonly tpmDriver?: "tpm_tis" | "tpmfront";
  /** Secrets: written into the config's extra= line, which the manager reads as its cmdline. */
  readonly ownerAuth?: string;
  readonly srkAuth?: string;
}

export function renderVtpmManagerConfig(d: VtpmManagerDomain): XlConfig {
  return renderStubdomConfig(
    d,
    ["iomem", d.iomem],
    [
      d.tpmLocality !== undefined ? `tpmlocality=${d.tpmLocality}` : undefined,
      d.tpm2 ? "tpm2=1" : undefined,
      d.tpmDriver ? `tpmdriver=${d.tpmDriver}` : undefined,
      d.ownerAuth !== undefined ? `owner_auth=${d.ownerAuth}` : undefined,
      d.srkAuth !== undefined ? `srk_auth=${d.srkAuth}` : undefined,
    ],
  );
}

export interface VtpmDomain extends StubdomDomain {
  /** The vTPM manager domain's name. */
  readonly manager: string;
  /** Identifies this vTPM to the manager; changing it loses the vTPM's keys. */
  readonly uuid: string;
  readonly logLevel?: "error" | "info" | "debug";
  /** PCRs initialised from the hardware TPM, e.g. "0-7" or "all". */
  readonly hwInitPcr?: string;
  readonly maintCmds?: boolean;
}

export function renderVtpmConfig(d: VtpmDomain): XlConfig {
  return renderStubdomConfig(
    d,
    ["vtpm", [`backend=${d.manager},uuid=${d.uuid}`]],
    [
      d.logLevel ? `loglevel=${d.logLevel}` : undefined,
      d.hwInitPcr ? `hwinitpcr=${d.hwInitPcr}` : undefined,
      d.maintCmds !== undefined ? `maintcmds=${d.maintCmds ? 1 : 0}` : undefined,
    ],
  );
}

export interface GuestDisk {
  readonly target: string;
  readonly format: "qcow2" | "raw";
  readonly vdev: string;
  readonly access: "rw" | "ro";
}

/** The modern xl disk spec; target= comes last, as xl-disk-configuration requires. */
export function renderDiskSpec(d: GuestDisk): string {
  return `format=${d.format}, vdev=${d.vdev}, access=${d.access}, target=${d.target}`;
}

export type GuestBoot =
  | { readonly kind: "direct"; readonly kernel: string; readonly ramdisk?: string; readonly cmdline?: string }
  /** pv-grub measures the kernel into PCR 4 and cmdline + initrd into PCR 5 before booting. */
  | { readonly kind: "pvgrub"; readonly kernel: string; readonly extra?: string };

export interface GuestVif {
  readonly bridge: string;
  readonly mac?: string;
  /** The guest's address (CIDR), for vif scripts and routing; the guest itself learns it from its seed. */
  readonly ip?: string;
  /** dom0's name for the backend interface; xl's vif<domid>.<devid> when unset. */
  readonly vifname?: string;
}

export function renderVifSpec(v: GuestVif): string {
  return [
    `bridge=${v.bridge}`,
    v.mac && `mac=${v.mac}`,
    v.ip && `ip=${v.ip}`,
    v.vifname && `vifname=${v.vifname}`,
  ]
    .filter(Boolean)
    .join(",");
}

export interface GuestDomain {
  readonly name: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly boot: GuestBoot;
  readonly disks: readonly GuestDisk[];
  readonly vifs: readonly GuestVif[];
  /** The guest's own vtpm-stubdom domain. */
  readonly vtpmBackend?: string;
}

export function renderGuestConfig(d: GuestDomain): XlConfig {
  const boot: XlConfig =
    d.boot.kind === "direct"
      ? [
          ["kernel", d.boot.kernel],
          ...(d.boot.ramdisk ? ([["ramdisk", d.boot.ramdisk]] as const) : []),
          // An empty command line is written too: left out, it would read back as unset.
          ...(d.boot.cmdline !== undefined ? ([["cmdline", d.boot.cmdline]] as const) : []),
        ]
      : [
          ["kernel", d.boot.kernel],
          ...(d.boot.extra !== undefined ? ([["extra", d.boot.extra]] as const) : []),
        ];
  return [
    ["name", d.name],
    ["memory", d.memoryMiB],
    ["vcpus", d.vcpus],
    ...boot,
    ["disk", d.disks.map(renderDiskSpec)],
    ...(d.vifs.length ? ([["vif", d.vifs.map(renderVifSpec)]] as const) : []),
    ...(d.vtpmBackend ? ([["vtpm", [`backend=${d.vtpmBackend}`]]] as const) : []),
  ];
}
