/**
 * Acme's naming policy for three-tier applications on Trusted Virtual Domains, decided from the
 * props alone (pure), so that a bad name is refused before any resource exists.
 *
 * One application environment is one TVD named `<team><env>` (pulumi-tvd names the TVD's bridge
 * `tvd-<name>`, so the name is at most 11 lowercase letters and digits, with no '-'), and each
 * member's domain is `<team><env>-<tier>-<n>`, e.g. `shopdev-web-1`: `xl list` on any dom0 says
 * whose guest it is, in which environment and which tier.
 */

/** The tiers of every application, in the order traffic flows. */
export const TIERS = ["web", "app", "db"] as const;
export type Tier = (typeof TIERS)[number];

/**
 * The environments a team deploys to. None is the end of another, so `<team><env>` always reads
 * back as one team and one environment.
 */
export const ENVIRONMENTS = ["dev", "test", "stage", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** The longest TVD name pulumi-tvd takes: `tvd-<name>` is a Linux interface name (15 characters). */
const TVD_NAME_MAX = 11;
const TEAM = /^[a-z][a-z0-9]*$/;
const TEAM_MIN = 2;

/** A ThreeTierTvd's props that break the policy; the message names each property, its value and the fix. */
export class ThreeTierPolicyError extends Error {
  constructor(name: string, problems: readonly string[]) {
    super(`three-tier tvd ${JSON.stringify(name)}: ${problems.join("; ")}`);
    this.name = "ThreeTierPolicyError";
  }
}

/** What is wrong with `team` and `env` under the policy (empty when nothing is). */
export function namingProblems(team: unknown, env: unknown): string[] {
  const problems: string[] = [];
  const envOk = typeof env === "string" && (ENVIRONMENTS as readonly string[]).includes(env);
  if (!envOk) {
    problems.push(
      `env ${JSON.stringify(env)} is not one of ${ENVIRONMENTS.join(", ")}; use one of them (it is the end of every name: <team><env>-<tier>-<n>)`,
    );
  }
  // Room the longest environment leaves when env itself is wrong, so the team is judged either way.
  const teamMax = TVD_NAME_MAX - (envOk ? env.length : Math.max(...ENVIRONMENTS.map((e) => e.length)));
  if (typeof team !== "string" || !TEAM.test(team) || team.length < TEAM_MIN || team.length > teamMax) {
    problems.push(
      `team ${JSON.stringify(team)} must be ${TEAM_MIN} to ${teamMax} lowercase letters and digits starting with a letter` +
        (envOk
          ? ` (with env "${env}", the TVD name <team><env> has at most ${TVD_NAME_MAX} characters)`
          : "") +
        `; use the team's short name, e.g. "shop"`,
    );
  }
  return problems;
}

/** The TVD of one team's environment: `<team><env>`. */
export const tvdNameOf = (team: string, env: Environment) => `${team}${env}`;

/** A member's name inside its TVD: `<tier>-<n>`, n from 1; its domain is `<tvd>-<tier>-<n>`. */
export const memberNameOf = (tier: Tier, n: number) => `${tier}-${n}`;
