/**
 * The pure half of the lab's pv-grub (lab/xl/pvgrub.ts): which kernel is pv-grub, GRUB legacy
 * device and file names, menu.lst as GRUB legacy reads it, and the order of a guest's disks.
 */
import {
  GrubError,
  isPvGrub,
  parseGrubDevice,
  parseGrubPath,
  parseMenuLst,
  vbdNumber,
} from "../../lab/xl/pvgrub";

describe("isPvGrub", () => {
  it.each([
    ["/usr/lib/xen/boot/pv-grub-x86_64.gz", true],
    ["/usr/lib/xen-4.17/boot/pv-grub-x86_32.gz", true],
    ["/usr/lib/xen/boot/vmlinuz", false],
    ["/usr/lib/xen/boot/vtpm-stubdom.gz", false],
    [undefined, false],
  ])("%s -> %s", (kernel, want) => expect(isPvGrub(kernel)).toBe(want));
});

describe("GRUB legacy names", () => {
  it("reads whole disks and partitions", () => {
    expect(parseGrubDevice("(hd0)")).toEqual({ drive: 0, partition: undefined });
    expect(parseGrubDevice("(hd1,2)")).toEqual({ drive: 1, partition: 2 });
    expect(() => parseGrubDevice("(nd)")).toThrow("Error 11: Unrecognized device string");
  });

  it("needs a device for a bare path: pv-grub starts on its network drive", () => {
    expect(parseGrubPath("(hd0,0)/boot/grub/menu.lst", undefined)).toEqual({
      device: { drive: 0, partition: 0 },
      file: "/boot/grub/menu.lst",
    });
    expect(parseGrubPath("/boot/vmlinuz", { drive: 0 })).toEqual({
      device: { drive: 0 },
      file: "/boot/vmlinuz",
    });
    expect(() => parseGrubPath("/boot/vmlinuz", undefined)).toThrow("Error 21: Selected disk does not exist");
  });

  it("never hands debugfs a quote", () => {
    expect(() => parseGrubPath('(hd0)/boot/a"b', undefined)).toThrow(GrubError);
  });
});

describe("parseMenuLst", () => {
  const menu = [
    "# update-grub's menu.lst",
    "default=1",
    "timeout 5",
    "title rescue",
    "root (hd0,0)",
    "kernel /boot/rescue",
    "",
    "title\tDebian GNU/Linux",
    "\troot\t\t(hd0,0)",
    "kernel --no-mem-option /boot/vmlinuz-6.1  root=/dev/xvda1   ro  ",
    "initrd /boot/initrd.img-6.1",
    "savedefault",
  ].join("\n");

  it("takes the default entry's root, kernel, command line and initrd", () => {
    const m = parseMenuLst(menu);
    expect(m.defaultEntry).toBe(1);
    expect(m.entries.map((e) => e.title)).toEqual(["rescue", "Debian GNU/Linux"]);
    const e = m.entries[1];
    expect(e.root).toEqual({ drive: 0, partition: 0 });
    // The file name and kernel_func's own options are not part of the command line.
    expect(e.kernel).toEqual({ file: "/boot/vmlinuz-6.1", args: "root=/dev/xvda1 ro" });
    expect(e.initrd).toBe("/boot/initrd.img-6.1");
  });

  it("reads `default saved` as entry 0, pv-grub's saved entry", () => {
    expect(parseMenuLst("default saved\ntitle a\nkernel /k").defaultEntry).toBe(0);
  });

  it("keeps blanks inside double quotes", () => {
    const m = parseMenuLst('title a\nroot (hd0)\nkernel /k init="/bin/sh  -x"');
    expect(m.entries[0].kernel?.args).toBe('init="/bin/sh  -x"');
  });
});

describe("vbdNumber orders a guest's disks as pv-grub's blkfront does", () => {
  it.each([
    ["xvda", 51712],
    ["xvdb", 51728],
    ["hda", 768],
    ["hdc", 5632],
    ["sda", 2048],
  ])("%s is %d", (vdev, n) => expect(vbdNumber(vdev)).toBe(n));
});
