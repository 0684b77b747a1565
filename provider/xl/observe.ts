/**
 * Reading a domain's config back into the values it was rendered from, so that `read` can
 * report drift on the property that changed (memoryMiB, uuid...) rather than "the file
 * differs". Pure; the inverse of renderVtpmManagerConfig, renderVtpmConfig and renderGuestConfig.
 */
import { parseXlConfig, XlConfigSyntaxError, type XlValue } from "./config";
import type { GuestVif } from "./domains";

export interface ObservedStubdom {
  readonly name?: string;
  readonly kernel?: string;
  readonly ramdisk?: string;
  readonly memoryMiB?: number;
  /** The first disk's file, from `file:<path>,hda,w`. */
  readonly image?: string;
  /** extra= split into its key=value options (order-free). */
  readonly options: Readonly<Record<string, string>>;
  /** The vtpm= device of a vTPM domain. */
  readonly vtpm?: { readonly backend?: string; readonly uuid?: string };
  readonly iomem?: readonly string[];
}

/** A config that cannot be read at all is reported as such, not thrown. */
export type Observed<T> = { ok: true; value: T } | { ok: false; problem: string };
export type ObservedConfig = Observed<ObservedStubdom>;

const str = (v: XlValue | undefined) =>
  typeof v === "string" || typeof v === "number" ? String(v) : undefined;
const list = (v: XlValue | undefined) =>
  Array.isArray(v) ? (v as string[]) : v === undefined ? undefined : [String(v)];
const count = (v: XlValue | undefined) => {
  const s = str(v);
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined;
};

function observe<T>(text: string, read: (settings: Map<string, XlValue>) => T): Observed<T> {
  let settings: Map<string, XlValue>;
  try {
    settings = parseXlConfig(text);
  } catch (e) {
    if (e instanceof XlConfigSyntaxError) return { ok: false, problem: e.message };
    throw e;
  }
  return { ok: true, value: read(settings) };
}

/** `key=value` items into their fields; a bare key maps to "". */
function fieldsOf(items: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    items.map((kv) =>
      kv.includes("=") ? [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] : [kv, ""],
    ),
  );
}

/**
 * A device spec's fields: vtpm=, vif= and disk= items are `key=value` pairs separated by commas,
 * except that a disk's target= takes the rest of the spec, commas included (xl-disk-configuration).
 */
function specFields(spec: string): Record<string, string> {
  const target = /(^|,)\s*target=/.exec(spec);
  const head = target ? spec.slice(0, target.index) : spec;
  const fields = fieldsOf(
    head
      .split(",")
      .map((kv) => kv.trim())
      .filter(Boolean),
  );
  return target ? { ...fields, target: spec.slice(target.index + target[0].length) } : fields;
}

export function observeStubdomConfig(text: string): ObservedConfig {
  return observe(text, (settings) => {
    const disk = list(settings.get("disk"))?.[0];
    const vtpmSpec = list(settings.get("vtpm"))?.[0];
    const vtpm = vtpmSpec !== undefined ? specFields(vtpmSpec) : undefined;
    return {
      name: str(settings.get("name")),
      kernel: str(settings.get("kernel")),
      ramdisk: str(settings.get("ramdisk")),
      memoryMiB: count(settings.get("memory")),
      image: disk?.startsWith("file:") ? disk.slice("file:".length).split(",")[0] : undefined,
      options: fieldsOf((str(settings.get("extra")) ?? "").split(/\s+/).filter(Boolean)),
      vtpm: vtpm && { backend: vtpm.backend, uuid: vtpm.uuid },
      iomem: list(settings.get("iomem")),
    };
  });
}

/** One disk of a guest, from its modern spec; format and access as xl defaults them when unset. */
export interface ObservedDisk {
  readonly target?: string;
  readonly format: string;
  readonly vdev?: string;
  readonly access: string;
}

/** A guest's config as renderGuestConfig writes it, read back. */
export interface ObservedGuest {
  readonly name?: string;
  readonly memoryMiB?: number;
  readonly vcpus?: number;
  readonly kernel?: string;
  readonly ramdisk?: string;
  readonly cmdline?: string;
  /** pv-grub's arguments, e.g. its menu.lst. */
  readonly extra?: string;
  /** In order: the first is the guest's overlay, xvda. */
  readonly disks: readonly ObservedDisk[];
  /** The bridge as xl defaults it when unset (xenbr0); mac only when the spec sets one. */
  readonly vifs: readonly GuestVif[];
  /** The backend of the guest's vtpm= device: its vtpm-stubdom domain. */
  readonly vtpm?: string;
}

export function observeGuestConfig(text: string): Observed<ObservedGuest> {
  return observe(text, (settings) => ({
    name: str(settings.get("name")),
    memoryMiB: count(settings.get("memory")),
    vcpus: count(settings.get("vcpus")),
    kernel: str(settings.get("kernel")),
    ramdisk: str(settings.get("ramdisk")),
    cmdline: str(settings.get("cmdline")),
    extra: str(settings.get("extra")),
    disks: (list(settings.get("disk")) ?? []).map((spec) => {
      const { target, format = "raw", vdev, access = "rw" } = specFields(spec);
      return { target, format, vdev, access };
    }),
    vifs: (list(settings.get("vif")) ?? []).map((spec) => {
      const { bridge = "xenbr0", mac, ip, vifname } = specFields(spec);
      return {
        bridge,
        ...(mac === undefined ? {} : { mac }),
        ...(ip === undefined ? {} : { ip }),
        ...(vifname === undefined ? {} : { vifname }),
      };
    }),
    vtpm: list(settings.get("vtpm"))?.map(specFields)[0]?.backend,
  }));
}
