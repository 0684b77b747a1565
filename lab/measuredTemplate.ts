/**
 * The lab's measured-boot template: a small ext4 disk that pv-grub (lab/xl/pvgrub.ts) boots from
 * its own /boot/grub/menu.lst, seeded on every host beside the plain debian-base.raw. Its kernel
 * and initrd are stand-in bytes, the same on every lab and every run: a fixed header, then a
 * seeded SHA-256 chain. They are written twice: baked into the image on each host, and under the
 * lab's state dir (`<stateDir>/boot/`, beside inventory.json), where Pulumi runs, so that a
 * program can declare the very files its members boot (TrustedVirtualDomain `measuredBoot`) and
 * compute their baseline from them.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";

/** The template on each lab host. */
export const MEASURED_IMAGE = "/var/lib/xen/images/debian-measured.raw";
/** The menu.lst a member's pv-grub reads (`measuredBoot.menuLst`): the image is one ext4, no partitions. */
export const MEASURED_MENU_LST = "(hd0)/boot/grub/menu.lst";
export const MEASURED_CMDLINE = "root=/dev/xvda ro console=hvc0";

/** What pv-grub boots from the template: the kernel as it runs (stored gzip-compressed), the initrd. */
export interface MeasuredBoot {
  readonly kernel: Buffer;
  readonly initrd: Buffer;
  readonly cmdline: string;
}

/** `size` bytes of a SHA-256 chain from `seed`: fixed, and incompressible like a real kernel. */
function chainedBytes(seed: string, size: number): Buffer {
  const blocks: Buffer[] = [];
  let block = createHash("sha256").update(seed).digest();
  for (let n = 0; n < size; n += block.length) {
    blocks.push(block);
    block = createHash("sha256").update(block).digest();
  }
  return Buffer.concat(blocks).subarray(0, size);
}

/** The template's boot files; pure, the same bytes on every call. */
export function measuredBoot(): MeasuredBoot {
  return {
    kernel: Buffer.concat([
      Buffer.from("\x7fELF pulumi-tvd lab kernel: stand-in bytes, measured by pv-grub\n", "latin1"),
      chainedBytes("pulumi-tvd lab kernel", 64 * 1024),
    ]),
    initrd: chainedBytes("pulumi-tvd lab initrd", 32 * 1024),
    cmdline: MEASURED_CMDLINE,
  };
}

/** The menu.lst baked into the template: one entry, on the whole disk. */
export function renderMenuLst(cmdline: string): string {
  return [
    "default 0",
    "timeout 1",
    "title Debian GNU/Linux (pulumi-tvd lab, measured)",
    "root (hd0)",
    `kernel /boot/vmlinuz ${cmdline}`,
    "initrd /boot/initrd.img",
    "",
  ].join("\n");
}

/** Where Pulumi finds the boot files: `vmlinuz` (gzip), `initrd.img`, `cmdline`, `grub/menu.lst`. */
export const measuredBootDir = (stateDir: string) => path.join(stateDir, "boot");

/**
 * Writes the boot files under `<stateDir>/boot/`; a file that already holds its bytes is left
 * alone, and others are replaced by rename, so a host copying them meanwhile reads whole files.
 */
export function writeMeasuredBoot(stateDir: string): void {
  const boot = measuredBoot();
  const dir = measuredBootDir(stateDir);
  const files: Record<string, Buffer> = {
    vmlinuz: gzipSync(boot.kernel),
    "initrd.img": boot.initrd,
    cmdline: Buffer.from(`${boot.cmdline}\n`),
    "grub/menu.lst": Buffer.from(renderMenuLst(boot.cmdline)),
  };
  for (const [name, bytes] of Object.entries(files)) {
    const file = path.join(dir, name);
    if (existsSync(file) && readFileSync(file).equals(bytes)) continue;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, bytes);
    renameSync(`${file}.tmp`, file);
  }
}

/**
 * Shell that makes the template on a host from the boot files (arguments: the image, the boot
 * dir) unless it exists: `mkfs.ext4 -d` from a root holding just /boot, 16 MiB, sparse.
 */
export const SEED_MEASURED_IMAGE = [
  "set -e",
  'test -e "$1" && exit 0',
  "root=$(mktemp -d) && trap 'rm -rf \"$root\"' EXIT",
  'mkdir -p "$root/boot/grub" "$(dirname "$1")"',
  'cp "$2/vmlinuz" "$2/initrd.img" "$root/boot/" && cp "$2/grub/menu.lst" "$root/boot/grub/"',
  'mkfs.ext4 -q -F -L tvd-measured -d "$root" "$1.tmp" 16M && mv "$1.tmp" "$1"',
].join("\n");
