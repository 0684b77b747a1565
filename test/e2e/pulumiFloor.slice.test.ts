/**
 * The CI slice of bench/pulumi-floor.ts (issue 14): Pulumi's own cost per resource, measured with
 * the real CLI on programs no host and no pulumi-tvd code serves. At a tiny size it checks what
 * the bench relies on, never how fast: `up` puts exactly the program's resources of the kind in
 * the state, each preview against it finds no change (`--expect-no-changes`, so the no-op
 * provider really is one), every run is timed, and the stack is gone afterwards.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FLOOR_KINDS, FloorProject } from "../../bench/pulumi-floor/floor";

// Alone the file takes about 30 s; in the suite, beside three workers and real Xen's QEMU (which
// runs at nice -20), its 14 CLI runs took 414 s in one fresh-clone run, so each test gets 30 min.
jest.setTimeout(30 * 60_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-floor-slice-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it.each(FLOOR_KINDS)(
  "%s: up creates exactly the program's resources; previews find no change",
  async (kind) => {
    const projectDir = path.join(dir, kind);
    const f = await new FloorProject(projectDir).measure(kind, 4, 2);
    expect(f).toMatchObject({ kind, resources: 4, resourcesInState: 4 });
    expect(f.previews).toHaveLength(2);
    for (const op of [f.up, ...f.previews]) {
      expect(op.sec).toBeGreaterThan(0);
      expect(op.machineCpuSec).toBeGreaterThanOrEqual(0);
    }
    expect(f.previewMedianSec).toBe((f.previews[0].sec + f.previews[1].sec) / 2);
    // destroy and `stack rm` ran: the backend keeps no stack of the project.
    const stacks = path.join(projectDir, "state", ".pulumi", "stacks", "floor");
    expect(readdirSync(stacks).filter((f) => f.endsWith(".json"))).toEqual([]);
  },
);

it("refuses a size or a count of previews that is not a whole number of at least 1, before any CLI run", async () => {
  const project = new FloorProject(path.join(dir, "refused"));
  await expect(project.measure("dynamic", 0, 1)).rejects.toThrow(
    /resources must be a whole number of at least 1, got 0/,
  );
  await expect(project.measure("component", 2, 1.5)).rejects.toThrow(
    /previews must be a whole number of at least 1, got 1.5/,
  );
  expect(readdirSync(path.join(dir, "refused", "state"))).toEqual([]);
});
