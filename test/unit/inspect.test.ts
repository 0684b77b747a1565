import { inspectArgs, parseInspection, parseVtpmList } from "../../provider/dom0/inspect";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("parseVtpmList", () => {
  it("reads real xl's rows (measured on Xen 4.17.7)", () => {
    const text =
      "Idx BE Uuid                                 handle state evt-ch ring-ref BE-path   \n" +
      "0   3  ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839      0     1     -1       -1 /local/domain/3/backend/vtpm/9/0\n";
    expect(parseVtpmList(text)).toEqual([
      { devid: 0, backendDomid: 3, uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839", state: 1 },
    ]);
  });
  it("ignores error lines", () => {
    expect(parseVtpmList("nosuch is an invalid domain identifier\n")).toEqual([]);
  });
});

describe("parseInspection", () => {
  it("puts a domain, its files and an overlay's backing file together", () => {
    const list = [
      { domid: 0, config: { c_info: { name: "Domain-0" } } },
      { domid: 7, config: { c_info: { name: "g" } } },
    ];
    const stdout = [
      `vtpm-list\t${b64("Idx BE Uuid\n0   2  ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839      0     4     -1       -1 /x\n")}`,
      `size:/etc/xen/g.cfg\t${b64("12")}`,
      `content:/etc/xen/g.cfg\t${b64('name="g"\n')}`,
      `size:/o.qcow2\t${b64("196616")}`,
      `qemu:/o.qcow2\t${b64(JSON.stringify({ format: "qcow2", "backing-filename": "/b.raw", "backing-filename-format": "raw" }))}`,
      `missing:/gone.img\t`,
    ].join("\n");
    expect(parseInspection("g", stdout, list)).toEqual({
      domain: {
        running: true,
        domid: 7,
        config: { c_info: { name: "g" } },
        vtpms: [{ devid: 0, backendDomid: 2, uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839", state: 4 }],
      },
      files: {
        "/etc/xen/g.cfg": { exists: true, sizeBytes: 12, content: 'name="g"\n' },
        "/o.qcow2": {
          exists: true,
          sizeBytes: 196616,
          qemu: { format: "qcow2", backingFile: "/b.raw", backingFormat: "raw" },
        },
        "/gone.img": { exists: false },
      },
    });
  });

  it("reports a domain the host's list does not hold as stopped, without its config or devices", () => {
    const list = [{ domid: 3, config: { c_info: { name: "g2" } } }];
    const stdout = `vtpm-list-stderr\t${b64("g is an invalid domain identifier")}\n`;
    expect(parseInspection("g", stdout, list).domain).toEqual({
      running: false,
      config: undefined,
      domid: undefined,
      vtpms: [],
    });
  });

  it("reads a checksum target's sha256, and leaves it unset when the file could not be read", () => {
    const hash = "a".repeat(64);
    const stdout = [
      `size:/s.img\t${b64("1048576")}`,
      `sha256:/s.img\t${b64(hash)}`,
      `size:/unreadable.img\t${b64("10")}`,
      `sha256:/unreadable.img\t${b64("")}`,
    ].join("\n");
    expect(parseInspection("m1", stdout, []).files).toEqual({
      "/s.img": { exists: true, sizeBytes: 1048576, sha256: hash },
      "/unreadable.img": { exists: true, sizeBytes: 10 },
    });
    expect(inspectArgs("m1", [{ role: "checksum", path: "/s.img" }])).toEqual(["m1", "checksum=/s.img"]);
  });

  it("passes paths as role=path arguments, never inside the script", () => {
    expect(inspectArgs("g", [{ role: "config", path: "/etc/xen/a b$(x).cfg" }])).toEqual([
      "g",
      "config=/etc/xen/a b$(x).cfg",
    ]);
  });
});
