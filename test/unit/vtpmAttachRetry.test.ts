/**
 * `xl create` is tried again only when libxl says the vtpm backend did not connect in time (real
 * Xen under QEMU, several guests starting beside their just-started vTPMs), never on another error.
 */
import { vtpmBackendWasLate } from "../../provider/dom0/dom0";

// What real Xen 4.17 printed in a fresh-clone CI run (test/xen/realXen.test.ts).
const LATE_BACKEND = [
  "libxl: error: libxl_device.c:1181:device_backend_callback: Domain 15:unable to add device with path /local/domain/12/backend/vtpm/15/0",
  "libxl: error: libxl_create.c:1921:domcreate_attach_devices: Domain 15:unable to add vtpm devices",
  "libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 15:Non-existant domain",
].join("\n");

describe("vtpmBackendWasLate", () => {
  it("is true for libxl's late vtpm backend", () => {
    expect(vtpmBackendWasLate(LATE_BACKEND)).toBe(true);
  });

  it.each([
    "libxl: error: libxl_create.c:1921:domcreate_attach_devices: Domain 15:unable to add disk devices",
    "libxl: error: libxl_create.c: Domain web2 already exists",
    // No backend domain at all (the conformance suite's record of Xen 4.17.5): no retry.
    "libxl: error: libxl_create.c:1921:domcreate_attach_devices: Domain 9:unable to add vtpm devices\n" +
      "libxl: error: libxl_domain.c:1219:destroy_domid_pci_done: Domain 9:xc_domain_pause failed",
    "Parsing config from /etc/xen/web2.cfg\nfailed to free memory for the domain",
    "",
  ])("is false for any other failure: %j", (stderr) => {
    expect(vtpmBackendWasLate(stderr)).toBe(false);
  });
});
