/**
 * The Vtpm and Guest lifecycles driven directly (as the engine would) against a lab host: adopt
 * names every difference, deletion policies keep or remove keys as declared, a vTPM's identity
 * survives restarts, a lost image or a UUID change is refused, and a guest restart keeps its
 * overlay.
 */
import { guestLifecycle } from "../../provider/resources/guest/provider";
import { vtpmLifecycle } from "../../provider/resources/vtpm/provider";
import { vtpmManagerLifecycle } from "../../provider/resources/vtpmManager/provider";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";
let connection: Record<string, unknown>;
type Props = Record<string, unknown>;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  connection = lab.connection(A);
  await vtpmManagerLifecycle.create({ connection, name: "vtpmmgr", readyTimeoutSec: 30 });
});

afterAll(async () => lab?.stop());

const sh = async (script: string, ...args: string[]) => {
  const r = await lab.sh(A, script, ...args);
  return r.stdout;
};
const vtpmInputs = (name: string, extra: Props = {}): Props => ({
  connection,
  name,
  manager: "vtpmmgr",
  ...extra,
});
const guestInputs = (name: string, extra: Props = {}): Props => ({
  connection,
  name,
  baseImage: "/var/lib/xen/images/debian-base.raw",
  kernel: "/usr/lib/xen/boot/vmlinuz",
  memoryMiB: 64,
  ...extra,
});

/** What the engine does on refresh: read, keeping the outputs as the new state. */
async function refreshed(lifecycle: typeof vtpmLifecycle | typeof guestLifecycle, id: string, state: Props) {
  const r = await lifecycle.read(id, state);
  return (r.props ?? {}) as Props;
}

describe("Vtpm", () => {
  it("keeps the UUID generated at create across reads and restarts", async () => {
    const { id, outs } = await vtpmLifecycle.create(vtpmInputs("keep-vtpm"));
    const uuid = outs.uuid as string;
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(outs.runningUuid).toBe(uuid);
    // A memory change restarts the domain (no guest uses it) and keeps image and UUID.
    const inode = await sh("stat -c %i /var/lib/xen/vtpm/keep-vtpm.img");
    const news = vtpmInputs("keep-vtpm", { memoryMiB: 16 });
    const diff = await vtpmLifecycle.diff(id, outs, news);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs: after } = await vtpmLifecycle.update(id, outs, news);
    expect(after).toMatchObject({ uuid, runningUuid: uuid, memoryMiB: 16, running: true });
    expect(await sh("stat -c %i /var/lib/xen/vtpm/keep-vtpm.img")).toBe(inode);
    expect((await refreshed(vtpmLifecycle, id, after)).uuid).toBe(uuid);
  });

  it("refuses a UUID change without allowStateReset, and a lost image, with the fix", async () => {
    const { id, outs } = await vtpmLifecycle.create(vtpmInputs("guard-vtpm"));
    await expect(
      vtpmLifecycle.diff(
        id,
        outs,
        vtpmInputs("guard-vtpm", { uuid: "00000000-0000-4000-8000-00000000000a" }),
      ),
    ).rejects.toThrow(/changing uuid of vTPM guard-vtpm .* keys would be lost; set allowStateReset: true/);
    expect(
      await vtpmLifecycle.diff(
        id,
        outs,
        vtpmInputs("guard-vtpm", { uuid: "00000000-0000-4000-8000-00000000000a", allowStateReset: true }),
      ),
    ).toMatchObject({ replaces: ["uuid"], deleteBeforeReplace: true });

    await lab.xl(A, "destroy", "guard-vtpm");
    await sh("rm /var/lib/xen/vtpm/guard-vtpm.img");
    const state = await refreshed(vtpmLifecycle, id, outs);
    expect(state.imagePresent).toBe(false);
    await expect(vtpmLifecycle.diff(id, state, vtpmInputs("guard-vtpm"))).rejects.toThrow(
      "vTPM image missing: its keys are lost; set allowStateReset to create a new one",
    );
    await vtpmLifecycle.delete(id, state);
  });

  it("refuses to stop or destroy a vTPM while its guest runs, naming the guest", async () => {
    const { id, outs } = await vtpmLifecycle.create(vtpmInputs("busy-vtpm"));
    const guest = await guestLifecycle.create(guestInputs("busy", { vtpm: "busy-vtpm" }));
    await expect(vtpmLifecycle.delete(id, outs)).rejects.toThrow(
      /refusing to destroy vTPM busy-vtpm .*vTPM backend: busy\./,
    );
    await expect(vtpmLifecycle.update(id, outs, vtpmInputs("busy-vtpm", { memoryMiB: 16 }))).rejects.toThrow(
      /refusing to restart vTPM busy-vtpm .*: busy\./,
    );
    await guestLifecycle.delete(guest.id, guest.outs);
    await vtpmLifecycle.delete(id, outs);
  });

  it.each([
    ["archive", "gone from its place, moved to the archive"],
    ["retain", "left in place"],
    ["destroy", "removed"],
  ])("deletionPolicy %s: the image is %s", async (policy) => {
    const name = `del-${policy}`;
    const { id, outs } = await vtpmLifecycle.create(vtpmInputs(name, { deletionPolicy: policy }));
    await vtpmLifecycle.delete(id, outs);
    await vtpmLifecycle.delete(id, outs); // idempotent
    expect(await sh(`xl domid ${name} 2>/dev/null || echo gone`)).toBe("gone\n");
    expect(await sh(`test -e /etc/xen/${name}.cfg || echo gone`)).toBe("gone\n");
    const inPlace = (await sh(`test -e /var/lib/xen/vtpm/${name}.img && echo kept`)) === "kept\n";
    const archived = (await sh(`ls /var/lib/xen/pulumi-tvd/archive | grep -c "^${name}.img" || true`)).trim();
    expect({ inPlace, archived }).toEqual({
      inPlace: policy === "retain",
      archived: policy === "archive" ? "1" : "0",
    });
  });

  it("adopts an existing vTPM with its own UUID, and names every differing field otherwise", async () => {
    const made = await vtpmLifecycle.create(vtpmInputs("old-vtpm", { hwInitPcr: "0-7" }));
    const uuid = made.outs.uuid as string;
    // Another stack takes it over: without a UUID it keeps the one its keys are bound to.
    const adopted = await vtpmLifecycle.create(vtpmInputs("old-vtpm", { hwInitPcr: "0-7", adopt: true }));
    expect(adopted.outs.uuid).toBe(uuid);
    await expect(
      vtpmLifecycle.create(vtpmInputs("old-vtpm", { memoryMiB: 32, logLevel: "debug", adopt: true })),
    ).rejects.toThrow(
      /cannot adopt vTPM old-vtpm .*differs in extra.*differs in memory|differs in memory.*extra/,
    );
    await expect(vtpmLifecycle.create(vtpmInputs("never-made", { adopt: true }))).rejects.toThrow(
      /cannot adopt vTPM never-made .*image \/var\/lib\/xen\/vtpm\/never-made\.img does not exist/,
    );
  });
});

