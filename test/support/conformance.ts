/**
 * The conformance check both the lab and the xen projects make: the scenarios run on a fresh
 * local lab host, compared with real Xen's observations (recorded, or just made live).
 */
import { KNOWN_DIFFERENCES } from "../../lab/conformance/differences";
import { runScenarios } from "../../lab/conformance/run";
import { compareObservations, type Difference, type Observation } from "../../lab/conformance/scenarios";
import { startTestLab } from "./lab";

const key = (d: { scenario: string; field: string }) => `${d.scenario} ${d.field}`;

/**
 * Differences between the emulator and `xen`: those lab/conformance/differences.ts does not
 * list, and listed ones that no longer happen. Both must be empty.
 */
export async function emulatorAgainst(
  xen: readonly Observation[],
): Promise<{ unlisted: Difference[]; gone: string[] }> {
  const lab = await startTestLab({ hosts: 1 });
  let found: Difference[];
  try {
    // The stand-in stub domains real Xen needs carry a ramdisk; the emulator only checks it exists.
    await lab.sh(
      "dom0-a",
      "touch /usr/lib/xen/boot/vtpmmgr-stubdom-initrd.gz /usr/lib/xen/boot/vtpm-stubdom-initrd.gz",
    );
    found = compareObservations(await runScenarios(await lab.session("dom0-a")), xen);
  } finally {
    await lab.stop();
  }
  const known = new Set(KNOWN_DIFFERENCES.map(key));
  return {
    unlisted: found.filter((d) => !known.has(key(d))),
    gone: KNOWN_DIFFERENCES.map(key).filter((k) => !found.some((d) => key(d) === k)),
  };
}
