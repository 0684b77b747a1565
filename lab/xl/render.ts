/** xl's output formats, as measured on Xen 4.17.7 (../shared/xl-reference.md). Pure. */
import type { DomainRecord, HostSettings } from "./state";

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string | number, n: number) => String(s).padStart(n);

export function usedMemoryMiB(settings: HostSettings, domains: readonly DomainRecord[]): number {
  return settings.dom0MemoryMiB + domains.reduce((sum, d) => sum + d.config.memoryMiB, 0);
}

/** Stub domains and idle guests block in the hypervisor; none here runs a busy loop. */
const BLOCKED = "-b----";

/** `xl list` */
export function renderList(settings: HostSettings, domains: readonly DomainRecord[], now: number): string {
  const rows = [`Name                                        ID   Mem VCPUs\tState\tTime(s)`];
  const row = (name: string, id: number, mem: number, vcpus: number, state: string, time: number) =>
    `${pad(name, 40)} ${lpad(id, 5)} ${lpad(mem, 5)} ${lpad(vcpus, 5)}     ${state}  ${lpad(time.toFixed(1), 8)}`;
  rows.push(row("Domain-0", 0, settings.dom0MemoryMiB, settings.nrCpus, "r-----", (now % 1e7) / 1000));
  for (const d of domains) {
    rows.push(
      row(d.name, d.domid, d.config.memoryMiB, d.config.vcpus, BLOCKED, (now - d.createdAt) / 100000),
    );
  }
  return rows.join("\n") + "\n";
}

/** yajl prints an empty map as "{", a blank line, "}" at the map's indentation. */
function yajlStyle(json: string): string {
  return json.replace(/^(\s*)(.*)\{\}(,?)$/gm, (_, indent: string, before: string, comma: string) => {
    return `${indent}${before}{\n\n${indent}}${comma}`;
  });
}

/** One domain's libxl_domain_config as `xl list -l` prints it (emission rules of libxl's JSON). */
export function domainJson(d: DomainRecord): Record<string, unknown> {
  const c = d.config;
  const bInfo: Record<string, unknown> = {
    max_vcpus: c.vcpus,
    avail_vcpus: Array.from({ length: c.vcpus }, (_, i) => i),
    max_memkb: c.maxmemMiB * 1024,
    target_memkb: c.memoryMiB * 1024,
    video_memkb: 0,
    sched_params: { sched: "credit2", weight: 256, cap: 0 },
    claim_mode: "True",
  };
  if (c.kernel) bInfo.kernel = c.kernel;
  if (c.cmdline) bInfo.cmdline = c.cmdline;
  if (c.ramdisk) bInfo.ramdisk = c.ramdisk;
  if (c.bootloader) bInfo.bootloader = c.bootloader;
  if (c.iomem.length) {
    bInfo.iomem = c.iomem.map((spec) => {
      const [start, n] = spec.split(",");
      return { start: parseInt(start, 16), number: Number(n ?? 1) };
    });
  }
  bInfo["type.pv"] = {};
  bInfo.arch_arm = {};
  bInfo.arch_x86 = { msr_relaxed: "False" };
  const config: Record<string, unknown> = {
    c_info: { type: "pv", name: d.name, domid: 4294967295, uuid: c.uuid, run_hotplug_scripts: "True" },
    b_info: bInfo,
  };
  if (c.disks.length) {
    config.disks = c.disks.map((disk) => ({
      pdev_path: disk.pdev_path,
      vdev: disk.vdev,
      format: disk.format,
      ...(disk.readwrite ? { readwrite: disk.readwrite } : {}),
      ...(disk.is_cdrom ? { is_cdrom: disk.is_cdrom } : {}),
      colo_restore_enable: "False",
    }));
  }
  if (c.nics.length) {
    // libxl_device_nic calls the spec's vifname= `ifname`.
    config.nics = c.nics.map(({ vifname, ...n }, devid) => ({
      devid,
      ...n,
      ...(vifname === undefined ? {} : { ifname: vifname }),
    }));
  }
  if (d.vtpms.length) {
    config.vtpms = d.vtpms.map((v) => ({ backend_domname: v.backendName, devid: v.devid, uuid: v.uuid }));
  }
  if (c.onPoweroff !== "destroy") config.on_poweroff = c.onPoweroff;
  config.on_reboot = c.onReboot;
  if (c.onCrash !== "destroy") config.on_crash = c.onCrash;
  config.on_soft_reset = "soft_reset";
  return { domid: d.domid, config };
}

