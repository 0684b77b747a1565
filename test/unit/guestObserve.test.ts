import { readFileSync } from "node:fs";
import { join } from "node:path";
import { guestDomainOf, guestSchema } from "../../provider/resources/guest/args";
import { changesOf } from "../../provider/core/define";
import { definition } from "../../provider/resources/guest/provider";

const changedKeys = (a: object, b: object) =>
  Object.fromEntries(changesOf(definition.changes, { ...a }, { ...b }));
import { guestInputsFromConfig } from "../../provider/resources/guest/observe";
import { validate } from "../../provider/validation";
import { renderXlConfig } from "../../provider/xl/config";
import { renderGuestConfig } from "../../provider/xl/domains";
import { observeGuestConfig } from "../../provider/xl/observe";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };
const fixture = (name: string) => readFileSync(join(__dirname, "../fixtures/xl", name), "utf8");

function inputs(patch: Record<string, unknown>) {
  const r = validate(guestSchema, { connection, baseImage: "/srv/templates/debian.raw", ...patch });
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return r.value;
}

/** The inputs behind the golden configs (test/support/xlGolden.ts). */
const web1 = inputs({
  name: "web1",
  memoryMiB: 256,
  vcpus: 2,
  kernel: "/usr/lib/xen/boot/vmlinuz",
  ramdisk: "/usr/lib/xen/boot/initrd.img",
  cmdline: "root=/dev/xvda ro console=hvc0",
  extraDisks: [{ target: "/var/lib/xen/images/web1-data.raw", vdev: "xvdb" }],
  vifs: [{ bridge: "xenbr0", mac: "00:16:3e:00:00:01" }],
  vtpm: "web1-vtpm",
});
const db1 = inputs({
  name: "db1",
  bootLoader: "pvgrub",
  cmdline: "(hd0,0)/boot/grub/menu.lst",
  vtpm: "db1-vtpm",
});

function readBack(text: string, declared: typeof web1) {
  const seen = observeGuestConfig(text);
  if (!seen.ok) throw new Error(seen.problem);
  return guestInputsFromConfig(seen.value, declared);
}

describe("observeGuestConfig", () => {
  it.each([
    ["a direct boot with every option", web1],
    ["pv-grub with its default kernel", db1],
    ["the least a guest needs", inputs({ name: "tiny", kernel: "/boot/vmlinuz" })],
    [
      "read-only qcow2 disks and two vifs",
      inputs({
        name: "multi",
        kernel: "/boot/vmlinuz",
        vifs: [
          { bridge: "xenbr0" },
          { bridge: "br-lan.10", mac: "00:16:3e:0a:0b:0c" },
          { bridge: "tvd-red", mac: "00:16:3e:0a:0b:0d", ip: "10.50.0.11/24" },
        ],
        extraDisks: [
          { target: "/dev/vg0/multi-logs", vdev: "xvdc", format: "qcow2", access: "ro" },
          { target: "/dev/vg0/multi-data", vdev: "xvdb" },
        ],
      }),
    ],
  ])("reads %s back into the inputs it was rendered from", (_, v) => {
    const back = readBack(renderXlConfig(renderGuestConfig(guestDomainOf(v))), v);
    expect(back).toEqual(v);
    expect(changedKeys(back, v)).toEqual({});
  });

  it("reads the golden web1.cfg's disk, vif and vtpm specs into what they were rendered from", () => {
    const seen = observeGuestConfig(fixture("web1.cfg"));
    const d = guestDomainOf(web1);
    expect(seen.ok && seen.value).toMatchObject({
      disks: d.disks,
      vifs: d.vifs,
      vtpm: d.vtpmBackend,
      extra: undefined,
    });
    expect(readBack(fixture("web1.cfg"), web1)).toEqual(web1);
  });

  it("reads the golden db1-pvgrub.cfg as pv-grub, its menu.lst as cmdline", () => {
    const back = readBack(fixture("db1-pvgrub.cfg"), db1);
    expect(back).toEqual(db1);
    expect(back).toMatchObject({
      bootLoader: "pvgrub",
      kernel: undefined,
      cmdline: "(hd0,0)/boot/grub/menu.lst",
    });
  });

  it("shows memory edited out of band as drift on memoryMiB, and only there", () => {
    const edited = fixture("web1.cfg").replace("memory = 256", "memory = 1024");
    const back = readBack(edited, web1);
    expect(back.memoryMiB).toBe(1024);
    expect(changedKeys(back, web1)).toEqual({ memoryMiB: "restart" });
  });

  it.each([
    ["vcpus = 2", "vcpus = 4", "vcpus"],
    ['"bridge=xenbr0,mac=00:16:3e:00:00:01"', '"bridge=xenbr1"', "vifs"],
    ['"backend=web1-vtpm"', '"backend=web9-vtpm"', "vtpm"],
    ["format=raw, vdev=xvdb", "format=raw, vdev=xvdc", "extraDisks"],
    ['ramdisk = "/usr/lib/xen/boot/initrd.img"\n', "", "ramdisk"],
  ])("shows %s edited to %s as drift on %s", (from, to, property) => {
    const back = readBack(fixture("web1.cfg").replace(from, to), web1);
    expect(Object.keys(changedKeys(back, web1))).toEqual([property]);
  });

  it("reads a hand-written disk spec with xl's defaults and a target holding commas", () => {
    const r = observeGuestConfig(
      'disk = ["vdev=xvda,target=/srv/a,b.img"]\nvif = ["mac=00:16:3e:00:00:02"]\n',
    );
    expect(r.ok && r.value.disks).toEqual([
      { target: "/srv/a,b.img", format: "raw", vdev: "xvda", access: "rw" },
    ]);
    expect(r.ok && r.value.vifs).toEqual([{ bridge: "xenbr0", mac: "00:16:3e:00:00:02" }]);
  });

  it("reports a config that no longer parses instead of throwing", () => {
    expect(observeGuestConfig('name="x" memory=8\n')).toEqual({
      ok: false,
      problem: expect.stringMatching(/xl config line 1: unexpected "m"/),
    });
  });
});
