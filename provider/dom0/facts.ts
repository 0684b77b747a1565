/** What a dom0 offers; later resources gate on these (xl present, swtpm version, free space). */
export interface HostFactsReport {
  /** `uname -r` */
  readonly kernel: string;
  /** Where `xl` is, or null when the host has no Xen toolstack. */
  readonly xlPath: string | null;
  /** xen_version from `xl info`, or null without a running hypervisor. */
  readonly xenVersion: string | null;
  /** Version from `qemu-img --version`, or null. */
  readonly qemuImgVersion: string | null;
  /** Version from `swtpm --version`, or null. */
  readonly swtpmVersion: string | null;
  /** Space available to root under the Xen data directory, in MiB; null when it does not exist. */
  readonly xenDataFreeMiB: number | null;
}

/**
 * One round trip gathers every fact. The script is a constant: the only user value, the data
 * directory, arrives as a positional argument ($1) through the quoting transport.
 */
const PROBE_SCRIPT = `
dir=$1
printf 'kernel\\t%s\\n' "$(uname -r)"
if command -v xl >/dev/null 2>&1; then
  printf 'xl\\t%s\\n' "$(command -v xl)"
  printf 'xen\\t%s\\n' "$(xl info 2>/dev/null | sed -n 's/^xen_version[[:space:]]*:[[:space:]]*//p')"
fi
if command -v qemu-img >/dev/null 2>&1; then
  printf 'qemu-img\\t%s\\n' "$(qemu-img --version 2>/dev/null | head -n 1)"
fi
if command -v swtpm >/dev/null 2>&1; then
  printf 'swtpm\\t%s\\n' "$(swtpm --version 2>/dev/null | head -n 1)"
fi
if [ -d "$dir" ]; then
  printf 'free-kib\\t%s\\n' "$(df -Pk -- "$dir" | awk 'NR == 2 { print $4 }')"
fi
`;

export function probeFactsArgv(xenDataDir: string): string[] {
  return ["sh", "-c", PROBE_SCRIPT, "pulumi-tvd-probe", xenDataDir];
}

function firstVersion(line: string | undefined): string | null {
  const m = line?.match(/\d+\.\d+(?:\.\d+)?/);
  return m ? m[0] : null;
}

/** Parses the probe's tab-separated lines; unknown lines are ignored so hosts may add more. */
export function parseFacts(stdout: string): HostFactsReport {
  const lines = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab > 0) lines.set(line.slice(0, tab), line.slice(tab + 1).trim());
  }
  const kernel = lines.get("kernel");
  if (!kernel)
    throw new Error(`host facts probe printed no kernel line; output was: ${JSON.stringify(stdout)}`);
  const freeKiB = Number(lines.get("free-kib"));
  return {
    kernel,
    xlPath: lines.get("xl") || null,
    xenVersion: lines.get("xen") || null,
    qemuImgVersion: firstVersion(lines.get("qemu-img")),
    swtpmVersion: firstVersion(lines.get("swtpm")),
    xenDataFreeMiB: lines.has("free-kib") && Number.isFinite(freeKiB) ? Math.floor(freeKiB / 1024) : null,
  };
}
