/**
 * What an input change means for a guest. Pure. The guest's disk is a qcow2 overlay on its base
 * image: what changes the overlay's identity (where it is, what backs it) replaces the guest;
 * what is only in the config is applied by rewriting it and restarting the domain.
 */
import { classifyChanges } from "../../dynamic";
import { kernelOf, overlayPathOf, type GuestInputs } from "./args";

/** Changes that need a new overlay on a new base, or a guest on another host: a replace. */
const REPLACING = ["name", "baseImage", "baseImageFormat", "overlayPath", "host"] as const;
/** Changes applied by rewriting the config and restarting the domain; the overlay stays. */
const RESTARTING = [
  "memoryMiB",
  "vcpus",
  "bootLoader",
  "kernel",
  "ramdisk",
  "cmdline",
  "vifs",
  "vtpm",
  "extraDisks",
  "configDir",
] as const;

export interface GuestDiff {
  readonly changed: string[];
  /** Properties whose change replaces the guest (a new overlay from the base image). */
  readonly replaces: string[];
  /**
   * The domain must be restarted with a rewritten config. `running` changed alone is neither a
   * replace nor a restart: the domain is only started or stopped.
   */
  readonly restart: boolean;
  /**
   * The overlay is gone from the host: a fresh one is made from the base image and the domain
   * restarts on it. Not a replace: the guest keeps its name, config and vTPM.
   */
  readonly recreateOverlay: boolean;
}

function comparable(v: GuestInputs): Record<string, unknown> {
  return {
    ...v,
    // Compared as what the host gets: an unset overlay path or pv-grub kernel is its default.
    overlayPath: overlayPathOf(v),
    kernel: kernelOf(v),
    host: `${v.connection.host}:${v.connection.port}`,
  };
}

/** `overlayPresent`: whether the old overlay is still on the host, as read last saw it. */
export function diffGuest(olds: GuestInputs, news: GuestInputs, overlayPresent = true): GuestDiff {
  const d = classifyChanges(comparable(olds), comparable(news), REPLACING, RESTARTING);
  // A replace makes a fresh overlay anyway; otherwise a lost one is remade in place.
  const recreateOverlay = !overlayPresent && d.replaces.length === 0;
  const changed = overlayPresent ? d.changed : [...new Set([...d.changed, "overlayPath"])].sort();
  return { changed, replaces: d.replaces, restart: recreateOverlay || d.restart, recreateOverlay };
}
