/**
 * Reading a vTPM stub domain's config back into the values it was rendered from, so that
 * `read` can report drift on the property that changed (memoryMiB, uuid...) rather than "the
 * file differs". Pure; the inverse of renderVtpmManagerConfig and renderVtpmConfig.
 */
import { parseXlConfig, XlConfigSyntaxError, type XlValue } from "./config";

export interface ObservedStubdom {
  readonly name?: string;
  readonly kernel?: string;
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
export type ObservedConfig = { ok: true; value: ObservedStubdom } | { ok: false; problem: string };

const str = (v: XlValue | undefined) =>
  typeof v === "string" || typeof v === "number" ? String(v) : undefined;
const list = (v: XlValue | undefined) =>
  Array.isArray(v) ? (v as string[]) : v === undefined ? undefined : [String(v)];

export function observeStubdomConfig(text: string): ObservedConfig {
  let settings: Map<string, XlValue>;
  try {
    settings = parseXlConfig(text);
  } catch (e) {
    if (e instanceof XlConfigSyntaxError) return { ok: false, problem: e.message };
    throw e;
  }
  const memory = str(settings.get("memory"));
  const disk = list(settings.get("disk"))?.[0];
  const image = disk?.startsWith("file:") ? disk.slice("file:".length).split(",")[0] : undefined;
  const options: Record<string, string> = {};
  for (const word of (str(settings.get("extra")) ?? "").split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf("=");
    options[eq < 0 ? word : word.slice(0, eq)] = eq < 0 ? "" : word.slice(eq + 1);
  }
  const vtpmSpec = list(settings.get("vtpm"))?.[0];
  let vtpm: ObservedStubdom["vtpm"];
  if (vtpmSpec !== undefined) {
    const fields = Object.fromEntries(
      vtpmSpec.split(",").map((kv) => [kv.split("=")[0], kv.slice(kv.indexOf("=") + 1)]),
    );
    vtpm = { backend: fields.backend, uuid: fields.uuid };
  }
  return {
    ok: true,
    value: {
      name: str(settings.get("name")),
      kernel: str(settings.get("kernel")),
      memoryMiB: memory !== undefined && /^\d+$/.test(memory) ? Number(memory) : undefined,
      image,
      options,
      vtpm,
      iomem: list(settings.get("iomem")),
    },
  };
}
