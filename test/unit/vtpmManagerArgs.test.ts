import { vtpmManagerSchema } from "../../provider/resources/vtpmManager/args";
import { diffVtpmManager } from "../../provider/resources/vtpmManager/diff";
import { validate } from "../../provider/validation";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };

function inputs(patch: Record<string, unknown> = {}) {
  const r = validate(vtpmManagerSchema, { connection, name: "vtpmmgr", ...patch });
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return r.value;
}

describe("VtpmManager inputs", () => {
  it("reports every bad property at once", () => {
    const r = validate(vtpmManagerSchema, {
      connection,
      name: "mgr$(reboot)",
      imageSizeMiB: 0,
      tpmLocality: 7,
      iomem: ["fed40;5"],
      ownerAuth: "hunter2",
      imagePath: "/tmp/mgr.img",
    });
    const props = !r.ok ? r.failures.map((f) => f.property).sort() : [];
    expect(props).toEqual(["imagePath", "imageSizeMiB", "iomem.0", "name", "ownerAuth", "tpmLocality"]);
  });
});

describe("diffVtpmManager", () => {
  const old = inputs();

  it("sees nothing to do for the same inputs, defaults spelled out or not", () => {
    expect(diffVtpmManager(old, inputs({ memoryMiB: 16, iomem: ["fed40,5"] })).changed).toEqual([]);
  });

  it("treats the TPM 2.0 default memory as part of tpm2", () => {
    const d = diffVtpmManager(old, inputs({ tpm2: true }));
    expect(d.changed).toEqual(["memoryMiB", "tpm2"]);
    expect(d).toMatchObject({ restart: true, replaces: [] });
  });

  it.each([{ imageSizeMiB: 32 }, { imagePath: "/var/lib/xen/vtpm/other.img" }, { name: "vtpmmgr2" }])(
    "refuses a new image (%j) unless allowStateReset: every vTPM's keys would be lost",
    (patch) => {
      expect(diffVtpmManager(old, inputs(patch)).refused).toMatch(
        /keys of every vTPM it serves would be lost; set allowStateReset/,
      );
      expect(diffVtpmManager(old, inputs({ ...patch, allowStateReset: true })).refused).toBeUndefined();
    },
  );

  it("refuses to recreate an image that vanished, with the message the issue names", () => {
    expect(diffVtpmManager(old, inputs(), false).refused).toMatch(
      /^vTPM manager image missing: .* set allowStateReset to create a new one$/,
    );
    expect(diffVtpmManager(old, inputs({ allowStateReset: true }), false)).toMatchObject({
      replaces: ["imagePath"],
      refused: undefined,
    });
  });

  it.each([
    { running: false },
    { ownerAuth: "well-known" },
    { tpmLocality: 2 },
    { kernel: "/usr/lib/xen/boot/other.gz" },
    { ramdisk: "/usr/lib/xen/boot/vtpmmgr-stubdom-initrd.gz" },
  ])("restarts for %j", (patch) =>
    expect(diffVtpmManager(old, inputs(patch))).toMatchObject({ restart: true, replaces: [] }),
  );
});