describe("Guest", () => {
  it("restarts for a memory change and keeps its overlay; a new base image is a replace", async () => {
    await vtpmLifecycle.create(vtpmInputs("r1-vtpm"));
    const { id, outs } = await guestLifecycle.create(guestInputs("r1", { vtpm: "r1-vtpm" }));
    expect(outs).toMatchObject({ running: true, vtpmAttached: true, overlayPresent: true });
    await sh("printf DATA | dd of=/var/lib/xen/images/r1.qcow2 bs=1 seek=1048576 conv=notrunc status=none");
    const news = guestInputs("r1", { vtpm: "r1-vtpm", memoryMiB: 96 });
    expect(await guestLifecycle.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const { outs: after } = await guestLifecycle.update(id, outs, news);
    expect(after.domid).not.toBe(outs.domid);
    expect(after).toMatchObject({ memoryMiB: 96, running: true, vtpmAttached: true });
    expect(await sh("dd if=/var/lib/xen/images/r1.qcow2 bs=1 skip=1048576 count=4 status=none")).toBe("DATA");
    expect(
      await guestLifecycle.diff(id, after, guestInputs("r1", { baseImage: "/var/lib/xen/images/other.raw" })),
    ).toMatchObject({ replaces: ["baseImage"], deleteBeforeReplace: true });
  });

  it("says the fix when the base image is missing, and leaves nothing behind", async () => {
    await expect(
      guestLifecycle.create(guestInputs("nobase", { baseImage: "/var/lib/xen/images/missing.raw" })),
    ).rejects.toThrow(/base image \/var\/lib\/xen\/images\/missing\.raw does not exist on .*fix baseImage/);
    expect(await sh("ls /etc/xen/nobase.cfg /var/lib/xen/images/nobase.qcow2 2>/dev/null || true")).toBe("");
  });

  it("adopts an existing guest, and names every differing field otherwise", async () => {
    const { outs } = await guestLifecycle.create(guestInputs("g-old", { vcpus: 2 }));
    const adopted = await guestLifecycle.create(guestInputs("g-old", { vcpus: 2, adopt: true }));
    expect(adopted.outs).toMatchObject({ running: true, domid: outs.domid });
    await expect(
      guestLifecycle.create(guestInputs("g-old", { vcpus: 1, memoryMiB: 80, adopt: true })),
    ).rejects.toThrow(
      /cannot adopt guest g-old .*config \/etc\/xen\/g-old\.cfg differs in (memory|vcpus).*differs in (memory|vcpus)/,
    );
  });

  it("delete is idempotent and removes config and overlay", async () => {
    const { id, outs } = await guestLifecycle.create(guestInputs("gone1"));
    await guestLifecycle.delete(id, outs);
    await guestLifecycle.delete(id, outs);
    expect(await sh("ls /etc/xen/gone1.cfg /var/lib/xen/images/gone1.qcow2 2>/dev/null || true")).toBe("");
    expect((await guestLifecycle.read(id, outs)).id).toBeUndefined();
  });
});
