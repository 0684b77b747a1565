/**
 * The change classes of the three domain kinds, through their lifecycles' own check and diff:
 * pure, no host is touched. Defaults are filled by check and kept in state; drift found on the
 * host (a drift marker) is repaired in place; what loses keys needs allowStateReset.
 */
import { changesOf, driftMarker, unmarked, type Lifecycle } from "../../provider/core/define";
import { resetProgramDeclarations } from "../../provider/core/ownership";
import * as guest from "../../provider/resources/guest/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as manager from "../../provider/resources/vtpmManager/provider";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = {
  host: "10.0.0.5",
  port: 22,
  privateKey: key,
  hostKeyFingerprint: "SHA256:" + "a".repeat(43),
};

type Props = Record<string, unknown>;

async function checked(lc: Lifecycle, olds: Props, news: Props): Promise<Props> {
  const r = await lc.check(olds, news);
  if (r.failures?.length) throw new Error(JSON.stringify(r.failures));
  return r.inputs as Props;
}

/** Old inputs through check, then new ones (checked against the old): the diff the engine asks for. */
async function plan(
  def: { changes: object },
  lc: Lifecycle,
  base: Props,
  patch: Props,
  drift: Props = {},
): Promise<{ changed: Props; replaces?: string[]; refused?: string }> {
  const old = await checked(lc, {}, { ...base, owner: "p/s Test a" });
  // The state as a refresh leaves it: its drift in the stored inputs as in the outputs.
  const state = { ...old, ...drift };
  const r = await lc.check(state, { ...base, ...patch, owner: "p/s Test a" });
  const next = r.inputs as Props;
  const changed = Object.fromEntries(changesOf(def.changes as never, state, next));
  if (r.failures?.length) return { changed, refused: r.failures.map((f) => f.reason).join("; ") };
  try {
    const d = await lc.diff("id", state, next);
    return { changed, replaces: d.replaces };
  } catch (e) {
    return { changed, refused: (e as Error).message };
  }
}

beforeEach(() => resetProgramDeclarations());

describe("VtpmManager changes", () => {
  const base = { connection, name: "vtpmmgr" };
  const p = (patch: Props, drift?: Props) =>
    plan(manager.definition, manager.vtpmManagerLifecycle, base, patch, drift);

  it("sees nothing for the same inputs, defaults spelled out or not", async () => {
    expect((await p({ memoryMiB: 16, iomem: ["fed40,5"] })).changed).toEqual({});
  });

  it.each([{ imageSizeMiB: 32 }, { imagePath: "/var/lib/xen/vtpm/other.img" }])(
    "refuses a new image (%j) unless allowStateReset: every vTPM's keys would be lost",
    async (patch) => {
      expect((await p(patch)).refused).toMatch(
        /keys of every vTPM it serves would be lost; set allowStateReset/,
      );
      expect((await p({ ...patch, allowStateReset: true })).refused).toBeUndefined();
    },
  );

  it("keeps the derived image path on a rename, and a rename still resets (a new manager)", async () => {
    const r = await p({ name: "vtpmmgr2" });
    expect(r.changed).toEqual({ name: "resetState" });
  });

  it("memory edited by hand on the host is a restart-class change shown on memoryMiB", async () => {
    const r = await p({}, { memoryMiB: 32 });
    expect(r).toMatchObject({ changed: { memoryMiB: "restart" }, replaces: [] });
  });

  it("a config that vanished is repaired in place, shown on configDir", async () => {
    const r = await p({}, { configDir: driftMarker("/etc/xen", "missing", "/etc/xen/vtpmmgr.cfg") });
    expect(r).toMatchObject({ changed: { configDir: "inPlace" }, replaces: [] });
  });

  it("an image that vanished is lost state: refused without allowStateReset", async () => {
    const gone = { imagePath: driftMarker("/var/lib/xen/vtpm/vtpmmgr.img", "missing") };
    expect((await p({}, gone)).refused).toMatch(/allowStateReset/);
    expect(await p({ allowStateReset: true }, gone)).toMatchObject({ replaces: ["imagePath"] });
  });

  it("the engine's diff that shows a refresh (read-back as olds, stored inputs as news) refuses nothing; check does", async () => {
    const lc = manager.vtpmManagerLifecycle;
    const old = await checked(lc, {}, { ...base, owner: "p/s Test a" });
    const readBack = { ...old, imagePath: driftMarker("/var/lib/xen/vtpm/vtpmmgr.img", "missing") };
    expect(await lc.diff("vtpmmgr", readBack, old)).toMatchObject({ changes: true, replaces: ["imagePath"] });
    // The program's inputs against the refreshed state: refused by check, naming the input.
    const r = await lc.check(readBack, { ...base, owner: "p/s Test a" });
    expect(r.failures).toEqual([{ property: "imagePath", reason: expect.stringMatching(/allowStateReset/) }]);
    const allowed = await lc.check(readBack, { ...base, allowStateReset: true, owner: "p/s Test a" });
    expect(allowed.failures).toBeUndefined();
  });
});

