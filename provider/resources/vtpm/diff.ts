/**
 * What an input change means for a vTPM. Pure. The rule that matters: a new image or a new
 * UUID wipes the vTPM's keys, so such a change needs allowStateReset; everything else keeps
 * the image.
 */
import { isDeepStrictEqual } from "node:util";
import { imagePathOf } from "../stubdom";
import type { VtpmInputs } from "./args";

/** Changes that lose the vTPM's keys: its image is recreated, or the manager sees a new UUID. */
const STATE_RESETTING = ["uuid", "imagePath", "imageSizeMiB", "host"] as const;
/** Changes applied by rewriting the config and restarting the vTPM domain; the image stays. */
const RESTARTING = [
  "name",
  "manager",
  "memoryMiB",
  "kernel",
  "configDir",
  "logLevel",
  "hwInitPcr",
  "maintCmds",
] as const;

export interface VtpmDiff {
  readonly changed: string[];
  /** Properties whose change replaces the vTPM (new image and UUID). */
  readonly replaces: string[];
  /** The domain must be restarted with a rewritten config. */
  readonly restart: boolean;
  /** Why the change is refused, with the fix; undefined when it may go ahead. */
  readonly refused?: string;
}

/** The vTPM as it is: the UUID it really has (generated once when the user set none). */
export interface VtpmState {
  readonly inputs: VtpmInputs;
  readonly uuid: string;
}

function comparable(v: VtpmInputs, uuid: string | undefined): Record<string, unknown> {
  return {
    ...v,
    // An unset UUID means "keep the one generated at create", not "a new one".
    uuid: v.uuid ?? uuid,
    imagePath: imagePathOf(v),
    host: `${v.connection.host}:${v.connection.port}`,
  };
}

export function diffVtpm(old: VtpmState, news: VtpmInputs): VtpmDiff {
  const a = comparable(old.inputs, old.uuid);
  const b = comparable(news, old.uuid);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const changed = keys.filter((k) => !isDeepStrictEqual(a[k], b[k])).sort();
  const replaces = changed.filter((k) => (STATE_RESETTING as readonly string[]).includes(k));
  const restart = replaces.length === 0 && changed.some((k) => (RESTARTING as readonly string[]).includes(k));
  const refused =
    replaces.length && !news.allowStateReset
      ? `changing ${replaces.join(", ")} of vTPM ${news.name} creates a new vTPM image or UUID, and its keys would be lost; ` +
        "set allowStateReset: true to allow it, or revert the change"
      : undefined;
  return { changed, replaces, restart, refused };
}
