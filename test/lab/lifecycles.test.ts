/**
 * The Vtpm and Guest lifecycles driven directly (as the engine would) against a lab host: adopt
 * names every difference, deletion policies keep or remove keys as declared, a vTPM's identity
 * survives restarts, a lost image or a UUID change is refused, and a guest restart keeps its
 * overlay.
 */
import * as guest from "../../provider/resources/guest/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as manager from "../../provider/resources/vtpmManager/provider";
import { viaEngine } from "../support/engine";
import { startTestLab, type TestLab } from "../support/lab";

const guestLifecycle = viaEngine(guest.guestLifecycle);
const vtpmLifecycle = viaEngine(vtpm.vtpmLifecycle);
const vtpmManagerLifecycle = viaEngine(manager.vtpmManagerLifecycle);

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
    // Check refuses it, as the engine asks before any diff (diff also shows refreshes: it refuses nothing).
    const refusal = (news: Record<string, unknown>, olds: Record<string, unknown> = outs!) =>
      vtpm.vtpmLifecycle
        .check(olds, news)
        .then((r) =>
          (r as { failures?: { property: string; reason: string }[] }).failures
            ?.map((f) => `${f.property}: ${f.reason}`)
            .join("\n"),
        );
    expect(await refusal(vtpmInputs("guard-vtpm", { uuid: "00000000-0000-4000-8000-00000000000a" }))).toMatch(
      /^uuid: changing uuid of vTPM guard-vtpm .* keys would be lost; set allowStateReset: true/,
    );
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
    expect(state.imagePath).toMatch(/missing on the host/);
    expect(await refusal(vtpmInputs("guard-vtpm"), state)).toMatch(
      /^imagePath: .*keys would be lost; set allowStateReset: true .*a missing image at \/var\/lib\/xen\/vtpm\/guard-vtpm.img means they are lost already/,
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
    if (policy === "retain") {
      // A retained key image stays recorded as the vTPM's: no other resource may claim it.
      await expect(
        viaEngine(vtpm.vtpmLifecycle, "lab/other").create(
          vtpmInputs("thief", { imagePath: `/var/lib/xen/vtpm/${name}.img` }),
        ),
      ).rejects.toThrow(
        new RegExp(
          `vTPM key image /var/lib/xen/vtpm/${name}.img already exists on .*owned by lab/test ${name}`,
        ),
      );
    }
    if (policy === "archive") {
      // The archive entry stays recorded as the vTPM's: nothing else may claim or overwrite it.
      const records = await sh(
        'for r in /var/lib/xen/pulumi-tvd/owners/*; do sed -n 1p "$r" | grep -q "^file:/var/lib/xen/pulumi-tvd/archive/$1" && sed -n 2,3p "$r"; done; true',
        `${name}.img`,
      );
      expect(records).toBe(`lab/test ${name}\narchived vTPM key image\n`);
    }
  });

  it("deletes only what it owns: a guest's overlay and a destroy-policy image recorded as another's survive, byte for byte", async () => {
    const v = await vtpmLifecycle.create(vtpmInputs("own-vtpm", { deletionPolicy: "destroy" }));
    const g = await guestLifecycle.create(guestInputs("own", { vtpm: "own-vtpm" }));
    const files = ["/var/lib/xen/images/own.qcow2", "/var/lib/xen/vtpm/own-vtpm.img"];
    // Another stack's records now name them (as after a rename that kept the paths elsewhere).
    for (const f of files)
      await sh(
        'for r in /var/lib/xen/pulumi-tvd/owners/*; do [ "$(sed -n 1p "$r")" = "file:$1" ] && sed -i "2s/.*/lab\\/other Someone/" "$r"; done; true',
        f,
      );
    const sums = await sh('sha256sum "$@"', ...files);
    await guestLifecycle.delete(g.id, g.outs);
    await vtpmLifecycle.delete(v.id, v.outs);
    expect(await sh('sha256sum "$@"', ...files)).toBe(sums);
    expect(
      await sh("xl domid own 2>/dev/null || echo gone; xl domid own-vtpm 2>/dev/null || echo gone"),
    ).toBe("gone\ngone\n");
    expect(
      await sh("test -e /etc/xen/own.cfg || echo gone; test -e /etc/xen/own-vtpm.cfg || echo gone"),
    ).toBe("gone\ngone\n");
    await sh('rm -f "$@"', ...files);
  });

  it("adopts an existing vTPM with its own UUID, and names every differing field otherwise", async () => {
    const made = await vtpmLifecycle.create(vtpmInputs("old-vtpm", { hwInitPcr: "0-7" }));
    const uuid = made.outs.uuid as string;
    // Its stack lets it go (records removed, everything left on the host), and another stack
    // takes it over, declaring the UUID its keys are bound to.
    await sh("rm -f /var/lib/xen/pulumi-tvd/owners/*");
    const other = viaEngine(vtpm.vtpmLifecycle, "lab/other");
    const adopted = await other.create(vtpmInputs("old-vtpm", { hwInitPcr: "0-7", uuid, adopt: true }));
    expect(adopted.outs.uuid).toBe(uuid);
    await expect(
      other.create(vtpmInputs("old-vtpm", { memoryMiB: 32, logLevel: "debug", uuid, adopt: true })),
    ).rejects.toThrow(/cannot adopt vTPM old-vtpm .*(logLevel.*memoryMiB|memoryMiB.*logLevel)/);
    // Without its UUID, adopting would bind the keys to a new identity: named as the difference.
    await expect(other.create(vtpmInputs("old-vtpm", { hwInitPcr: "0-7", adopt: true }))).rejects.toThrow(
      /cannot adopt vTPM old-vtpm .*uuid: .*changed on the host/,
    );
    await expect(other.create(vtpmInputs("never-made", { adopt: true }))).rejects.toThrow(
      /cannot adopt vTPM never-made .*imagePath: \/var\/lib\/xen\/vtpm\/never-made\.img \(missing on the host\)/,
    );
  });
});