describe("Vtpm changes", () => {
  const base = { connection, name: "web1-vtpm", manager: "vtpmmgr" };
  const p = (patch: Props, drift?: Props) => plan(vtpm.definition, vtpm.vtpmLifecycle, base, patch, drift);

  it("generates the UUID once, in check, and keeps it", async () => {
    const old = await checked(vtpm.vtpmLifecycle, {}, { ...base, owner: "p/s Test a" });
    expect(old.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const next = await checked(vtpm.vtpmLifecycle, old, { ...base, owner: "p/s Test a" });
    expect(next.uuid).toBe(old.uuid);
    expect((await p({})).changed).toEqual({});
  });

  it("a rename keeps the image: a restart, not a reset", async () => {
    expect(await p({ name: "web1-vtpm-b" })).toMatchObject({ changed: { name: "restart" }, replaces: [] });
  });

  it.each([{ uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839" }, { imageSizeMiB: 16 }])(
    "refuses %j unless allowStateReset",
    async (patch) => {
      expect((await p(patch)).refused).toMatch(/keys would be lost; set allowStateReset/);
    },
  );

  it("a UUID edited in the config is repaired in place, not a reset", async () => {
    const r = await p({}, { uuid: driftMarker("x", "changed") });
    expect(Object.values(r.changed)).toEqual(["resetState"]);
    const old = await checked(vtpm.vtpmLifecycle, {}, { ...base, owner: "p/s Test a" });
    const drift = { ...old, uuid: driftMarker(String(old.uuid), "changed", "the config says 1") };
    expect(Object.fromEntries(changesOf(vtpm.definition.changes, drift, old))).toEqual({ uuid: "inPlace" });
  });

  it("changes only bookkeeping for deletionPolicy", async () => {
    expect(await p({ deletionPolicy: "retain" })).toMatchObject({
      changed: { deletionPolicy: "inPlace" },
      replaces: [],
    });
  });
});

describe("Guest changes", () => {
  const base = { connection, name: "web1", baseImage: "/srv/a.raw", kernel: "/boot/vmlinuz" };
  const p = (patch: Props, drift?: Props) => plan(guest.definition, guest.guestLifecycle, base, patch, drift);

  it.each([{ name: "web2" }, { baseImage: "/srv/b.raw" }, { overlayPath: "/var/lib/xen/images/x.qcow2" }])(
    "replaces for %j",
    async (patch) => {
      expect((await p(patch)).replaces?.length).toBe(1);
    },
  );

  it.each([{ memoryMiB: 1024 }, { vcpus: 2 }, { cmdline: "quiet" }, { vifs: [{ bridge: "xenbr0" }] }])(
    "restarts for %j",
    async (patch) => {
      expect(Object.values((await p(patch)).changed)).toEqual(["restart"]);
    },
  );

  it("a missing overlay is repaired in place, not a replace", async () => {
    const r = await p({}, { overlayPath: driftMarker("/var/lib/xen/images/web1.qcow2", "missing") });
    expect(r).toMatchObject({ changed: { overlayPath: "inPlace" }, replaces: [] });
  });

  it("an overlay rebased by hand is planned on baseImage (regression: overlay rebased by hand)", async () => {
    const r = await p(
      {},
      { baseImage: driftMarker("/srv/a.raw", "foreign", "the overlay is backed by /srv/x.raw") },
    );
    expect(r).toMatchObject({ changed: { baseImage: "inPlace" }, replaces: [] });
  });

  it("refuses a guest and a manager of one program on one domain name (regression: guest named as the manager)", async () => {
    await checked(
      manager.vtpmManagerLifecycle,
      {},
      { connection, name: "vtpmmgr", owner: "p/s VtpmManager mgr" },
    );
    const r = await guest.guestLifecycle.check({}, { ...base, name: "vtpmmgr", owner: "p/s Guest g" });
    expect(r.failures?.map((f) => f.reason).join()).toMatch(
      /vtpmmgr .* also declared by p\/s VtpmManager mgr/,
    );
  });

  it("refuses a guest disk that is a vTPM's key image in the same program (regression: extraDisks on a key image)", async () => {
    await checked(vtpm.vtpmLifecycle, {}, { connection, name: "v", manager: "m", owner: "p/s Vtpm v" });
    const r = await guest.guestLifecycle.check(
      {},
      { ...base, owner: "p/s Guest g", extraDisks: [{ target: "/var/lib/xen/vtpm/v.img", vdev: "xvdb" }] },
    );
    expect(r.failures?.map((f) => f.property)).toEqual(["extraDisks.0.target"]);
  });
});

it("a drift marker whose detail holds parentheses still reads back as its declared value", () => {
  const m = driftMarker(
    "sec-01",
    "missing",
    "its vTPM presents another EK (sha256:ab, certified sha256:cd): reset",
  );
  expect(unmarked(m)).toBe("sec-01");
  expect(unmarked(driftMarker("/var/lib/xen/a (b).img", "changed", "x (y)"))).toBe("/var/lib/xen/a (b).img");
});

it("check names an input the kind does not have (a misspelling)", async () => {
  const r = await guest.guestLifecycle.check(
    {},
    {
      connection,
      name: "web9",
      baseImage: "/srv/a.raw",
      kernel: "/boot/vmlinuz",
      memoryMb: 64,
      owner: "p/s Test z",
    },
  );
  expect(r.failures).toEqual([
    { property: "memoryMb", reason: "is not an input of Guest; remove it or check its spelling" },
  ]);
});
