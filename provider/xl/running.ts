/**
 * Whether a running domain differs from its declaration. Pure. The one drift policy of every
 * domain kind rests on it: a config edited while the running domain still matches is rewritten
 * in place, and a domain restarts only when what it runs differs from what is declared. What it
 * runs is libxl's own record (`xl list -l`), never the config file, which anyone may edit.
 */
import { parseXlConfig, type XlValue } from "./config";

interface RunningConfig {
  b_info?: {
    target_memkb?: number;
    max_vcpus?: number;
    kernel?: string;
    ramdisk?: string;
    cmdline?: string;
  };
  disks?: Array<{ pdev_path?: string }>;
  /** libxl_device_nic: `ifname` is the spec's vifname=. */
  nics?: Array<{ bridge?: string; mac?: string; ip?: string; ifname?: string }>;
  vtpms?: Array<{ backend_domname?: string; uuid?: string }>;
}

const list = (v: XlValue | undefined): readonly string[] => (Array.isArray(v) ? v : []);
const str = (v: XlValue | undefined): string | undefined => (typeof v === "string" ? v : undefined);

/** The backing path of a disk spec: the legacy `file:<path>,hda,w` form or the modern `target=`. */
export function diskTarget(spec: string): string {
  const modern = /(?:^|,)\s*target=(.*)$/.exec(spec);
  if (modern) return modern[1];
  const first = spec.split(",")[0].trim();
  return first.replace(/^(file|phy|tap:aio|tap:qcow2|aio):/, "");
}

function specFields(spec: string): Record<string, string> {
  return Object.fromEntries(
    spec
      .split(",")
      .map((kv) => kv.trim().split("="))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k, v]),
  );
}

/**
 * The settings in which the running domain (`config` from `xl list -l`) differs from the config
 * `desired` (xl.cfg text as it would be written). Settings libxl does not report are not compared.
 */
export function runningDiffers(config: Record<string, unknown> | undefined, desired: string): string[] {
  if (!config) return [];
  const c = config as RunningConfig;
  const want = parseXlConfig(desired);
  const b = c.b_info ?? {};
  const out: string[] = [];
  const memory = want.get("memory");
  if (typeof memory === "number" && b.target_memkb !== undefined && b.target_memkb !== memory * 1024)
    out.push("memory");
  const vcpus = want.get("vcpus");
  if (typeof vcpus === "number" && b.max_vcpus !== undefined && b.max_vcpus !== vcpus) out.push("vcpus");
  if (b.kernel !== undefined && b.kernel !== str(want.get("kernel"))) out.push("kernel");
  if ((b.ramdisk ?? undefined) !== str(want.get("ramdisk"))) out.push("ramdisk");
  const cmdline = str(want.get("cmdline")) ?? str(want.get("extra"));
  if ((b.cmdline || undefined) !== (cmdline || undefined)) out.push("cmdline");
  const disks = list(want.get("disk")).map(diskTarget);
  const running = (c.disks ?? []).map((d) => d.pdev_path ?? "");
  if (JSON.stringify(disks) !== JSON.stringify(running)) out.push("disk");
  const vtpms = list(want.get("vtpm")).map(specFields);
  const runningVtpms = c.vtpms ?? [];
  if (
    vtpms.length !== runningVtpms.length ||
    vtpms.some(
      (v, i) =>
        v.backend !== runningVtpms[i].backend_domname ||
        (v.uuid !== undefined && v.uuid.toLowerCase() !== runningVtpms[i].uuid?.toLowerCase()),
    )
  )
    out.push("vtpm");
  const vifs = list(want.get("vif")).map(specFields);
  const nics = c.nics ?? [];
  if (
    vifs.length !== nics.length ||
    vifs.some(
      (v, i) =>
        (v.bridge !== undefined && v.bridge !== nics[i].bridge) ||
        (v.mac !== undefined && v.mac !== nics[i].mac) ||
        (v.ip !== undefined && v.ip !== nics[i].ip) ||
        (v.vifname !== undefined && v.vifname !== nics[i].ifname),
    )
  )
    out.push("vif");
  return out;
}
