/**
 * The single-host example (examples/single-host: a vTPM manager, three vTPMs, three guests)
 * through the real Pulumi CLI against a lab host: up, no changes, five kinds of out-of-band
 * drift each found on the right resource and property, repaired by one up, then destroy
 * leaving nothing but the archived vTPM images.
 */
import { readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import type { LabHostRecord } from "../../lab/host";
import { SEEDED_IMAGES_LISTING, startTestLab, type TestLab } from "../support/lab";
import { profiled } from "../support/exampleProfile";
import { disposeThen, expectExit, stepOf, TestStack } from "./pulumi";

jest.setTimeout(15 * 60_000);

const example = path.resolve(__dirname, "..", "..", "examples", "single-host");
const A = "dom0-a";
const GUESTS = ["web1", "web2", "db1"];
let lab: TestLab;
let host: LabHostRecord;
let stack: TestStack;
let stats: string;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  host = lab.host(A);
  stats = path.join(lab.stateDir, "stats.jsonl");
  stack = await TestStack.create({
    programDir: example,
    config: {
      host: { value: host.host },
      port: { value: String(host.port) },
      hostKeyFingerprint: { value: host.hostKeyFingerprint },
      privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
    },
    env: { PULUMI_TVD_STATS: stats },
  });
  stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
afterAll(() => disposeThen(stack, () => lab?.stop()));

const sh = (script: string, ...args: string[]) => lab.check(A, script, ...args);
const running = () => lab.domainNames(A);
const step = stepOf;

let uuids: Record<string, string>;

it("up builds the manager, then each vTPM, then each guest on its own overlay", async () => {
  expectExit(await profiled("lab", "up", stats, () => stack.up()));
  expect(await running()).toEqual(["db1", "db1-vtpm", "vtpmmgr", "web1", "web1-vtpm", "web2", "web2-vtpm"]);
  const members = (await stack.outputs()).members as Record<
    string,
    { vtpmUuid: string; vtpmAttached: boolean }
  >;
  uuids = Object.fromEntries(GUESTS.map((g) => [g, members[g].vtpmUuid]));
  for (const g of GUESTS) {
    expect(members[g].vtpmAttached).toBe(true);
    // The config holds the UUID generated once at create, and the manager sees the same one.
    expect(await sh(`cat /etc/xen/${g}-vtpm.cfg`)).toContain(`"backend=vtpmmgr,uuid=${uuids[g]}"`);
    expect(await sh(`xl vtpm-list ${g}-vtpm`)).toContain(uuids[g]);
    expect(await sh(`stat -c %s /var/lib/xen/vtpm/${g}-vtpm.img`)).toBe(`${8 * 1024 * 1024}\n`);
    const info = JSON.parse(await sh(`qemu-img info --output=json -U /var/lib/xen/images/${g}.qcow2`));
    expect(info).toMatchObject({
      format: "qcow2",
      "backing-filename": "/var/lib/xen/images/debian-base.raw",
      "backing-filename-format": "raw",
    });
    expect(await sh(`cat /etc/xen/${g}.cfg`)).toContain(`"backend=${g}-vtpm"`);
    // The guest is attached to its own vTPM, through the frontend/backend handshake.
    expect(await sh(`cat /var/log/xen/console/guest-${g}-vtpm.log`)).toMatch(/VTPM attached to Frontend/);
  }
  expect(new Set(Object.values(uuids)).size).toBe(3);
});

it("preview right after up shows no changes", async () => {
  expectExit(await stack.preview({ expectNoChanges: true }));
});

it("preview --refresh finds each out-of-band change on the right resource and property", async () => {
  // 1. a guest config edited; 2. a guest destroyed; 3. an overlay deleted;
  // 4. a vTPM's UUID changed in its config; 5. the manager stopped.
  await sh("sed -i 's/^memory = 128$/memory = 256/' /etc/xen/web1.cfg");
  expect((await lab.xl(A, "destroy", "web2")).exitCode).toBe(0);
  await sh("rm /var/lib/xen/images/db1.qcow2");
  await sh(`sed -i 's/uuid=${uuids.web1}/uuid=00000000-0000-4000-8000-000000000001/' /etc/xen/web1-vtpm.cfg`);
  expect((await lab.xl(A, "destroy", "vtpmmgr")).exitCode).toBe(0);

  rmSync(stats, { force: true });
  const preview = await stack.preview({ refresh: true });
  expectExit(preview);

  expect(step(preview, "web1", "update").changedInputs).toEqual(["memoryMiB"]);
  expect(step(preview, "web2", "update").changedInputs).toEqual(["running"]);
  expect(step(preview, "db1", "refresh").changedOutputs).toContain("overlayPath");
  expect(step(preview, "db1", "update")).toBeDefined();
  expect(step(preview, "web1-vtpm", "update").changedInputs).toEqual(["uuid"]);
  expect(step(preview, "vtpmmgr", "update").changedInputs).toEqual(["running"]);
  for (const untouched of ["web2-vtpm", "db1-vtpm"]) {
    expect(preview.steps.find((s) => s.name === untouched && s.op === "update")).toBeUndefined();
  }

  // The dynamic provider's process: one SSH connection to the host, one round trip per resource.
  const events = readFileSync(stats, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; endpoint: string });
  expect(events.filter((e) => e.event === "connect")).toHaveLength(1);
  expect(events.filter((e) => e.event === "exec").length).toBeLessThanOrEqual(7);
});

it("up repairs every drift without losing data, and nothing is left to change", async () => {
  expectExit(await stack.refresh());
  expectExit(await stack.up());
  expect(await running()).toEqual(["db1", "db1-vtpm", "vtpmmgr", "web1", "web1-vtpm", "web2", "web2-vtpm"]);
  expect(await sh("cat /etc/xen/web1.cfg")).toMatch(/^memory = 128$/m);
  expect(await sh("cat /etc/xen/web1-vtpm.cfg")).toContain(`uuid=${uuids.web1}`);
  expect(await sh("xl vtpm-list web1-vtpm")).toContain(uuids.web1);
  const info = JSON.parse(await sh("qemu-img info --output=json -U /var/lib/xen/images/db1.qcow2"));
  expect(info["backing-filename"]).toBe("/var/lib/xen/images/debian-base.raw");
  // Every vTPM keeps its UUID: its keys are intact.
  const members = (await stack.outputs()).members as Record<string, { vtpmUuid: string }>;
  for (const g of GUESTS) expect(members[g].vtpmUuid).toBe(uuids[g]);
  expectExit(
    await profiled("lab", "previewRefresh", stats, () =>
      stack.preview({ expectNoChanges: true, refresh: true }),
    ),
  );
});

it("destroy leaves no domains and no files but the archived vTPM images", async () => {
  const destroy = await stack.destroy();
  expectExit(destroy);
  expect(await running()).toEqual([]);
  expect(await sh("ls -A /etc/xen")).toBe("");
  expect(await sh("ls -A /var/lib/xen/images")).toBe(SEEDED_IMAGES_LISTING);
  expect(await sh("ls -A /var/lib/xen/vtpm")).toBe("");
  expect(await lab.archivedFiles(A)).toEqual([
    "db1-vtpm.img",
    "vtpmmgr.img",
    "web1-vtpm.img",
    "web2-vtpm.img",
  ]);
});
