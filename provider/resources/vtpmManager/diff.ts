/**
 * What an input change means for a vTPM manager. Pure. Its image holds the keys of every vTPM
 * it serves: a new image needs allowStateReset. Other changes restart the manager, which is
 * only allowed while no vTPM uses it (checked at update time, on the host).
 */
import { isDeepStrictEqual } from "node:util";
import { imagePathOf } from "../stubdom";
import { managerMemoryMiB, type VtpmManagerInputs } from "./args";

const RESETTING = ["name", "imagePath", "imageSizeMiB", "host"];
const RESTARTING = [
  "kernel",
  "memoryMiB",
  "configDir",
  "tpm2",
  "tpmLocality",
  "iomem",
  "ownerAuth",
  "srkAuth",
  "running",
];

export interface ManagerDiff {
  readonly changed: string[];
  readonly replaces: string[];
  readonly restart: boolean;
  readonly refused?: string;
}

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
): ManagerDiff {
  const a = comparable(olds);
  const b = comparable(news);
  const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => !isDeepStrictEqual(a[k], b[k]))
    .sort();
  const replaces = changed.filter((k) => RESETTING.includes(k));
  if (!imagePresent) {
    return {
      changed: [...new Set([...changed, "imagePath"])].sort(),
      replaces: ["imagePath"],
      restart: false,
      refused: news.allowStateReset
        ? undefined
        : `vTPM manager image missing: ${imagePathOf(news)} is gone and the keys of every vTPM it served are lost; ` +
          "set allowStateReset to create a new one",
    };
  }
  return {
    changed,
    replaces,
    restart: replaces.length === 0 && changed.some((k) => RESTARTING.includes(k)),
    refused:
      replaces.length && !news.allowStateReset
        ? `changing ${replaces.join(", ")} of vTPM manager ${news.name} creates a new manager image, and the keys of ` +
          "every vTPM it serves would be lost; set allowStateReset: true to allow it, or revert the change"
        : undefined,
  };
}
