/**
 * Acme's sizing presets: what `small`, `medium` and `large` mean for each tier (how many members,
 * their memory and vCPUs) and for every member's vTPM (its image size). Teams pick a preset and
 * override a tier only where they must, so that sizes stay comparable across teams.
 */
import type { Tier } from "./naming";

export interface TierSize {
  /** How many members the tier has (1 to 30). */
  readonly members: number;
  /** Each member's guest memory, MiB. */
  readonly memoryMiB: number;
  readonly vcpus: number;
}

export interface Preset {
  readonly tiers: Readonly<Record<Tier, TierSize>>;
  /** Each member's vTPM image, MiB. */
  readonly vtpmImageSizeMiB: number;
}

export const PRESETS = {
  small: {
    tiers: {
      web: { members: 1, memoryMiB: 64, vcpus: 1 },
      app: { members: 1, memoryMiB: 64, vcpus: 1 },
      db: { members: 1, memoryMiB: 128, vcpus: 1 },
    },
    vtpmImageSizeMiB: 8,
  },
  medium: {
    tiers: {
      web: { members: 2, memoryMiB: 256, vcpus: 1 },
      app: { members: 2, memoryMiB: 512, vcpus: 2 },
      db: { members: 1, memoryMiB: 1024, vcpus: 2 },
    },
    vtpmImageSizeMiB: 16,
  },
  large: {
    tiers: {
      web: { members: 3, memoryMiB: 512, vcpus: 2 },
      app: { members: 3, memoryMiB: 1024, vcpus: 4 },
      db: { members: 2, memoryMiB: 4096, vcpus: 4 },
    },
    vtpmImageSizeMiB: 32,
  },
} as const satisfies Record<string, Preset>;

export type Size = keyof typeof PRESETS;
