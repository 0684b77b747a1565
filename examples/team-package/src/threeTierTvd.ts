import * as pulumi from "@pulumi/pulumi";
import {
  TrustedVirtualDomain,
  type TvdGuestTemplate,
  type TvdMemberOutputs,
  type TvdMemberProps,
  type XenHost,
} from "pulumi-tvd";
import {
  memberNameOf,
  namingProblems,
  ThreeTierPolicyError,
  TIERS,
  tvdNameOf,
  type Environment,
  type Tier,
} from "./naming";
import { PRESETS, type Size, type TierSize } from "./presets";

export interface ThreeTierTvdProps {
  /** The team's short name: 2 or more lowercase letters and digits, starting with a letter. */
  readonly team: string;
  readonly env: Environment;
  /** The sizing preset (members, memory, vCPUs per tier; vTPM image size). */
  readonly size: Size;
  /** The Xen hosts the application spans; each tier's members are spread over them in turn. */
  readonly hosts: readonly XenHost[];
  /** The guest image every member boots. */
  readonly image: Omit<TvdGuestTemplate, "memoryMiB" | "vcpus" | "vtpmImageSizeMiB">;
  /** Per tier, what differs from the preset. @default - the preset as it is */
  readonly tiers?: Partial<Record<Tier, Partial<TierSize>>>;
  /**
   * The application's own network; each tier has its own block of addresses in it: web from
   * .10, app from .40, db from .70.
   * @default "10.60.0.0/24"
   */
  readonly subnet?: string;
  /** SSH public keys allowed to log in to every member. @default [] */
  readonly authorizedKeys?: readonly string[];
  /** Change it to reissue every member's certificates. @default "0" */
  readonly rotation?: pulumi.Input<string>;
  /** Whether the TVD owns and certifies each member's vTPM (pulumi-tvd's vtpmIdentity). @default true */
  readonly vtpmIdentity?: boolean;
  /** How long each member's vTPM identity waits for its agent. @default 180 */
  readonly agentTimeoutSec?: number;
}

/** Where each tier's addresses start in the subnet; a tier holds at most 30 members. */
const TIER_FIRST_HOST: Readonly<Record<Tier, number>> = { web: 10, app: 40, db: 70 };
const TIER_MAX_MEMBERS = 30;

/** One member as the policy places it. */
export interface TierMember {
  readonly tier: Tier;
  /** `<tier>-<n>` inside the TVD; its domain is `<tvd>-<tier>-<n>`. */
  readonly name: string;
  /** Index into the hosts. */
  readonly hostIndex: number;
  readonly ip: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
}

export interface ThreeTierPlan {
  readonly tvdName: string;
  readonly vtpmImageSizeMiB: number;
  readonly members: readonly TierMember[];
}

/**
 * The whole application under the policy, from the props alone: the TVD's name, every member's
 * name, host, address and size. Throws a ThreeTierPolicyError listing every problem at once.
 */
