/**
 * The lab's stand-in for pv-grub (`kernel = ".../pv-grub-x86_64.gz"`): it boots a guest the way
 * Xen's pv-grub does and measures what it boots, before the guest's kernel (here: its agent) runs.
 *
 * What it boots is what real pv-grub would find (Xen's stubdom/grub/mini-os.c): the config file
 * named by the first word of the domain's command line (`extra=`; without one, pv-grub's default
 * `(hd0,0)/boot/grub/menu.lst`, read after its DHCP attempt fails), on the guest's own disks,
 * `hdN` being the N-th vbd in device-number order (xvda is hd0), `(hdN,M)` the M-th primary MBR
 * partition, `(hdN)` the whole disk. Its default entry's `kernel FILE ARGS` and `initrd FILE`
 * (paths on the entry's `root` device unless they name one) are read from the filesystem there
 * (ext2/3/4, with e2fsprogs' debugfs; a qcow2 disk through `qemu-img convert`). The measured
 * command line is ARGS: GRUB legacy drops the kernel's file name (`load_image`'s `skip_to`).
 *
 * With a vtpm device, pv-grub's `tpm_hash2pcr` extends the vTPM with pvGrubMeasurements' three
 * events (provider/tpm/pvgrub.ts: the one definition the provider's baselines use too); if the
 * vTPM does not answer, pv-grub ASSERTs and the domain crashes. Without a vtpm device it boots
 * unmeasured, as kexec.c does. A config file or kernel it cannot read leaves it at its prompt:
 * the domain runs, no kernel does.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pvGrubMeasurements } from "../../provider/tpm/pvgrub";
import type { ExtendRequest } from "./pcrExtend";
import type { DiskConfig, DomainConfig, SwtpmProcess } from "./state";

/** pv-grub's own config file when its command line names none. */
export const PV_GRUB_DEFAULT_CONFIG = "(hd0,0)/boot/grub/menu.lst";

/** Xen's pv-grub images, as Debian and Xen's stubdom build name them. */
export function isPvGrub(kernel: string | undefined): boolean {
  return /^pv-grub-x86_(32|64)\.gz$/.test(kernel?.split("/").pop() ?? "");
}

/** A GRUB legacy error: its number and text, as GRUB prints them. */
export class GrubError extends Error {
  constructor(
    readonly code: number,
    text: string,
  ) {
    super(`Error ${code}: ${text}`);
  }
}

const grubErrors = {
  badDevice: (s: string) => new GrubError(11, `Unrecognized device string (${s})`),
  notFound: (f: string) => new GrubError(15, `File not found (${f})`),
  cannotMount: () => new GrubError(17, "Cannot mount selected partition"),
  noDisk: () => new GrubError(21, "Selected disk does not exist"),
  noPartition: () => new GrubError(22, "No such partition"),
};

export interface GrubDevice {
  readonly drive: number;
  /** The primary MBR partition (0-3); absent for the whole disk. */
  readonly partition?: number;
}

export interface GrubPath {
  readonly device: GrubDevice;
  readonly file: string;
}

/** `(hdN)` or `(hdN,M)`. */
export function parseGrubDevice(s: string): GrubDevice {
  const m = /^\(hd(\d+)(?:,(\d+))?\)$/.exec(s);
  if (!m) throw grubErrors.badDevice(s);
  return { drive: Number(m[1]), partition: m[2] === undefined ? undefined : Number(m[2]) };
}

/** A file name, `(hd0,0)/boot/vmlinuz` or `/boot/vmlinuz` on the current root device. */
export function parseGrubPath(s: string, root: GrubDevice | undefined): GrubPath {
  const m = /^(\([^)]*\))?(\/\S*)$/.exec(s);
  if (!m) throw grubErrors.badDevice(s);
  // pv-grub starts on its network drive (boot_drive = NETWORK_DRIVE): a bare path needs `root`.
  const device = m[1] ? parseGrubDevice(m[1]) : root;
  if (!device) throw grubErrors.noDisk();
  if (/["\\]/.test(m[2])) throw grubErrors.notFound(m[2]);
  return { device, file: m[2] };
}

export interface MenuEntry {
  readonly title: string;
  /** The entry's lines as GRUB echoes them when it boots the entry. */
  readonly lines: string[];
  root?: GrubDevice;
  kernel?: { file: string; args: string };
  initrd?: string;
}

export interface MenuLst {
  readonly defaultEntry: number;
  readonly entries: MenuEntry[];
}

/**
 * One config line as GRUB legacy reads it: tabs become spaces, runs of blanks outside double
 * quotes become one, leading and trailing blanks go.
 */
function grubLine(raw: string): string {
  let out = "";
  let quoted = false;
  for (const ch of raw.replace(/\t/g, " ")) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === " " && (out === "" || out.endsWith(" "))) continue;
    out += ch;
  }
  return out.trimEnd();
}

