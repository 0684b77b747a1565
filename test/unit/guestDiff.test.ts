import { guestSchema } from "../../provider/resources/guest/args";
import { diffGuest } from "../../provider/resources/guest/diff";
import { validate } from "../../provider/validation";
import { PVGRUB_KERNEL } from "../../provider/xl/domains";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };

function inputs(patch: Record<string, unknown> = {}) {
  const r = validate(guestSchema, {
    connection,
    name: "web1",
    baseImage: "/srv/templates/debian.raw",
    kernel: "/usr/lib/xen/boot/vmlinuz",
    ...patch,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return r.value;
}

describe("diffGuest", () => {
  const old = inputs();

  it("sees no change in the same inputs", () => {
    expect(diffGuest(old, inputs())).toEqual({
      changed: [],
      replaces: [],
      restart: false,
      recreateOverlay: false,
    });
  });

  it.each([
    [{ name: "web2" }, ["name", "overlayPath"]],
    [{ baseImage: "/srv/templates/debian-13.raw" }, ["baseImage"]],
    [{ baseImageFormat: "qcow2" }, ["baseImageFormat"]],
    [{ overlayPath: "/var/lib/xen/images/other.qcow2" }, ["overlayPath"]],
    [{ connection: { ...connection, host: "10.0.0.6" } }, ["host"]],
    [{ connection: { ...connection, port: 2222 } }, ["host"]],
  ])("replaces the guest for %j", (patch, replaces) => {
    expect(diffGuest(old, inputs(patch))).toMatchObject({ replaces, restart: false, recreateOverlay: false });
  });

  it.each([
    { memoryMiB: 1024 },
    { vcpus: 2 },
    { bootLoader: "pvgrub", cmdline: "(hd0,0)/boot/grub/menu.lst" },
    { kernel: "/usr/lib/xen/boot/vmlinuz-6.12" },
    { ramdisk: "/usr/lib/xen/boot/initrd.img" },
    { cmdline: "root=/dev/xvda ro" },
    { vifs: [{ bridge: "xenbr0" }] },
    { vtpm: "web1-vtpm" },
    { extraDisks: [{ target: "/dev/vg0/data", vdev: "xvdb" }] },
    { configDir: "/etc/xen/guests" },
  ])("restarts the domain on a rewritten config for %j, keeping the overlay", (patch) => {
    const d = diffGuest(old, inputs(patch));
    expect(d).toMatchObject({ replaces: [], restart: true, recreateOverlay: false });
    expect(d.changed).toEqual(expect.arrayContaining(Object.keys(patch)));
  });

  it.each([
    [{ running: false }, ["running"]],
    [{ adopt: true }, ["adopt"]],
    [{ vtpmReadyTimeoutSec: 120 }, ["vtpmReadyTimeoutSec"]],
    [{ allowedRoots: ["/var/lib/xen", "/etc/xen", "/srv"] }, ["allowedRoots"]],
    [{ connection: { ...connection, hostKeyFingerprint: "SHA256:" + "b".repeat(43) } }, ["connection"]],
  ])("neither replaces nor restarts for %j", (patch, changed) => {
    expect(diffGuest(old, inputs(patch))).toEqual({
      changed,
      replaces: [],
      restart: false,
      recreateOverlay: false,
    });
  });

  it("sees no kernel change when pv-grub's default kernel is named explicitly", () => {
    const pvgrub = inputs({ kernel: undefined, bootLoader: "pvgrub" });
    expect(diffGuest(pvgrub, inputs({ kernel: PVGRUB_KERNEL, bootLoader: "pvgrub" })).changed).toEqual([]);
  });

  it("sees no overlay change when the derived path is named explicitly", () => {
    expect(diffGuest(old, inputs({ overlayPath: "/var/lib/xen/images/web1.qcow2" })).changed).toEqual([]);
  });

  it("recreates a missing overlay from the base and restarts, without a replace", () => {
    expect(diffGuest(old, inputs(), false)).toEqual({
      changed: ["overlayPath"],
      replaces: [],
      restart: true,
      recreateOverlay: true,
    });
    expect(diffGuest(old, inputs({ memoryMiB: 1024 }), false)).toMatchObject({
      changed: ["memoryMiB", "overlayPath"],
      restart: true,
      recreateOverlay: true,
    });
  });

  it("lets a replace make the fresh overlay when the old one is missing", () => {
    expect(diffGuest(old, inputs({ baseImage: "/srv/templates/b.raw" }), false)).toEqual({
      changed: ["baseImage", "overlayPath"],
      replaces: ["baseImage"],
      restart: false,
      recreateOverlay: false,
    });
  });
});
