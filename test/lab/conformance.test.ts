/**
 * The conformance suite against the emulator: the same scenarios real Xen answered
 * (lab/conformance/observed/xen.json, recorded on the real-Xen lab with
 * `node build/lab/conformance/run.js`, and checked live by the xen project), run on a local lab
 * host and compared field by field. Every difference must be one the lab's docs list with its
 * reason, and every listed one must still happen: a fixed difference is taken off the list.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type { Observation } from "../../lab/conformance/scenarios";
import { emulatorAgainst } from "../support/conformance";

jest.setTimeout(180_000);

const xen = JSON.parse(
  readFileSync(path.join(__dirname, "..", "..", "lab", "conformance", "observed", "xen.json"), "utf8"),
) as { xenVersion: string; observations: Observation[] };

it("answers every scenario as real Xen did, but for the differences the docs list", async () => {
  expect(await emulatorAgainst(xen.observations)).toEqual({ unlisted: [], gone: [] });
});