/** GRUB legacy's menu.lst: global `default`, then `title` entries with root, kernel and initrd. */
export function parseMenuLst(text: string): MenuLst {
  let defaultEntry = 0;
  const entries: MenuEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = grubLine(raw);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_]+)(?:[ =]+(.*))?$/.exec(line);
    if (!m) continue;
    const [, command, rest = ""] = m;
    const entry = entries[entries.length - 1];
    if (command === "title") {
      entries.push({ title: rest, lines: [] });
    } else if (!entry) {
      // "default saved" reads the saved entry, which pv-grub keeps at 0.
      if (command === "default") defaultEntry = /^\d+$/.test(rest) ? Number(rest) : 0;
    } else {
      entry.lines.push(line);
      if (command === "root" || command === "rootnoverify") {
        entry.root = parseGrubDevice(rest.split(" ")[0]);
      } else if (command === "kernel") {
        // kernel_func's own options come before the file; load_image then skips the file name.
        const words = rest.split(" ");
        while (words[0]?.startsWith("--")) words.shift();
        entry.kernel = { file: words[0] ?? "", args: words.slice(1).join(" ") };
      } else if (command === "initrd") {
        entry.initrd = rest.split(" ")[0];
      }
    }
  }
  return { defaultEntry, entries };
}

/** The Xen device number of a vdev (what device/vbd/<n> is named), by which pv-grub orders hdN. */
export function vbdNumber(vdev: string): number {
  const m = /^(xvd|hd|sd)([a-z]+)\d*$/.exec(vdev);
  if (!m) return Number.MAX_SAFE_INTEGER;
  const index = [...m[2]].reduce((n, c) => n * 26 + (c.charCodeAt(0) - 96), 0) - 1;
  if (m[1] === "xvd") return (202 << 8) | (index << 4);
  if (m[1] === "sd") return (8 << 8) | (index << 4);
  // IDE: hda/hdb on major 3, hdc/hdd on major 22.
  return ((index < 2 ? 3 : 22) << 8) | ((index % 2) << 6);
}

/** The guest's disks as pv-grub's blkfront sees them, read-only, raw. */
class BootDisks {
  private readonly raw = new Map<number, string>();
  private tmp?: string;
  readonly ordered: DiskConfig[];

  constructor(disks: readonly DiskConfig[]) {
    this.ordered = [...disks].sort((a, b) => vbdNumber(a.vdev) - vbdNumber(b.vdev));
  }

  private rawImage(drive: number): string {
    const disk = this.ordered[drive];
    if (!disk) throw grubErrors.noDisk();
    if (disk.format === "raw") return disk.pdev_path;
    const done = this.raw.get(drive);
    if (done) return done;
    this.tmp ??= mkdtempSync(path.join(os.tmpdir(), "tvd-lab-pvgrub-"));
    const out = path.join(this.tmp, `hd${drive}.raw`);
    const r = spawnSync("qemu-img", ["convert", "-U", "-f", disk.format, "-O", "raw", disk.pdev_path, out], {
      encoding: "utf8",
    });
    if (r.status !== 0) throw grubErrors.cannotMount();
    this.raw.set(drive, out);
    return out;
  }

  /** The byte offset of the filesystem GRUB's device names. */
  private offset(image: string, partition: number | undefined): number {
    if (partition === undefined) return 0;
    const mbr = Buffer.alloc(512);
    const fd = openSync(image, "r");
    try {
      readSync(fd, mbr, 0, 512, 0);
    } finally {
      closeSync(fd);
    }
    const entry = 446 + 16 * partition;
    if (partition > 3 || mbr.readUInt16LE(510) !== 0xaa55 || mbr[entry + 4] === 0) {
      throw grubErrors.noPartition();
    }
    return mbr.readUInt32LE(entry + 8) * 512;
  }

