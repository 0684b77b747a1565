/**
 * The conformance suite against the emulator: the same scenarios real Xen answered
 * (lab/conformance/observed/xen.json, recorded on the real-Xen lab with
 * `node dist/lab/conformance/run.js`), run on a local lab host and compared field by field.
 * Every difference must be one the lab's docs list with its reason, and every listed one must
 * still happen: a fixed difference is taken off the list.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { KNOWN_DIFFERENCES } from "../../lab/conformance/differences";
import { runScenarios } from "../../lab/conformance/run";
import { compareObservations, type Observation } from "../../lab/conformance/scenarios";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(180_000);

let lab: TestLab;
const xen = JSON.parse(
  readFileSync(path.join(__dirname, "..", "..", "lab", "conformance", "observed", "xen.json"), "utf8"),
) as { xenVersion: string; observations: Observation[] };

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  // The stand-in stub domains real Xen needs carry a ramdisk; the emulator only checks it exists.
  await lab.sh(
    "dom0-a",
    "touch /usr/lib/xen/boot/vtpmmgr-stubdom-initrd.gz /usr/lib/xen/boot/vtpm-stubdom-initrd.gz",
  );
});

afterAll(async () => lab?.stop());

it("answers every scenario as real Xen did, but for the differences the docs list", async () => {
  const emulator = await runScenarios(await lab.session("dom0-a"));
  const found = compareObservations(emulator, xen.observations);
  const key = (d: { scenario: string; field: string }) => `${d.scenario} ${d.field}`;
  const known = new Set(KNOWN_DIFFERENCES.map(key));
  expect(found.filter((d) => !known.has(key(d)))).toEqual([]);
  expect(KNOWN_DIFFERENCES.map(key).filter((k) => !found.some((d) => key(d) === k))).toEqual([]);
});
