/**
 * What an input change means for a vTPM. Pure. The rule that matters: a new image or a new
 * UUID wipes the vTPM's keys, so such a change needs allowStateReset; everything else keeps
 * the image.
 */
import { classifyChanges } from "../../dynamic";
import { guardStateReset, imagePathOf, type StubdomDiff } from "../stubdom";
import type { VtpmInputs } from "./args";

/** Changes that lose the vTPM's keys: its image is recreated, or the manager sees a new UUID. */
const STATE_RESETTING = ["uuid", "imagePath", "imageSizeMiB", "host"];
/** Changes applied by rewriting the config and restarting the vTPM domain; the image stays. */
const RESTARTING = [
  "name",
  "manager",
  "memoryMiB",
  "kernel",
  "ramdisk",
  "configDir",
  "logLevel",
  "hwInitPcr",
  "maintCmds",
];

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

/**
 * `imagePresent: false` is the image gone out of band: its keys are lost already, and a new
 * image is only made when the user says so.
 */
export function diffVtpm(old: VtpmState, news: VtpmInputs, imagePresent = true): StubdomDiff {
  const d = classifyChanges(
    comparable(old.inputs, old.uuid),
    comparable(news, old.uuid),
    STATE_RESETTING,
    RESTARTING,
  );
  return guardStateReset(d, {
    imagePresent,
    allowStateReset: news.allowStateReset,
    lost:
      "vTPM image missing: its keys are lost; set allowStateReset to create a new one " +
      `(vTPM ${news.name}, image ${imagePathOf(news)})`,
    resetting: (replaces) =>
      `changing ${replaces.join(", ")} of vTPM ${news.name} creates a new vTPM image or UUID, and its keys would be lost; ` +
      "set allowStateReset: true to allow it, or revert the change",
  });
}
