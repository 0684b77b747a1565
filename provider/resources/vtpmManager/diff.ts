/**
 * What an input change means for a vTPM manager. Pure. Its image holds the keys of every vTPM
 * it serves: a new image needs allowStateReset. Other changes restart the manager, which is
 * only allowed while no vTPM uses it (checked at update time, on the host).
 */
import { classifyChanges } from "../../dynamic";
import { guardStateReset, imagePathOf, type StubdomDiff } from "../stubdom";
import { managerMemoryMiB, type VtpmManagerInputs } from "./args";

const RESETTING = ["name", "imagePath", "imageSizeMiB", "host"];
const RESTARTING = [
  "kernel",
  "ramdisk",
  "memoryMiB",
  "configDir",
  "tpm2",
  "tpmLocality",
  "iomem",
  "ownerAuth",
  "srkAuth",
  "running",
];

function comparable(v: VtpmManagerInputs): Record<string, unknown> {
  return {
    ...v,
    imagePath: imagePathOf(v),
    memoryMiB: managerMemoryMiB(v),
    host: `${v.connection.host}:${v.connection.port}`,
  };
}

export function diffVtpmManager(
  olds: VtpmManagerInputs,
  news: VtpmManagerInputs,
  imagePresent = true,
): StubdomDiff {
  return guardStateReset(classifyChanges(comparable(olds), comparable(news), RESETTING, RESTARTING), {
    imagePresent,
    allowStateReset: news.allowStateReset,
    lost:
      `vTPM manager image missing: ${imagePathOf(news)} is gone and the keys of every vTPM it served are lost; ` +
      "set allowStateReset to create a new one",
    resetting: (replaces) =>
      `changing ${replaces.join(", ")} of vTPM manager ${news.name} creates a new manager image, and the keys of ` +
      "every vTPM it serves would be lost; set allowStateReset: true to allow it, or revert the change",
  });
}
