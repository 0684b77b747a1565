/** Reads a domain config the way `xl create` does: Xen's libxlutil parses, xl's rules apply. */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { type DiskConfig, type DomainConfig, type HostSettings } from "./state";
import { domainKind, parseVifSpec, parseVtpmSpec, type VtpmSpec, XlError } from "./specs";

const KEYS = [
  "name",
  "memory",
  "maxmem",
  "vcpus",
  "kernel",
  "ramdisk",
  "cmdline",
  "extra",
  "root",
  "bootloader",
  "disk",
  "vif",
  "vtpm",
  "iomem",
  "type",
  "uuid",
  "on_poweroff",
  "on_reboot",
  "on_crash",
] as const;

type Raw = Partial<Record<(typeof KEYS)[number], string | string[] | null>>;

function helper(settings: HostSettings, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(settings.xlcfg, args, { encoding: "utf8" });
  if (r.error)
    throw new XlError([`lab: cannot run the libxlutil helper ${settings.xlcfg}: ${r.error.message}`], 1);
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function str(raw: Raw, key: keyof Raw): string | undefined {
  const v = raw[key];
  return typeof v === "string" ? v : undefined;
}

function list(raw: Raw, key: keyof Raw): string[] {
  const v = raw[key];
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function long(raw: Raw, key: keyof Raw): number | undefined {
  const v = str(raw, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new XlError([`Failed to parse config: ${key}: invalid number "${v}"`], 1);
  return n;
}

/** Parses one disk spec with libxlutil's own parser (xlu_disk_parse). */
export function parseDiskSpec(settings: HostSettings, spec: string): DiskConfig {
  const r = helper(settings, ["disk", spec]);
  if (r.code !== 0)
    throw new XlError([...r.stderr.trimEnd().split("\n"), "Failed to parse config: Invalid argument"], 1);
  return JSON.parse(r.stdout) as DiskConfig;
}

/** A vtpm-stubdom's `extra="... tpm2=1"` asks for TPM 2.0 (lab extension; Xen's vTPM is 1.2). */
function tpmVersionFromExtra(extra: string | undefined): boolean | undefined {
  const m = /(?:^|\s)tpm2=([01])(?:\s|$)/.exec(extra ?? "");
  return m ? m[1] === "1" : undefined;
}

export interface ParsedConfig {
  readonly config: DomainConfig;
  readonly vtpms: VtpmSpec[];
}

/** Everything `xl create <file>` checks before it asks the hypervisor for a domain. */
export function readDomainConfig(settings: HostSettings, file: string): ParsedConfig {
  if (!existsSync(file))
    throw new XlError([`Failed to read config file: ${file}: No such file or directory`], 3);
  const r = helper(settings, ["config", file, ...KEYS]);
  if (r.code === 3) throw new XlError([`Failed to read config file: ${file}: No such file or directory`], 3);
  if (r.code !== 0)
    throw new XlError([...r.stderr.trimEnd().split("\n"), "Failed to parse config: Invalid argument"], 1);
  const raw = JSON.parse(r.stdout) as Raw;

  const name = str(raw, "name");
  if (!name) throw new XlError(["Domain name must be specified."], 1);
  const memoryMiB = long(raw, "memory") ?? 128;
  const extra = str(raw, "extra");
  const root = str(raw, "root");
  const cmdline =
    str(raw, "cmdline") ??
    ([root ? `root=${root}` : undefined, extra].filter(Boolean).join(" ") || undefined);
  const kernel = str(raw, "kernel");
  const vtpms = list(raw, "vtpm").map(parseVtpmSpec);
  const disks = list(raw, "disk").map((spec) => parseDiskSpec(settings, spec));
  const nics = list(raw, "vif").map(parseVifSpec);
  const uuid = str(raw, "uuid");
  return {
    vtpms,
    config: {
      name,
      kind: domainKind(kernel),
      memoryMiB,
      maxmemMiB: long(raw, "maxmem") ?? memoryMiB,
      vcpus: long(raw, "vcpus") ?? 1,
      uuid: uuid ?? randomUUID(),
      kernel,
      ramdisk: str(raw, "ramdisk"),
      cmdline,
      bootloader: str(raw, "bootloader"),
      disks,
      nics,
      iomem: list(raw, "iomem"),
      onPoweroff: str(raw, "on_poweroff") ?? "destroy",
      onReboot: str(raw, "on_reboot") ?? "restart",
      onCrash: str(raw, "on_crash") ?? "destroy",
      tpm2: tpmVersionFromExtra(extra) ?? settings.tpm2,
    },
  };
}
