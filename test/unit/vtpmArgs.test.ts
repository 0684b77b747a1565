import { vtpmSchema } from "../../provider/resources/vtpm/args";
import { diffVtpm } from "../../provider/resources/vtpm/diff";
import { validate } from "../../provider/validation";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };
const UUID = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";

function inputs(patch: Record<string, unknown> = {}) {
  const r = validate(vtpmSchema, { connection, name: "web1-vtpm", manager: "vtpmmgr", ...patch });
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return r.value;
}

describe("Vtpm inputs", () => {
  it("fills the documented defaults", () => {
    expect(inputs()).toMatchObject({
      imageSizeMiB: 8,
      memoryMiB: 8,
      kernel: "/usr/lib/xen/boot/vtpm-stubdom.gz",
      deletionPolicy: "archive",
      allowStateReset: false,
      allowedRoots: ["/var/lib/xen", "/etc/xen"],
    });
  });

  it("reports every bad property at once, with the fix", () => {
    const r = validate(vtpmSchema, {
      connection,
      name: "web1;reboot",
      manager: "vtpmmgr",
      imageSizeMiB: 0,
      imagePath: "/root/steal.img",
      uuid: "not-a-uuid",
      deletionPolicy: "shred",
    });
    expect(r.ok).toBe(false);
    const props = !r.ok ? r.failures.map((f) => f.property).sort() : [];
    expect(props).toEqual(["deletionPolicy", "imagePath", "imageSizeMiB", "name", "uuid"]);
  });

  it("keeps derived and explicit paths inside allowedRoots", () => {
    const r = validate(vtpmSchema, { connection, name: "a", manager: "m", imagePath: "/root/a.img" });
    expect(!r.ok && r.failures[0]).toMatchObject({
      property: "imagePath",
      reason: expect.stringMatching(
        /\/root\/a\.img: must be under \/var\/lib\/xen or \/etc\/xen \(set allowedRoots/,
      ),
    });
    const ok = validate(vtpmSchema, {
      connection,
      name: "a",
      manager: "m",
      imagePath: "/srv/v/a.img",
      allowedRoots: ["/srv/v", "/etc/xen"],
    });
    expect(ok.ok).toBe(true);
  });
});

describe("diffVtpm", () => {
  const old = { inputs: inputs(), uuid: UUID };

  it("sees no change when the UUID input stays unset (the generated one is kept)", () => {
    expect(diffVtpm(old, inputs())).toEqual({
      changed: [],
      replaces: [],
      restart: false,
      refused: undefined,
    });
  });

  it("sees no change when the UUID input names the UUID the vTPM has", () => {
    expect(diffVtpm(old, inputs({ uuid: UUID })).changed).toEqual([]);
  });

  it.each([
    [{ uuid: "00000000-0000-4000-8000-000000000000" }, ["uuid"]],
    [{ imagePath: "/var/lib/xen/vtpm/other.img" }, ["imagePath"]],
    [{ imageSizeMiB: 16 }, ["imageSizeMiB"]],
    [{ connection: { ...connection, host: "10.0.0.6" } }, ["host"]],
  ])("refuses %j without allowStateReset: the keys would be lost", (patch, replaces) => {
    const d = diffVtpm(old, inputs(patch));
    expect(d.replaces).toEqual(replaces);
    expect(d.refused).toMatch(/keys would be lost; set allowStateReset: true to allow it/);
    const allowed = diffVtpm(old, inputs({ ...patch, allowStateReset: true }));
    expect(allowed.refused).toBeUndefined();
    expect(allowed.replaces).toEqual(replaces);
  });

  it.each([{ memoryMiB: 16 }, { manager: "vtpmmgr2" }, { logLevel: "debug" }, { hwInitPcr: "0-7" }])(
    "restarts the domain and keeps the image for %j",
    (patch) => {
      const d = diffVtpm(old, inputs(patch));
      expect(d).toMatchObject({ replaces: [], restart: true, refused: undefined });
    },
  );

  it("renaming keeps an explicitly placed image (a restart, not a reset)", () => {
    const placed = { inputs: inputs({ imagePath: "/var/lib/xen/vtpm/keep.img" }), uuid: UUID };
    const d = diffVtpm(placed, inputs({ imagePath: "/var/lib/xen/vtpm/keep.img", name: "web1-vtpm-b" }));
    expect(d).toMatchObject({ replaces: [], restart: true });
  });

  it("renaming with the derived image path moves the image: a reset", () => {
    expect(diffVtpm(old, inputs({ name: "web2-vtpm" })).replaces).toEqual(["imagePath"]);
  });

  it("changes only metadata without touching the host", () => {
    const d = diffVtpm(old, inputs({ deletionPolicy: "retain", allowStateReset: true }));
    expect(d).toMatchObject({ changed: ["allowStateReset", "deletionPolicy"], replaces: [], restart: false });
  });
});