describe("Guest", () => {
  it("reads a vTPM detached out of band as no longer attached, and a rebased overlay as foreign", async () => {
    // Both come from the batch's `xl list -l` and the overlay's qcow2 header, not from `xl
    // vtpm-list` or `qemu-img info`: libxl builds a domain's listed devices from xenstore.
    await vtpmLifecycle.create(vtpmInputs("d1-vtpm"));
    const { id, outs } = await guestLifecycle.create(guestInputs("d1", { vtpm: "d1-vtpm" }));
    expect(outs).toMatchObject({
      vtpmAttached: true,
      overlayBackingFile: "/var/lib/xen/images/debian-base.raw",
    });
    expect((await lab.xl(A, "vtpm-detach", "d1", "0")).exitCode).toBe(0);
    expect(await refreshed(guestLifecycle, id, outs)).toMatchObject({ running: true, vtpmAttached: false });
    await sh("qemu-img rebase -u -b /var/lib/xen/images/elsewhere.raw -F raw /var/lib/xen/images/d1.qcow2");
    const rebased = await refreshed(guestLifecycle, id, outs);
    expect(rebased.overlayBackingFile).toBe("/var/lib/xen/images/elsewhere.raw");
    expect(await guestLifecycle.diff(id, rebased, guestInputs("d1", { vtpm: "d1-vtpm" }))).toMatchObject({
      changes: true,
    });
  });

  it("restarts for a memory change and keeps its overlay; a new base image is a replace", async () => {
    await vtpmLifecycle.create(vtpmInputs("r1-vtpm"));
    const { id, outs } = await guestLifecycle.create(guestInputs("r1", { vtpm: "r1-vtpm" }));
    expect(outs).toMatchObject({
      running: true,
      vtpmAttached: true,
      overlayPath: "/var/lib/xen/images/r1.qcow2",
    });
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
    // A config edited by hand while the domain matches it is rewritten, without a restart.
    await sh("sed -i 's/^memory = .*/memory = 200/' /etc/xen/r1.cfg");
    const edited = await refreshed(guestLifecycle, id, after);
    expect(edited.memoryMiB).toBe(200);
    const { outs: repaired } = await guestLifecycle.update(id, edited, news);
    expect(repaired).toMatchObject({ memoryMiB: 96, domid: after.domid });
  });

  it("says the fix when the base image is missing, and leaves nothing behind", async () => {
    await expect(
      guestLifecycle.create(guestInputs("nobase", { baseImage: "/var/lib/xen/images/missing.raw" })),
    ).rejects.toThrow(/base image \/var\/lib\/xen\/images\/missing\.raw does not exist on .*fix baseImage/);
    expect(await sh("ls /etc/xen/nobase.cfg /var/lib/xen/images/nobase.qcow2 2>/dev/null || true")).toBe("");
  });

  it("adopts an existing guest, and names every differing field otherwise", async () => {
    const { outs } = await guestLifecycle.create(guestInputs("g-old", { vcpus: 2 }));
    // Taken over by another stack (adopt), and refused without adopt, naming the owner.
    const other = viaEngine(guest.guestLifecycle, "lab/other");
    await expect(other.create(guestInputs("g-old", { vcpus: 2 }))).rejects.toThrow(
      /guest domain g-old already exists on .*owned by lab\/test g-old/,
    );
    const free = await sh("rm -f /var/lib/xen/pulumi-tvd/owners/* && echo ok");
    expect(free).toBe("ok\n");
    const adopted = await other.create(guestInputs("g-old", { vcpus: 2, adopt: true }));
    expect(adopted.outs).toMatchObject({ running: true, domid: outs.domid });
    await expect(
      viaEngine(guest.guestLifecycle, "lab/third").create(
        guestInputs("g-old", { vcpus: 1, memoryMiB: 80, adopt: true }),
      ),
    ).rejects.toThrow(/owned by lab\/other g-old/);
  });

  it("delete is idempotent and removes config and overlay", async () => {
    const { id, outs } = await guestLifecycle.create(guestInputs("gone1"));
    await guestLifecycle.delete(id, outs);
    await guestLifecycle.delete(id, outs);
    expect(await sh("ls /etc/xen/gone1.cfg /var/lib/xen/images/gone1.qcow2 2>/dev/null || true")).toBe("");
    expect((await guestLifecycle.read(id, outs)).id).toBeUndefined();
  });
});
