/**
 * What an input change means for a seed image. Pure. The image is derived data: every seed change
 * is rewritten in place (the guest keeps the same disk path); only a new place replaces it.
 */
import { classifyChanges } from "../../dynamic";
import { seedPathOf, type SeedImageInputs } from "./args";

/** A new file somewhere else: the old one is removed, the new one written. */
const REPLACING = ["path", "host"] as const;

/** What the last read saw on the host, from the stored outputs. */
export interface SeedImageSeen {
  readonly present: boolean;
  readonly sha256?: string;
  readonly observedSha256?: string | null;
}

export interface SeedImageDiff {
  readonly changed: string[];
  readonly replaces: string[];
  /** The file on the host is missing or not what was written: `up` writes it again. */
  readonly drifted: boolean;
}

function comparable(v: SeedImageInputs): Record<string, unknown> {
  return { ...v, path: seedPathOf(v), host: `${v.connection.host}:${v.connection.port}` };
}

/** Whether the image on the host is other than the one written (missing, tampered with). */
export function seedDrifted(seen: SeedImageSeen): boolean {
  return !seen.present || (seen.sha256 !== undefined && seen.observedSha256 !== seen.sha256);
}

export function diffSeedImage(
  olds: SeedImageInputs,
  news: SeedImageInputs,
  seen: SeedImageSeen,
): SeedImageDiff {
  const d = classifyChanges(comparable(olds), comparable(news), REPLACING, []);
  return { changed: d.changed, replaces: d.replaces, drifted: seedDrifted(seen) };
}
