/** Pure checks of the real-Xen lab's QEMU command line and stand-in configs (no QEMU started). */
import { entryOfXen, qemuArgv, xenHostName, type XenHostRecord } from "../../lab/xen/boot";
import { standInConfigs } from "../../lab/xen/measure";

describe("xen lab QEMU command line", () => {
  const argv = qemuArgv({
    dir: "/s/xen-a",
    buildDir: "/c/xen-lab/abc",
    name: "xen-a",
    port: 2301,
    memoryMiB: 1536,
    dom0MemoryMiB: 768,
    cpus: 2,
    tbSizeMiB: 256,
  });
  const after = (flag: string) => argv[argv.indexOf(flag) + 1];

  it("uses the measured TCG machine (KVM hangs, -cpu max crashes, qemu64 hits invalid opcodes)", () => {
    expect(after("-accel")).toBe("tcg,tb-size=256");
    expect(after("-cpu")).toBe("Nehalem");
    expect(after("-kernel")).toBe("/c/xen-lab/abc/xen");
  });

  it("passes dom0's kernel and initrd as multiboot modules without commas in a command line", () => {
    const modules = after("-initrd").split(",");
    expect(modules).toHaveLength(2);
    expect(modules[0]).toMatch(/^\/c\/xen-lab\/abc\/vmlinuz root=\/dev\/vda .*console=hvc0/);
    expect(modules[1]).toBe("/c/xen-lab/abc/initrd.img");
    expect(after("-append")).toContain("dom0_mem=768M,max:768M");
  });

  it("turns off Xen's and dom0's speculative mitigations, which cost the lab's TCG a TLB flush per kernel entry", () => {
    expect(after("-append").split(" ")).toEqual(
      expect.arrayContaining(["spec-ctrl=no", "xpti=no", "pv-l1tf=no"]),
    );
    expect(after("-initrd").split(",")[0].split(" ")).toContain("mitigations=off");
  });

  it("forwards only loopback to dom0's sshd and attaches the seed disk read-only", () => {
    expect(after("-netdev")).toBe("user,id=n0,hostfwd=tcp:127.0.0.1:2301-:22");
    expect(argv).toContain("file=/s/xen-a/seed.ext4,if=virtio,format=raw,readonly=on");
    expect(argv).toContain("-daemonize");
  });

  it("names hosts xen-a, xen-b, ...", () => {
    expect([0, 1, 25].map(xenHostName)).toEqual(["xen-a", "xen-b", "xen-z"]);
  });

  it("writes inventory entries in the local lab's format with kind xen", () => {
    const rec: XenHostRecord = {
      name: "xen-a",
      kind: "xen",
      host: "127.0.0.1",
      port: 2301,
      user: "root",
      privateKeyPath: "/s/xen-a/id_ed25519",
      hostKeyFingerprint: "SHA256:" + "A".repeat(43),
      underlayIp: "10.0.2.15",
      dir: "/s/xen-a",
      pid: 1,
      buildDir: "/c",
    };
    expect(Object.keys(entryOfXen(rec))).toEqual([
      "name",
      "kind",
      "host",
      "port",
      "user",
      "privateKeyPath",
      "hostKeyFingerprint",
      "underlayIp",
    ]);
  });

  it("gives the stand-in stub domains a ramdisk and at least 96 MiB", () => {
    for (const cfg of Object.values(standInConfigs)) {
      expect(cfg).toMatch(/^ramdisk = "\/usr\/lib\/xen\/boot\/vtpm(mgr)?-stubdom-initrd\.gz"$/m);
      expect(Number(/^memory = (\d+)$/m.exec(cfg)?.[1])).toBeGreaterThanOrEqual(96);
    }
  });
});
