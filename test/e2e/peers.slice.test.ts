/**
 * The CI slice of bench/peers.ts (issue 14, item 1): its code paths at a tiny size, 3 guests on
 * 3 lab hosts, all four ways (pulumi-tvd through the real CLI, Ansible with defaults and with
 * pipelining, one ssh process per command) and the dom0s alone (the ssh script's commands in the
 * hosts' namespaces, no SSH). It asserts what each way did, never how fast:
 * measureSize itself throws unless each way created exactly the work's domains and files, read
 * every one of them back, and left the lab clean; the checks here pin the counts it reports.
 */
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { measureSize, type SizeFigures } from "../../bench/peers/measure";
import { domainsOn, filesOn, LAB_BASE_IMAGE } from "../../bench/peers/workload";
import { startTestLab, type TestLab } from "../support/lab";

// Alone on the machine the slice takes about 3 minutes; in the full suite, beside the other
// workers, it took over 10 (Ansible with defaults is a process per task and host), so the hook
// that runs all four ways gets 30.
jest.setTimeout(30 * 60_000);

const GUESTS = 3;

let lab: TestLab;
let figures: SizeFigures;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 3 });
  const workDir = path.join(lab.stateDir, "peers");
  mkdirSync(workDir);
  figures = await measureSize({ hosts: lab.hosts, workDir, bases: [LAB_BASE_IMAGE] }, GUESTS);
});

afterAll(() => lab?.stop());

const resources = 3 + 2 * GUESTS;

it("pulumi-tvd created, read back without and with host contact, and destroyed every resource", () => {
  const p = figures.pulumiTvd!;
  // The engine's summary counts the stack too.
  expect(p.up.changes).toEqual({ create: resources + 1 });
  expect(p.preview.changes).toEqual({ same: resources + 1 });
  expect([p.preview.connects, p.preview.roundTrips]).toEqual([0, 0]);
  expect(p.previewRefresh.refreshed).toBe(resources);
  expect(p.refresh.refreshed).toBe(resources);
  // Every host was read: each answered at least one round trip of the refresh.
  expect(p.refresh.roundTripsPerHost.every((n) => n > 0)).toBe(true);
  expect(p.destroy.changes).toEqual({ delete: resources + 1 });
  expect(p.up.providerPeakMiB).toBeGreaterThan(0);
});

it.each(["ansibleDefaults", "ansiblePipelining"] as const)(
  "%s created everything, --check read it all back unchanged",
  (way) => {
    const a = figures[way]!;
    expect(a.create.changed).toBeGreaterThan(0);
    expect(a.check.changed).toBe(0);
    // Every domain from xl list; per host the manager's image and config; 4 files a guest.
    expect(a.check.itemsVerified).toBe(resources + 3 * 2 + 4 * GUESTS);
    expect(a.destroy.changed).toBeGreaterThan(0);
  },
);

it("one ssh process per command read back each image, config and domain it created", () => {
  const s = figures.sshPerCommand!;
  expect(s.create.sshProcesses).toBe(3 * 3 + 6 * GUESTS);
  expect(s.readBack.found).toBe(3 * resources);
  expect(s.destroy.sshProcesses).toBe(3 * 3 + 6 * GUESTS);
});

it("the dom0s alone ran the ssh script's commands, every one, and spent CPU doing it", () => {
  // measureSize has checked each host held exactly its share after the create and nothing after
  // the destroy; here, that the same commands as the ssh script's ran, and that the CPU meter saw
  // the vTPMs' own work (each new vTPM makes its endorsement key).
  const o = figures.dom0Alone!;
  expect(o.create.commands).toBe(figures.sshPerCommand!.create.sshProcesses);
  expect(o.destroy.commands).toBe(figures.sshPerCommand!.destroy.sshProcesses);
  expect(o.create.cpu.swtpmCpuSec).toBeGreaterThan(0);
  expect(o.create.cpu.machineCpuSec).toBeGreaterThanOrEqual(o.create.cpu.swtpmCpuSec);
});

it("the lab is clean afterwards: no domain, no file but the base image", async () => {
  for (const h of lab.hosts) {
    expect(await domainsOn(h)).toEqual([]);
    expect(await filesOn(h, [LAB_BASE_IMAGE])).toEqual([]);
  }
});
