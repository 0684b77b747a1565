import { vtpmManagerSchema } from "../../provider/resources/vtpmManager/args";
import { validate } from "../../provider/validation";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };

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
