/**
 * The work bench/peers.ts has each tool do, and the checks that it was done and undone: per lab
 * host a vTPM manager; per guest a vTPM (raw image, xl config, domain) and a guest (qcow2 overlay
 * on a base image, xl config, domain) with the vTPM attached. Guest i lives on host i mod H.
 *
 * Paths and names are pulumi-tvd's defaults, so every tool makes the same files. The checks read
 * the hosts from inside their namespaces (lab/host.ts inHost), never over SSH, so they add nothing
 * to what a tool's run is measured at.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { BASE_IMAGE, inHost, SEEDED_IMAGES, type LabHostRecord } from "../../lab/host";

export const MANAGER = "vtpmmgr";
export const KERNEL = "/usr/lib/xen/boot/vmlinuz";
export const GUEST_MEMORY_MIB = 64;
/** The base image the lab seeds on every host. */
export const LAB_BASE_IMAGE = BASE_IMAGE;

/** One host's share of the work. */
export interface Placement {
  readonly host: LabHostRecord;
  readonly guests: string[];
}

export function place(hosts: readonly LabHostRecord[], guests: number): Placement[] {
  if (!Number.isInteger(guests) || guests < 1)
    throw new Error(`guests must be a whole number >= 1, got ${guests}`);
  return hosts.map((host, h) => ({
    host,
    guests: Array.from({ length: guests }, (_, i) => i)
      .filter((i) => i % hosts.length === h)
      .map((i) => `g${i}`),
  }));
}

export const vtpmOf = (guest: string) => `${guest}-vtpm`;
export const configOf = (domain: string) => `/etc/xen/${domain}.cfg`;
export const imageOf = (stubdom: string) => `/var/lib/xen/vtpm/${stubdom}.img`;
export const overlayOf = (guest: string) => `/var/lib/xen/images/${guest}.qcow2`;

