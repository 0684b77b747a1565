/**
 * Ownership records on a real lab dom0 (provider/core/ownership.ts): one owner per artifact,
 * all or nothing, never taking another's, never adopting without being asked, and exactly one
 * winner when many claim at once (two stacks, or one stack run twice, on one dom0).
 */
import type { Artifact } from "../../provider/core/ownership";
import { OwnershipConflictError } from "../../provider/core/ownership";
import { Dom0 } from "../../provider/dom0/dom0";
import { connectionSchema } from "../../provider/transport/connection";
import { HOSTILE } from "../support/hostile";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
let dom0: Dom0;
const A = "dom0-a";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  dom0 = await Dom0.connect(connectionSchema.parse(lab.connection(A)));
});

afterAll(async () => lab?.stop());

const file = (name: string): Artifact => ({
  type: "file",
  name,
  role: "vTPM key image",
  property: "imagePath",
});
const domain = (name: string): Artifact => ({ type: "domain", name, role: "guest domain", property: "name" });

it("records one owner per artifact; another owner is refused with the owner named, and cannot release it", async () => {
  expect(await dom0.claim("p/one Vtpm a", [file("/var/lib/xen/vtpm/own-a.img")], false)).toEqual([
    "file:/var/lib/xen/vtpm/own-a.img",
  ]);
  // Claiming again what one owns records nothing new.
  expect(await dom0.claim("p/one Vtpm a", [file("/var/lib/xen/vtpm/own-a.img")], false)).toEqual([]);
  const refusal = dom0.claim("p/two SeedImage s", [file("/var/lib/xen/vtpm/own-a.img")], true);
  await expect(refusal).rejects.toThrow(OwnershipConflictError);
  await expect(refusal).rejects.toThrow(
    /vTPM key image \/var\/lib\/xen\/vtpm\/own-a.img already exists on .*owned by p\/one Vtpm a/,
  );
  await dom0.release("p/two SeedImage s", ["file:/var/lib/xen/vtpm/own-a.img"]);
  expect(
    (await dom0.owners([file("/var/lib/xen/vtpm/own-a.img")])).get("file:/var/lib/xen/vtpm/own-a.img"),
  ).toMatchObject({
    owner: "p/one Vtpm a",
    role: "vTPM key image",
  });
  await dom0.release("p/one Vtpm a", ["file:/var/lib/xen/vtpm/own-a.img"]);
  expect(
    (await dom0.owners([file("/var/lib/xen/vtpm/own-a.img")])).get("file:/var/lib/xen/vtpm/own-a.img")?.owner,
  ).toBeUndefined();
});

it("refuses what exists without a record unless adopt, naming the fix", async () => {
  await lab.sh(A, "mkdir -p /var/lib/xen/images && echo mine > /var/lib/xen/images/by-hand.img");
  await expect(dom0.claim("p/one Guest g", [file("/var/lib/xen/images/by-hand.img")], false)).rejects.toThrow(
    /no ownership record\); set adopt: true to take it over, or choose another imagePath/,
  );
  expect(await dom0.claim("p/one Guest g", [file("/var/lib/xen/images/by-hand.img")], true)).toHaveLength(1);
  expect((await lab.sh(A, "cat /var/lib/xen/images/by-hand.img")).stdout).toBe("mine\n");
});

it("is all or nothing: one conflict records none of the others", async () => {
  await dom0.claim("p/one Guest x", [domain("taken")], false);
  await expect(
    dom0.claim("p/two Guest y", [domain("free-1"), domain("taken"), domain("free-2")], false),
  ).rejects.toThrow(/guest domain taken already exists/);
  const seen = await dom0.owners([domain("free-1"), domain("free-2")]);
  expect([...seen.values()].map((r) => r.owner)).toEqual([undefined, undefined]);
});

it("gives exactly one of many concurrent claims the artifact (two stacks, or one stack run twice)", async () => {
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, (_, i) =>
      dom0.claim(`p/s${i} Vtpm v`, [file("/var/lib/xen/vtpm/raced.img")], false),
    ),
  );
  expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  const losers = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  expect(losers).toHaveLength(7);
  for (const l of losers) expect(String(l.reason)).toMatch(/owned by p\/s\d Vtpm v/);
});

it.each(HOSTILE.slice(0, 12))("keeps a hostile path as one record, byte for byte: %j", async (hostile) => {
  const name = `/var/lib/xen/images/${hostile.replace(/\//g, "_").replace(/\0/g, "")}`;
  const owner = "p/one SeedImage hostile";
  await dom0.claim(owner, [file(name)], true);
  expect((await dom0.owners([file(name)])).get(`file:${name}`)?.owner).toBe(owner);
  await dom0.release(owner, [`file:${name}`]);
  expect((await dom0.owners([file(name)])).get(`file:${name}`)?.owner).toBeUndefined();
});
