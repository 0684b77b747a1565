/**
 * Where each member of a Trusted Virtual Domain goes and what it is called, decided from the
 * construct's props alone. Pure, so that it is checked in the constructor (CDK style) before any
 * resource exists, and so that adding or removing one member never moves another: names, hosts,
 * addresses and MACs depend only on the member itself.
 */
import { createHash } from "node:crypto";

/** A member given explicitly, with what it overrides of the TVD's guest template. */
export interface TvdMemberSpec {
  /** The member's name inside the TVD; its domain is `<tvd>-<name>`. */
  readonly name: string;
  /**
   * The XenHost (its construct name) the member runs on.
   * @default - one of the TVD's hosts, chosen from the member's name (so it never moves when others come and go)
   */
  readonly host?: string;
  /** @default - the template's memoryMiB */
  readonly memoryMiB?: number;
  /** @default - the template's vcpus */
  readonly vcpus?: number;
  /** Its address in the TVD's subnet. @default - derived from the member's name */
  readonly ip?: string;
}

export interface PlanHost {
  readonly name: string;
  /** Memory this host offers to guests, MiB. */
  readonly guestMemoryMiB: number;
  /** Memory other TVDs on this host already took, MiB. */
  readonly reservedMiB: number;
}

export interface PlanInput {
  readonly tvd: string;
  readonly hosts: readonly PlanHost[];
  readonly members: number | readonly TvdMemberSpec[];
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** An IPv4 /24 ... /16 network, e.g. "10.50.0.0/24". */
  readonly subnet: string;
  /** Memory of each member's vTPM domain, counted against its host. */
  readonly vtpmMemoryMiB: number;
}

export interface MemberPlan {
  /** The member's name inside the TVD ("01", or the name given). */
  readonly name: string;
  /** Its xl domain name, unique on every host: `<tvd>-<name>`. */
  readonly domain: string;
  readonly vtpmDomain: string;
  readonly host: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Its address with the subnet's prefix, e.g. "10.50.0.11/24". */
  readonly ip: string;
  /** A stable locally administered MAC in Xen's 00:16:3e range. */
  readonly mac: string;
}

/** A TVD's props that cannot work; the message says what was received and the fix. */
export class TvdPlanError extends Error {
  constructor(tvd: string, problems: readonly string[]) {
    super(`trusted virtual domain ${JSON.stringify(tvd)}: ${problems.join("; ")}`);
    this.name = "TvdPlanError";
  }
}

/** A host name label of its own (`<tvd>-<name>`): no '-' at its end either. */
const MEMBER_NAME = /^[a-z0-9]([a-z0-9-]{0,29}[a-z0-9])?$/;
/** Host numbers below this are left to gateways and services of the TVD's subnet. */
const FIRST_MEMBER_HOST = 10;

function parseSubnet(subnet: string): { base: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix < 16 || prefix > 24) return undefined;
  const base = octets.reduce((a, o) => a * 256 + o, 0);
  const mask = 2 ** (32 - prefix) - 1;
  return base % (mask + 1) === 0 ? { base, prefix } : undefined;
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export function macFor(tvd: string, member: string): string {
  const h = digest(`mac:${tvd}:${member}`);
  return ["00", "16", "3e", ...[h[0] & 0x7f, h[1], h[2]].map((b) => b.toString(16).padStart(2, "0"))].join(
    ":",
  );
}

/**
 * A member's port: the name of its vif's backend interface in dom0 (a Linux interface name, at
 * most 15 characters), the same at every start. `tvp-<domain>` when that fits, else `tvp` and 12
 * hex digits of the domain's SHA-256 (no '-' after tvp, so the two forms never meet).
 */
export function portNameFor(domain: string): string {
  const readable = `tvp-${domain}`;
  return readable.length <= 15 ? readable : `tvp${digest(`port:${domain}`).toString("hex").slice(0, 12)}`;
}

/** A VXLAN id for the TVD, stable for its name, away from the small ids people pick by hand. */
export function vniFor(tvd: string): number {
  return 4096 + (digest(`vni:${tvd}`).readUInt32BE(0) % (16_777_215 - 4096));
}

/**
 * Decides every member of the TVD. Throws a TvdPlanError listing every problem at once: unknown
 * hosts, duplicate names, addresses outside the subnet or taken twice, and hosts without the
 * memory their members need.
 */
