/**
 * Vtpm and Guest refuse bad input before any host is touched, and a create cut short by a failing
 * command leaves no orphan and no lost image: the next `up` finishes the job.
 */
import * as path from "node:path";
import { failNext, pendingFailures } from "../../lab/faults";
import type { LabHostRecord } from "../../lab/host";
import { SEEDED_IMAGES_LISTING, startTestLab, type TestLab } from "../support/lab";
import { expectExit, labStackConfig, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "guests");
const A = "dom0-a";
let lab: TestLab;
let host: LabHostRecord;
const stacks: TestStack[] = [];

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  host = lab.host(A);
});

afterAll(async () => {
  for (const s of stacks) await s.dispose();
  await lab?.stop();
});

async function stackWith(guests: string[]): Promise<TestStack> {
  const stack = await TestStack.create({
    programDir: fixture,
    config: { ...labStackConfig(host), guests: { value: JSON.stringify(guests) } },
  });
  stacks.push(stack);
  return stack;
}

async function sh(script: string): Promise<string> {
  const r = await lab.sh(A, script);
  if (r.exitCode !== 0) throw new Error(`${script} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

it("rejects hostile names in check, naming the property, before anything of theirs touches a host", async () => {
  const hostile = ["web1;reboot", "$(touch /tmp/tvd-pwned)", "-rf"];
  const stack = await stackWith(hostile);
  try {
    for (const op of [() => stack.preview(), () => stack.up()]) {
      const result = await op();
      expectExit(result, 1);
      // The engine stops at the first resource check refuses, and names it, the property and the value.
      expect(result.diagnostics.join("\n")).toMatch(
        /Vtpm resource '.*-vtpm': property name value \{.*-vtpm\} has a problem: must start with a letter or digit and hold only/,
      );
    }
    // The manager (a good name) may have been created; nothing a hostile name named was.
    const configs = (await sh("ls -A /etc/xen")).split("\n").filter((f) => f && f !== "vtpmmgr.cfg");
    expect(configs).toEqual([]);
    expect(await sh("ls -A /var/lib/xen/images")).toBe(SEEDED_IMAGES_LISTING);
    expect((await lab.sh(A, "test -e /tmp/tvd-pwned")).exitCode).toBe(1);
  } finally {
    expectExit(await stack.destroy());
  }
});

/** Every config on the host names disks that exist: nothing points at a missing disk. */
async function expectConfigsConsistent(): Promise<void> {
  const missing = await sh(
    "for c in /etc/xen/*.cfg; do grep -o 'target=[^\"]*\\|file:[^,]*' \"$c\" | sed 's/^target=//; s/^file://' | " +
      'while read -r d; do [ -e "$d" ] || echo "$c -> $d"; done; done',
  );
  expect(missing).toBe("");
  expect(await sh("find /etc/xen /var/lib/xen -name '*.partial.*'")).toBe("");
}

it("a failure in the middle of create leaves no orphan; the next up finishes with no image lost", async () => {
  const stack = await stackWith(["g1", "g2", "g3"]);
  // g2's guest fails to start, after its overlay was made and its config written.
  // Not anchored: the create runs under its vTPM's dom0 lock (sh -c <lock script> ... xl create).
  failNext(host, "'xl' 'create' '/etc/xen/g2\\.cfg'", 1);
  const u1 = await stack.up();
  expectExit(u1, 1);
  expect(pendingFailures(host)).toEqual([]);
  // The failed create removed what it made; g2's vTPM, made before, is kept.
  expect((await lab.sh(A, "test -e /etc/xen/g2.cfg || test -e /var/lib/xen/images/g2.qcow2")).exitCode).toBe(
    1,
  );
  await expectConfigsConsistent();
  const g2Uuid = (await sh("cat /etc/xen/g2-vtpm.cfg")).match(/uuid=([0-9a-f-]{36})/)?.[1];
  const g2Inode = await sh("stat -c %i /var/lib/xen/vtpm/g2-vtpm.img");

  // A new member's vTPM fails to start after its image was made: its image goes with it.
  await stack.setConfig("guests", JSON.stringify(["g1", "g2", "g3", "g4"]));
  failNext(host, "'xl' 'create' '/etc/xen/g4-vtpm\\.cfg'", 1);
  expectExit(await stack.up(), 1);
  expect(pendingFailures(host)).toEqual([]);
  expect(
    (await lab.sh(A, "test -e /etc/xen/g4-vtpm.cfg || test -e /var/lib/xen/vtpm/g4-vtpm.img")).exitCode,
  ).toBe(1);
  await expectConfigsConsistent();

  expectExit(await stack.up());
  expect(await lab.domainNames(A)).toEqual(
    ["g1", "g1-vtpm", "g2", "g2-vtpm", "g3", "g3-vtpm", "g4", "g4-vtpm", "vtpmmgr"].sort(),
  );
  const uuids = (await stack.outputs()).uuids as Record<string, string>;
  expect(uuids.g2).toBe(g2Uuid);
  expect(await sh("stat -c %i /var/lib/xen/vtpm/g2-vtpm.img")).toBe(g2Inode);
  await expectConfigsConsistent();
  expectExit(await stack.preview({ expectNoChanges: true, refresh: true }));
  expectExit(await stack.destroy());
});
