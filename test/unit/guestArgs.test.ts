import { guestDomainOf, guestSchema, kernelOf, overlayPathOf } from "../../provider/resources/guest/args";
import { validate } from "../../provider/validation";
import { PVGRUB_KERNEL } from "../../provider/xl/domains";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };
const base = { connection, name: "web1", baseImage: "/srv/templates/debian.raw" };

function failures(patch: Record<string, unknown>) {
  const r = validate(guestSchema, { ...base, kernel: "/usr/lib/xen/boot/vmlinuz", ...patch });
  return r.ok ? [] : r.failures;
}

describe("Guest inputs", () => {
  it("fills the documented defaults", () => {
    const r = validate(guestSchema, { ...base, kernel: "/usr/lib/xen/boot/vmlinuz" });
    expect(r.ok && r.value).toEqual({
      ...base,
      connection: expect.objectContaining({ host: "10.0.0.5", port: 22, user: "root" }),
      kernel: "/usr/lib/xen/boot/vmlinuz",
      allowedRoots: ["/var/lib/xen", "/etc/xen"],
      baseImageFormat: "raw",
      configDir: "/etc/xen",
      memoryMiB: 512,
      vcpus: 1,
      bootLoader: "direct",
      vifs: [],
      extraDisks: [],
      running: true,
      vtpmReadyTimeoutSec: 60,
      adopt: false,
    });
    expect(r.ok && overlayPathOf(r.value)).toBe("/var/lib/xen/images/web1.qcow2");
  });

  // vcpus: 0, not 1.5: zod stops at a wrong type (a fraction is not an int), cross-property checks included.
  it("reports every bad property at once, with the fix", () => {
    const r = validate(guestSchema, {
      connection,
      name: "web1;reboot",
      baseImage: "/srv/templates/a,b.raw",
      memoryMiB: 0,
      vcpus: 0,
      overlayPath: "/root/steal.qcow2",
      vifs: [{ bridge: "xenbr0", mac: "00:16:3E:00:00:01" }],
      extraDisks: [
        { target: "/dev/vg0/data", vdev: "xvdb" },
        { target: "/dev/vg0/logs", vdev: "xvdb" },
        { target: "/dev/vg0/boot", vdev: "xvda" },
      ],
    });
    expect(r.ok).toBe(false);
    const props = !r.ok ? r.failures.map((f) => f.property).sort() : [];
    expect(props).toEqual([
      "baseImage",
      "extraDisks.1.vdev",
      "extraDisks.2.vdev",
      "kernel",
      "memoryMiB",
      "name",
      "overlayPath",
      "vcpus",
      "vifs.0.mac",
    ]);
  });

  it.each([
    [
      { kernel: undefined },
      "kernel",
      /set kernel to the guest's PV kernel, e\.g\. \/usr\/lib\/xen\/boot\/vmlinuz, or bootLoader: "pvgrub"/,
    ],
    [{ memoryMiB: 0 }, "memoryMiB", /at least 1 MiB/],
    [{ vcpus: 129 }, "vcpus", /whole number of vCPUs from 1 to 128/],
    [
      { overlayPath: "/root/w.qcow2" },
      "overlayPath",
      /\/root\/w\.qcow2: must be under \/var\/lib\/xen or \/etc\/xen \(set allowedRoots/,
    ],
    [{ configDir: "/root" }, "configDir", /\/root\/web1\.cfg: must be under/],
    [{ baseImage: "/srv/$(x).raw" }, "baseImage", /xl disk spec/],
    [{ kernel: "/boot/vm linuz" }, "kernel", /xl disk spec/],
    [{ cmdline: 'root=/dev/xvda" evil="1' }, "cmdline", /double quotes/],
    [{ cmdline: "a\nb" }, "cmdline", /newlines/],
    [{ vifs: [{ bridge: "xenbr0,script=/x" }] }, "vifs.0.bridge", /bridge name of 1 to 15/],
    [{ vifs: [{ bridge: "a".repeat(16) }] }, "vifs.0.bridge", /bridge name of 1 to 15/],
    [{ vifs: [{ bridge: "xenbr0", mac: "00:16:3E:00:00:01" }] }, "vifs.0.mac", /lowercase MAC/],
    [{ vifs: [{ bridge: "xenbr0", ip: "10.50.0.11" }] }, "vifs.0.ip", /with its prefix length/],
    [{ vifs: [{ bridge: "xenbr0", ip: "10.50.0.11/24,script=/x" }] }, "vifs.0.ip", /with its prefix length/],
    [{ vifs: [{ bridge: "xenbr0", ip: "300.50.0.11/24" }] }, "vifs.0.ip", /with its prefix length/],
    [{ vtpm: "web1-vtpm;x" }, "vtpm", /letter or digit/],
    [{ extraDisks: [{ target: "/d", vdev: "xvda" }] }, "extraDisks.0.vdev", /xvda is the guest's overlay/],
    [
      {
        extraDisks: [
          { target: "/d", vdev: "xvdc" },
          { target: "/e", vdev: "xvdc" },
        ],
      },
      "extraDisks.1.vdev",
      /xvdc is already extraDisks\[0\]'s vdev/,
    ],
    [
      { bootLoader: "pvgrub", ramdisk: "/boot/initrd" },
      "ramdisk",
      /unset ramdisk or use bootLoader: "direct"/,
    ],
    [{ vtpmReadyTimeoutSec: 0 }, "vtpmReadyTimeoutSec", /too small|>0/],
  ])("refuses %j on %s", (patch, property, reason) => {
    expect(failures(patch)).toEqual([{ property, reason: expect.stringMatching(reason) }]);
  });

  it("keeps an explicit overlay under allowedRoots that the operator widened", () => {
    expect(
      failures({ overlayPath: "/srv/guests/w.qcow2", allowedRoots: ["/srv/guests", "/etc/xen"] }),
    ).toEqual([]);
  });

  it("boots pv-grub by default when bootLoader is pvgrub", () => {
    const r = validate(guestSchema, { ...base, bootLoader: "pvgrub", cmdline: "(hd0,0)/boot/grub/menu.lst" });
    expect(r.ok && kernelOf(r.value)).toBe(PVGRUB_KERNEL);
    expect(r.ok && guestDomainOf(r.value).boot).toEqual({
      kind: "pvgrub",
      kernel: PVGRUB_KERNEL,
      extra: "(hd0,0)/boot/grub/menu.lst",
    });
  });

  it("puts the overlay first, as xvda, then the extra disks", () => {
    const r = validate(guestSchema, {
      ...base,
      kernel: "/usr/lib/xen/boot/vmlinuz",
      extraDisks: [{ target: "/dev/vg0/data", vdev: "xvdb", access: "ro" }],
    });
    expect(r.ok && guestDomainOf(r.value).disks).toEqual([
      { target: "/var/lib/xen/images/web1.qcow2", format: "qcow2", vdev: "xvda", access: "rw" },
      { target: "/dev/vg0/data", format: "raw", vdev: "xvdb", access: "ro" },
    ]);
  });
});