export function planThreeTier(name: string, props: ThreeTierTvdProps): ThreeTierPlan {
  const problems = namingProblems(props.team, props.env);
  const preset = (PRESETS as Record<string, (typeof PRESETS)[Size] | undefined>)[props.size];
  if (!preset) {
    problems.push(
      `size ${JSON.stringify(props.size)} is not one of ${Object.keys(PRESETS).join(", ")}; pick one of them and override tiers where needed`,
    );
  }
  if (!props.hosts?.length) problems.push("hosts is empty; give the XenHosts the application runs on");
  const subnet = props.subnet ?? "10.60.0.0/24";
  const base = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/(1[6-9]|2[0-4])$/.exec(subnet);
  if (!base || base.slice(1, 4).some((o) => Number(o) > 255)) {
    problems.push(
      `subnet ${JSON.stringify(subnet)} is not an IPv4 network from /16 to /24 ending in .0, such as "10.60.0.0/24"; fix subnet`,
    );
  }
  for (const tier of Object.keys(props.tiers ?? {})) {
    if (!(TIERS as readonly string[]).includes(tier)) {
      problems.push(`tiers.${tier} is not a tier; the tiers are ${TIERS.join(", ")}`);
    }
  }
  const sizes = Object.fromEntries(
    TIERS.map((tier) => [tier, { ...preset?.tiers[tier], ...props.tiers?.[tier] } as TierSize]),
  ) as Record<Tier, TierSize>;
  for (const tier of TIERS) {
    const count = sizes[tier].members;
    if (preset && !(Number.isInteger(count) && count >= 1 && count <= TIER_MAX_MEMBERS)) {
      problems.push(
        `tiers.${tier}.members ${JSON.stringify(count)} must be a whole number from 1 to ${TIER_MAX_MEMBERS}; fix the override or leave it out for the preset's ${preset.tiers[tier].members}`,
      );
    }
  }
  if (problems.length) throw new ThreeTierPolicyError(name, problems);

  const [a, b, c] = base!.slice(1, 4).map(Number);
  const members = TIERS.flatMap((tier, t) =>
    Array.from({ length: sizes[tier].members }, (_, i): TierMember => {
      const host = a * 65536 + b * 256 + c;
      const address = host * 256 + TIER_FIRST_HOST[tier] + i;
      return {
        tier,
        name: memberNameOf(tier, i + 1),
        // Replicas of a tier on different hosts, and each tier's first member on another host.
        hostIndex: (t + i) % props.hosts.length,
        ip: [24, 16, 8, 0].map((s) => Math.floor(address / 2 ** s) % 256).join("."),
        memoryMiB: sizes[tier].memoryMiB,
        vcpus: sizes[tier].vcpus,
      };
    }),
  );
  return {
    tvdName: tvdNameOf(props.team, props.env),
    vtpmImageSizeMiB: preset!.vtpmImageSizeMiB,
    members,
  };
}

/**
 * A team's three-tier application (web, app, db) as one Trusted Virtual Domain: its tiers reach
 * each other on the TVD's own network and nothing else does; every member has its vTPM, an
 * identity from the TVD's CA and a seed. Sized by a preset, named by Acme's policy
 * (`<team><env>-<tier>-<n>`), and refused before any resource exists when it breaks the policy.
 */
export class ThreeTierTvd extends pulumi.ComponentResource {
  /** `<team><env>`: the TVD's name, its bridge is `tvd-<team><env>`. */
  readonly tvdName: string;
  readonly tvd: TrustedVirtualDomain;
  /** Each tier's member domains, e.g. `{ web: ["shopdev-web-1"], ... }`. */
  readonly tiers: Readonly<Record<Tier, readonly string[]>>;
  /** Per member: host, address, vTPM UUID, fingerprints, certificate serials (pulumi-tvd's outputs). */
  readonly members: pulumi.Output<Record<string, TvdMemberOutputs>>;
  readonly summary: pulumi.Output<string>;

  constructor(name: string, props: ThreeTierTvdProps, opts?: pulumi.ComponentResourceOptions) {
    const plan = planThreeTier(name, props);
    super("acme:tvd:ThreeTierTvd", name, {}, opts);
    this.tvdName = plan.tvdName;
    const members: TvdMemberProps[] = plan.members.map((m) => ({
      name: m.name,
      host: props.hosts[m.hostIndex],
      ip: m.ip,
      memoryMiB: m.memoryMiB,
      vcpus: m.vcpus,
    }));
    this.tvd = new TrustedVirtualDomain(
      plan.tvdName,
      {
        hosts: props.hosts,
        template: { ...props.image, vtpmImageSizeMiB: plan.vtpmImageSizeMiB },
        members,
        network: { subnet: props.subnet ?? "10.60.0.0/24" },
        authorizedKeys: props.authorizedKeys,
        rotation: props.rotation,
        vtpmIdentity: props.vtpmIdentity,
        agentTimeoutSec: props.agentTimeoutSec,
      },
      { parent: this },
    );
    this.tiers = Object.fromEntries(
      TIERS.map((tier) => [
        tier,
        plan.members.filter((m) => m.tier === tier).map((m) => `${plan.tvdName}-${m.name}`),
      ]),
    ) as Record<Tier, string[]>;
    this.members = this.tvd.members;
    this.summary = this.tvd.summary;
    this.registerOutputs({ tiers: this.tiers, members: this.members, summary: this.summary });
  }
}
