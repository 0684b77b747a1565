/** @acme/tvd-three-tier: Acme's three-tier application construct on pulumi-tvd. */
export {
  ENVIRONMENTS,
  memberNameOf,
  ThreeTierPolicyError,
  TIERS,
  tvdNameOf,
  type Environment,
  type Tier,
} from "./naming";
export { PRESETS, type Preset, type Size, type TierSize } from "./presets";
export {
  planThreeTier,
  ThreeTierTvd,
  type ThreeTierPlan,
  type ThreeTierTvdProps,
  type TierMember,
} from "./threeTierTvd";
