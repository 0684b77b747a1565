/**
 * Coalesced reads against a lab host (issue 14.2): a wave of reads of every resource on one host,
 * issued at once as the engine issues a refresh's reads, is one round trip (counted through
 * $PULUMI_TVD_STATS), and each drift is still found on its own resource and nowhere else. A read
 * that fails inside a batch fails alone.
 */
import { readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { Dom0 } from "../../provider/dom0/dom0";
import { readBatcherFor } from "../../provider/dom0/readBatcher";
import { hostFactsLifecycle } from "../../provider/resources/hostFacts/provider";
import * as guest from "../../provider/resources/guest/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as manager from "../../provider/resources/vtpmManager/provider";
import { connectionSchema } from "../../provider/transport/connection";
import { sessionFor } from "../../provider/transport/ssh";
import { viaEngine } from "../support/engine";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(180_000);

type Props = Record<string, unknown>;
type Read = (id: string, props: Props) => Promise<{ id?: string; props?: Props }>;

const A = "dom0-a";
const N = 5;
let lab: TestLab;
let stats: string;
/** Every resource on the host: its read, id and state as the last apply left it. */
const resources: Array<{ name: string; read: Read; id: string; state: Props }> = [];

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  stats = path.join(lab.stateDir, "stats.jsonl");
  process.env.PULUMI_TVD_STATS = stats;
  const connection = lab.connection(A);
  const kinds = {
    manager: viaEngine(manager.vtpmManagerLifecycle),
    vtpm: viaEngine(vtpm.vtpmLifecycle),
    guest: viaEngine(guest.guestLifecycle),
    facts: viaEngine(hostFactsLifecycle),
  };
  const add = async (name: string, lc: (typeof kinds)[keyof typeof kinds], inputs: Props) => {
    const { id, outs } = await lc.create({ connection, ...inputs });
    resources.push({ name, read: lc.read, id, state: outs });
  };
  await add("vtpmmgr", kinds.manager, { name: "vtpmmgr", readyTimeoutSec: 30 });
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      await add(`v${i}`, kinds.vtpm, { name: `v${i}`, manager: "vtpmmgr" });
      await add(`g${i}`, kinds.guest, {
        name: `g${i}`,
        baseImage: "/var/lib/xen/images/debian-base.raw",
        kernel: "/usr/lib/xen/boot/vmlinuz",
        memoryMiB: 64,
        vtpm: `v${i}`,
      });
    }),
  );
  // Last: its free space is that of the host as the others left it.
  await add("facts", kinds.facts, {});
});

afterAll(async () => {
  delete process.env.PULUMI_TVD_STATS;
  await lab?.stop();
});

/** The round trips the provider made since the last call, by step. */
function roundTrips(): string[] {
  let lines: string[] = [];
  try {
    lines = readFileSync(stats, "utf8").split("\n").filter(Boolean);
  } catch {
    // nothing recorded
  }
  rmSync(stats, { force: true });
  return lines
    .map((l) => JSON.parse(l) as { event: string; step?: string })
    .filter((e) => e.event === "exec")
    .map((e) => e.step!);
}

/** One wave: every resource read at once, as the engine's refresh does; the inputs each read shows changed. */
async function wave(): Promise<Record<string, string[]>> {
  const reads = await Promise.all(resources.map((r) => r.read(r.id, r.state)));
  const changed: Record<string, string[]> = {};
  resources.forEach((r, i) => {
    const props = reads[i].props ?? {};
    const keys = Object.keys({ ...r.state, ...props }).filter(
      (k) => JSON.stringify(props[k]) !== JSON.stringify(r.state[k]) && k !== "domid",
    );
    if (keys.length) changed[r.name] = keys.sort();
  });
  return changed;
}

it(`a wave of reads of ${2 * N + 2} resources on one host is one round trip`, async () => {
  roundTrips();
  expect(await wave()).toEqual({});
  expect(roundTrips()).toEqual(["sh -c READ_BATCH"]);
});

it("each drift is found on its own resource, in the same one round trip", async () => {
  // g0: its overlay deleted; v1: its config names another UUID; g2: memory edited in its
  // config; g3: stopped; v4: its key image deleted (the domain still runs, as after a mistake).
  await lab.check(A, "rm -f /var/lib/xen/images/g0.qcow2");
  await lab.check(A, "sed -i 's/uuid=[0-9a-f-]*/uuid=00000000-0000-4000-8000-000000000001/' /etc/xen/v1.cfg");
  await lab.check(A, 'sed -i "s/^memory *=.*/memory = 96/" /etc/xen/g2.cfg');
  expect((await lab.xl(A, "destroy", "g3")).exitCode).toBe(0);
  await lab.check(A, "rm -f /var/lib/xen/vtpm/v4.img");
  roundTrips();
  const changed = await wave();
  expect(roundTrips()).toEqual(["sh -c READ_BATCH"]);
  // The host's free space may move with the deleted files (or not: a running vTPM keeps its
  // deleted image's blocks); no other fact does.
  expect([undefined, ["xenDataFreeMiB"]]).toContainEqual(changed.facts);
  delete changed.facts;
  expect(changed).toEqual({
    g0: ["overlayBackingFile", "overlayPath"],
    v1: ["uuid"],
    g2: ["memoryMiB"],
    g3: ["running", "vtpmAttached"],
    v4: ["imagePath"],
  });
  const props = async (name: string) => {
    const r = resources.find((x) => x.name === name)!;
    return (await r.read(r.id, r.state)).props!;
  };
  expect((await props("g0")).overlayPath).toMatch(/\(missing on the host/);
  expect((await props("v1")).uuid).toMatch(/\(changed on the host/);
  expect((await props("g2")).memoryMiB).toBe(96);
  expect((await props("g3")).running).toBe(false);
  expect((await props("v4")).imagePath).toMatch(/\(missing on the host/);
});

it("a read that fails inside a batch fails alone; the others get their own results", async () => {
  const connection = connectionSchema.parse(lab.connection(A));
  const dom0 = await Dom0.connect(connection);
  const batcher = readBatcherFor(await sessionFor(connection));
  roundTrips();
  const [mgr, broken, missing, quoted] = await Promise.all([
    dom0.inspect("vtpmmgr", []),
    batcher.run(["sh", "-c", "echo 'cannot read it' >&2; exit 3"]),
    dom0.inspect("no-such-domain", [{ role: "config", path: "/etc/xen/no-such-domain.cfg" }]),
    batcher.run(["printf", "%s", "pulumi-tvd-read\t0\t0\t\t\n'$(id)'"]),
  ]);
  expect(roundTrips()).toEqual(["sh -c READ_BATCH"]);
  expect(mgr.domain.running).toBe(true);
  expect(broken).toEqual({ stdout: "", stderr: "cannot read it\n", exitCode: 3 });
  expect(missing.domain.running).toBe(false);
  expect(missing.files["/etc/xen/no-such-domain.cfg"]).toEqual({ exists: false });
  expect(quoted).toEqual({ stdout: "pulumi-tvd-read\t0\t0\t\t\n'$(id)'", stderr: "", exitCode: 0 });
});