  /** A file's bytes, as GRUB's filesystem code reads them (decompression is pvgrub.ts's part). */
  read(p: GrubPath): Buffer {
    const image = this.rawImage(p.device.drive);
    const at = this.offset(image, p.device.partition);
    const r = spawnSync("debugfs", ["-R", `cat "${p.file}"`, `${image}?offset=${at}`], {
      maxBuffer: 1 << 30,
    });
    // debugfs exits 0 whatever happened; everything but its banner on stderr is a failure.
    const errors = r.stderr
      .toString()
      .split("\n")
      .filter((l) => l.trim() && !/^debugfs \d/.test(l));
    if (r.status !== 0 || errors.some((l) => /super-?block|Filesystem not open/i.test(l))) {
      throw grubErrors.cannotMount();
    }
    if (errors.length) throw grubErrors.notFound(p.file);
    return r.stdout;
  }

  close(): void {
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }
}

export type PvGrubOutcome =
  /** The kernel was loaded (and measured when the guest has a vTPM): it runs. */
  | "kernel"
  /** Nothing bootable was found: pv-grub waits at its prompt; the domain runs, no kernel does. */
  | "prompt"
  /** pv-grub's extends failed: it ASSERTed and the domain crashed. */
  | "crashed";

/** What pv-grub finds to boot: the kernel's and initrd's bytes and the command line. */
function loadDefaultEntry(
  config: DomainConfig,
  disks: BootDisks,
  log: (line: string) => void,
): { kernel: Buffer; cmdline: string; initrd?: Buffer } {
  const configFile = (config.cmdline ?? "").trim().split(/\s+/)[0] || PV_GRUB_DEFAULT_CONFIG;
  const menu = parseMenuLst(disks.read(parseGrubPath(configFile, undefined)).toString("latin1"));
  const entry = menu.entries[menu.defaultEntry];
  if (!entry?.kernel) throw new GrubError(15, `no kernel in entry ${menu.defaultEntry} of ${configFile}`);
  log(`  Booting '${entry.title}'`);
  log("");
  for (const line of entry.lines) log(line);
  const kernel = disks.read(parseGrubPath(entry.kernel.file, entry.root));
  const initrd = entry.initrd ? disks.read(parseGrubPath(entry.initrd, entry.root)) : undefined;
  return { kernel, cmdline: entry.kernel.args, initrd };
}

/**
 * Boots a pv-grub guest: finds its kernel, extends its vTPM (`vtpm`: the backend of its first
 * vtpm device, pv-grub's tpmfront) and says so on its console through `log`.
 */
export function pvGrubBoot(
  config: DomainConfig,
  vtpm: { name: string; swtpm?: SwtpmProcess } | undefined,
  log: (line: string) => void,
): PvGrubOutcome {
  const disks = new BootDisks(config.disks);
  let loaded: ReturnType<typeof loadDefaultEntry>;
  try {
    disks.ordered.forEach((d, i) => log(`vbd ${vbdNumber(d.vdev)} is hd${i}`));
    log("    GNU GRUB  version 0.97  (tvd-lab pv-grub stand-in)");
    loaded = loadDefaultEntry(config, disks, log);
  } catch (e) {
    if (!(e instanceof GrubError)) throw e;
    log(e.message);
    log("grubdom> ");
    return "prompt";
  } finally {
    disks.close();
  }
  if (!vtpm) return "kernel";

  const sha1 = pvGrubMeasurements(loaded, "sha1");
  const sha256 = pvGrubMeasurements(loaded, "sha256");
  const request: ExtendRequest = {
    server: vtpm.swtpm?.server ?? "",
    tpm2: vtpm.swtpm?.tpm2 ?? false,
    events: sha1.map((e, i) => ({
      pcr: e.pcr,
      what: e.what,
      sha1: e.digest.toString("hex"),
      sha256: sha256[i].digest.toString("hex"),
    })),
  };
  const r = spawnSync(process.execPath, [path.join(__dirname, "pcrExtend.js")], {
    input: JSON.stringify(request),
    encoding: "utf8",
    timeout: 15_000,
  });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim();
    log(`tvd-lab: pv-grub cannot extend PCRs 4 and 5 of vTPM ${vtpm.name}: ${why}`);
    // kexec.c checks every extend with this ASSERT; Mini-OS then crashes the domain.
    log("ASSERTION FAILED: rv == 0 && resp->status == 0 at kexec.c.");
    log("Do_exit called!");
    return "crashed";
  }
  for (const line of r.stdout.trim().split("\n")) log(`tvd-lab: pv-grub extended vTPM ${vtpm.name} ${line}`);
  return "kernel";
}
