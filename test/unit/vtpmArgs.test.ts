import { vtpmSchema } from "../../provider/resources/vtpm/args";
import { validate } from "../../provider/validation";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };

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