/** A vTPM's UUID for the tools that write configs themselves: fixed per name, so reruns change nothing. */
export function uuidOf(vtpm: string): string {
  const h = createHash("sha256").update(vtpm).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** xl configs as the Xen docs write them, for Ansible and the ssh script (pulumi-tvd renders its own). */
export const xlConfig = {
  manager: () =>
    `name="${MANAGER}"\nkernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"\nmemory=16\n` +
    `disk=["file:${imageOf(MANAGER)},hda,w"]\niomem=["fed40,5"]\n`,
  vtpm: (guest: string) =>
    `name="${vtpmOf(guest)}"\nkernel="/usr/lib/xen/boot/vtpm-stubdom.gz"\nmemory=8\n` +
    `disk=["file:${imageOf(vtpmOf(guest))},hda,w"]\nvtpm=["backend=${MANAGER},uuid=${uuidOf(vtpmOf(guest))}"]\n`,
  guest: (guest: string) =>
    `name="${guest}"\nkernel="${KERNEL}"\nmemory=${GUEST_MEMORY_MIB}\n` +
    `disk=["format=qcow2, vdev=xvda, access=rw, target=${overlayOf(guest)}"]\nvtpm=["backend=${vtpmOf(guest)}"]\n`,
};

/** Image sizes (MiB): pulumi-tvd's defaults, which the other tools' dd commands use too. */
export const MANAGER_IMAGE_MIB = 16;
export const VTPM_IMAGE_MIB = 8;

async function inHostChecked(host: LabHostRecord, script: string, ...args: string[]): Promise<string> {
  const r = await inHost(host, ["sh", "-c", script, "sh", ...args]);
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The domains running on a host, Domain-0 left out, sorted. */
export async function domainsOn(host: LabHostRecord): Promise<string[]> {
  const out = await inHostChecked(host, "xl list | awk 'NR > 2 { print $1 }'");
  return out.split("\n").filter(Boolean).sort();
}

/** Every file under /etc/xen and /var/lib/xen but the base images, the lab's own templates and ext4's lost+found, sorted. */
export async function filesOn(host: LabHostRecord, bases: readonly string[]): Promise<string[]> {
  const out = await inHostChecked(
    host,
    "find /etc/xen /var/lib/xen -path /var/lib/xen/lost+found -prune -o -type f -print",
  );
  return out
    .split("\n")
    .filter((f) => f && !bases.includes(f) && !SEEDED_IMAGES.includes(f))
    .sort();
}

/** What a host should hold once its share is created: the domains and the files, sorted. */
export function expectedOn(p: Placement): { domains: string[]; files: string[] } {
  const stubdoms = [MANAGER, ...p.guests.map(vtpmOf)];
  return {
    domains: [...stubdoms, ...p.guests].sort(),
    files: [
      ...stubdoms.flatMap((d) => [configOf(d), imageOf(d)]),
      ...p.guests.flatMap((g) => [configOf(g), overlayOf(g)]),
    ].sort(),
  };
}

function difference(got: readonly string[], want: readonly string[]): string {
  const missing = want.filter((x) => !got.includes(x));
  const extra = got.filter((x) => !want.includes(x));
  return (
    `missing ${JSON.stringify(missing.slice(0, 5))}${missing.length > 5 ? ` (+${missing.length - 5})` : ""}, ` +
    `extra ${JSON.stringify(extra.slice(0, 5))}${extra.length > 5 ? ` (+${extra.length - 5})` : ""}`
  );
}

/**
 * Throws unless every host holds exactly its share: its domains running and its files in place.
 * `extraFiles` are files a tool keeps for itself (pulumi-tvd's ownership records), matched by prefix.
 */
export async function assertCreated(
  way: string,
  placements: readonly Placement[],
  bases: readonly string[],
  ownPrefix?: string,
): Promise<void> {
  for (const p of placements) {
    const want = expectedOn(p);
    const domains = await domainsOn(p.host);
    if (domains.join() !== want.domains.join())
      throw new Error(
        `${way}: ${p.host.name} runs other domains than it should: ${difference(domains, want.domains)}`,
      );
    const files = (await filesOn(p.host, bases)).filter((f) => !ownPrefix || !f.startsWith(ownPrefix));
    if (files.join() !== want.files.join())
      throw new Error(
        `${way}: ${p.host.name} holds other files than it should: ${difference(files, want.files)}`,
      );
  }
}

/** Throws unless no host runs a domain or holds a file but its base images. */
export async function assertClean(
  way: string,
  hosts: readonly LabHostRecord[],
  bases: readonly string[],
): Promise<void> {
  for (const host of hosts) {
    const domains = await domainsOn(host);
    const files = await filesOn(host, bases);
    if (domains.length || files.length)
      throw new Error(
        `${way} left ${host.name} unclean: domains ${JSON.stringify(domains.slice(0, 5))}, files ${JSON.stringify(files.slice(0, 5))}` +
          ` (${domains.length} domains, ${files.length} files)`,
      );
  }
}

/** Puts sparse base images of the given sizes (GiB) on every host, as real ext4 filesystems; their paths. */
export async function seedBaseImages(
  hosts: readonly LabHostRecord[],
  sizesGiB: readonly number[],
): Promise<Record<number, string>> {
  const paths: Record<number, string> = {};
  for (const gib of sizesGiB) paths[gib] = `/var/lib/xen/images/base-${gib}g.raw`;
  const script =
    'for a in "$@"; do p=${a#*=}; test -e "$p" || { truncate -s "${a%%=*}G" "$p.tmp" && mkfs.ext4 -q -F -L base "$p.tmp" && mv "$p.tmp" "$p"; }; done';
  await Promise.all(
    hosts.map((h) => inHostChecked(h, script, ...sizesGiB.map((gib) => `${gib}=${paths[gib]}`))),
  );
  return paths;
}

/** known_hosts lines pinning every host's own key, as an ops team's inventory would. */
export function knownHosts(hosts: readonly LabHostRecord[]): string {
  return hosts
    .map(
      (h) =>
        `[${h.host}]:${h.port} ${readFileSync(path.join(h.dir, "ssh_host_ed25519_key.pub"), "utf8").trim()}\n`,
    )
    .join("");
}