/**
 * Domain-0 as real `xl list -l` prints it with no domain named (measured on Xen 4.17.5): only
 * c_info and b_info, target one KiB under max.
 */
export function dom0Json(settings: HostSettings): Record<string, unknown> {
  const kb = settings.dom0MemoryMiB * 1024;
  return {
    domid: 0,
    config: {
      c_info: { type: "pv", name: "Domain-0" },
      b_info: {
        max_memkb: kb,
        target_memkb: kb - 1,
        sched_params: { sched: "credit2", weight: 256, cap: 0 },
        "type.pv": {},
        arch_arm: {},
        arch_x86: {},
      },
    },
  };
}

/** `xl list -l [dom...]`; with no domain named, Domain-0 comes first, as in real xl. */
export function renderListLong(domains: readonly DomainRecord[], dom0?: HostSettings): string {
  const all = [...(dom0 ? [dom0Json(dom0)] : []), ...domains.map(domainJson)];
  return yajlStyle(JSON.stringify(all, null, 4)) + "\n";
}

export interface VtpmRow {
  readonly devid: number;
  readonly backendDomid: number;
  readonly uuid: string;
  readonly state: number;
  readonly frontendDomid: number;
}

/** `xl vtpm-list <dom>` */
export function renderVtpmList(rows: readonly VtpmRow[]): string {
  const header = `${pad("Idx", 3)} ${pad("BE", 2)} ${pad("Uuid", 36)} ${pad("handle", 6)} ${pad("state", 5)} ${pad("evt-ch", 6)} ${pad("ring-ref", 5)} ${pad("BE-path", 10)}`;
  const lines = rows.map(
    (r) =>
      `${pad(String(r.devid), 3)} ${pad(String(r.backendDomid), 2)} ${r.uuid} ${lpad(r.devid, 6)} ${lpad(r.state, 5)} ${lpad(-1, 6)} ${lpad(-1, 8)} ${pad(`/local/domain/${r.backendDomid}/backend/vtpm/${r.frontendDomid}/${r.devid}`, 30)}`,
  );
  return [header, ...lines].join("\n") + "\n";
}

/** `xl info` */
export function renderInfo(
  settings: HostSettings,
  domains: readonly DomainRecord[],
  release: string,
): string {
  const free = settings.totalMemoryMiB - usedMemoryMiB(settings, domains);
  const fields: Array<[string, string | number]> = [
    ["host", settings.name],
    ["release", release],
    ["version", "#1 SMP PREEMPT_DYNAMIC Debian (tvd-lab)"],
    ["machine", "x86_64"],
    ["nr_cpus", settings.nrCpus],
    ["max_cpu_id", settings.nrCpus - 1],
    ["nr_nodes", 1],
    ["cores_per_socket", settings.nrCpus],
    ["threads_per_core", 1],
    ["cpu_mhz", "2400.000"],
    ["hw_caps", "178bfbff:f6d8320b:2c100800:000001f1:0000000f:009c07ab:00000000:00000100"],
    ["virt_caps", "pv"],
    ["total_memory", settings.totalMemoryMiB],
    ["free_memory", free],
    ["sharing_freed_memory", 0],
    ["sharing_used_memory", 0],
    ["outstanding_claims", 0],
    ["free_cpus", 0],
    ["xen_major", 4],
    ["xen_minor", 17],
    ["xen_extra", ".7"],
    ["xen_version", "4.17.7"],
    ["xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"],
    ["xen_scheduler", "credit2"],
    ["xen_pagesize", 4096],
    ["platform_params", "virt_start=0xffff800000000000"],
    ["xen_changeset", "tvd-lab emulator"],
    ["xen_commandline", `placeholder dom0_mem=${settings.dom0MemoryMiB}M,max:${settings.dom0MemoryMiB}M`],
    ["cc_compiler", "gcc (Debian 12.2.0-14+deb12u1) 12.2.0"],
    ["cc_compile_by", "pkg-xen-devel"],
    ["cc_compile_domain", "lists.alioth.debian.org"],
    ["cc_compile_date", "Tue Jun 17 00:00:00 UTC 2025"],
    ["build_id", "0000000000000000000000000000000000000000"],
    ["xend_config_format", 4],
  ];
  return fields.map(([k, v]) => `${pad(k, 23)}: ${v}`).join("\n") + "\n";
}
