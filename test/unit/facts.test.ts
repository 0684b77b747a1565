import { parseFacts, probeFactsArgv } from "../../provider/dom0/facts";

describe("parseFacts", () => {
  it.each([
    [
      "a Xen dom0",
      "kernel\t6.1.0-37-amd64\nxl\t/usr/sbin/xl\nxen\t4.17.7\nqemu-img\tqemu-img version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\nswtpm\tTPM emulator version 0.7.1, Copyright (c) 2014-2022 IBM Corp.\nfree-kib\t10485760\n",
      {
        kernel: "6.1.0-37-amd64",
        xlPath: "/usr/sbin/xl",
        xenVersion: "4.17.7",
        qemuImgVersion: "7.2.19",
        swtpmVersion: "0.7.1",
        xenDataFreeMiB: 10240,
      },
    ],
    [
      "xl installed but no hypervisor running",
      "kernel\t6.1.0\nxl\t/usr/sbin/xl\nxen\t\n",
      {
        kernel: "6.1.0",
        xlPath: "/usr/sbin/xl",
        xenVersion: null,
        qemuImgVersion: null,
        swtpmVersion: null,
        xenDataFreeMiB: null,
      },
    ],
    [
      "a bare host, with lines it does not know",
      "motd junk\nkernel\t5.10.0\nfuture-fact\t42\n",
      {
        kernel: "5.10.0",
        xlPath: null,
        xenVersion: null,
        qemuImgVersion: null,
        swtpmVersion: null,
        xenDataFreeMiB: null,
      },
    ],
  ])("%s", (_, stdout, expected) => {
    expect(parseFacts(stdout)).toEqual(expected);
  });

  it("fails loudly when the probe did not run", () => {
    expect(() => parseFacts("sh: 1: syntax error\n")).toThrow(/no kernel line/);
  });

  it("passes the data directory as an argument, never inside the script", () => {
    const argv = probeFactsArgv("/var/lib/xen; rm -rf /");
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv[2]).not.toContain("rm -rf");
    expect(argv[4]).toBe("/var/lib/xen; rm -rf /");
  });
});