export function planMembers(p: PlanInput): MemberPlan[] {
  const problems: string[] = [];
  const net = parseSubnet(p.subnet);
  if (!net) {
    problems.push(
      `network.subnet ${JSON.stringify(p.subnet)} is not an IPv4 network from /16 to /24 such as "10.50.0.0/24"; fix network.subnet`,
    );
  }
  if (p.hosts.length === 0) problems.push("hosts is empty; give the XenHosts the tvd spans");
  if (problems.length) throw new TvdPlanError(p.tvd, problems);
  const { base, prefix } = net!;
  const size = 2 ** (32 - prefix);
  const hostNames = p.hosts.map((h) => h.name);

  const specs: TvdMemberSpec[] =
    typeof p.members === "number"
      ? Array.from({ length: p.members }, (_, i) => ({
          name: String(i + 1).padStart(2, "0"),
          host: hostNames[i % hostNames.length],
          ip: formatIp(base + FIRST_MEMBER_HOST + i),
        }))
      : [...p.members];
  if (typeof p.members === "number" && (!Number.isInteger(p.members) || p.members < 0)) {
    problems.push(`members is ${p.members}; give a whole number of members, or a list of members`);
  }

  const seenNames = new Set<string>();
  const ipOwner = new Map<string, string>();
  const plans: MemberPlan[] = [];
  for (const spec of specs) {
    if (!MEMBER_NAME.test(spec.name)) {
      problems.push(
        `member name ${JSON.stringify(spec.name)} must be 1 to 31 lowercase letters, digits and '-', starting and ending with a letter or digit`,
      );
      continue;
    }
    if (seenNames.has(spec.name)) {
      problems.push(`member name ${JSON.stringify(spec.name)} is given twice; member names must be unique`);
      continue;
    }
    seenNames.add(spec.name);
    const host =
      spec.host ?? hostNames[digest(`host:${p.tvd}:${spec.name}`).readUInt32BE(0) % hostNames.length];
    if (!hostNames.includes(host)) {
      problems.push(
        `member ${JSON.stringify(spec.name)} names host ${JSON.stringify(host)}, which is not one of this tvd's hosts (${hostNames.join(", ")}); add it to hosts or fix the member's host`,
      );
      continue;
    }
    const hostNumber = FIRST_MEMBER_HOST + (digest(`ip:${p.tvd}:${spec.name}`).readUInt32BE(0) % (size - 20));
    const ip = spec.ip ?? formatIp(base + hostNumber);
    const n = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
    // Written as every resource reads it: four numbers 0 to 255, no leading zeros.
    if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(ip) || formatIp(n) !== ip) {
      problems.push(
        `member ${JSON.stringify(spec.name)} has ip ${JSON.stringify(ip)}, which is not an IPv4 address such as 10.50.0.20 (four numbers 0 to 255, no leading zeros); give an address inside network.subnet`,
      );
      continue;
    }
    if (n < base + 1 || n >= base + size - 1) {
      problems.push(
        `member ${JSON.stringify(spec.name)} has ip ${JSON.stringify(ip)}, outside ${p.subnet}; give an address inside network.subnet`,
      );
      continue;
    }
    const owner = ipOwner.get(ip);
    if (owner !== undefined) {
      problems.push(
        `members ${JSON.stringify(owner)} and ${JSON.stringify(spec.name)} would both have address ${ip}; set ip on one of them`,
      );
      continue;
    }
    ipOwner.set(ip, spec.name);
    const memoryMiB = spec.memoryMiB ?? p.memoryMiB;
    const vcpus = spec.vcpus ?? p.vcpus;
    if (!Number.isInteger(memoryMiB) || memoryMiB < 1) {
      problems.push(
        `member ${JSON.stringify(spec.name)} has memoryMiB ${memoryMiB}; give a whole number of MiB >= 1`,
      );
    }
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 128) {
      problems.push(
        `member ${JSON.stringify(spec.name)} has vcpus ${vcpus}; give a whole number from 1 to 128`,
      );
    }
    const domain = `${p.tvd}-${spec.name}`;
    plans.push({
      name: spec.name,
      domain,
      vtpmDomain: `${domain}-vtpm`,
      host,
      memoryMiB,
      vcpus,
      ip: `${ip}/${prefix}`,
      mac: macFor(p.tvd, spec.name),
    });
  }

  for (const h of p.hosts) {
    const need = plans
      .filter((m) => m.host === h.name)
      .reduce((sum, m) => sum + m.memoryMiB + p.vtpmMemoryMiB, 0);
    if (need + h.reservedMiB > h.guestMemoryMiB) {
      problems.push(
        `host ${JSON.stringify(h.name)} offers ${h.guestMemoryMiB} MiB to guests, ${h.reservedMiB} MiB of it already taken, ` +
          `but this tvd's members there need ${need} MiB (guests and their vTPMs); use fewer or smaller members, or more hosts`,
      );
    }
  }
  if (problems.length) throw new TvdPlanError(p.tvd, problems);
  return plans;
}
