import { domainKind, parseVifSpec, parseVtpmSpec, XlError } from "../../lab/xl/specs";
import { renderListLong, renderVtpmList } from "../../lab/xl/render";
import type { DomainRecord } from "../../lab/xl/state";

const uuid = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";

function xlFailure(fn: () => unknown): { lines: readonly string[]; exitCode: number } {
  try {
    fn();
  } catch (e) {
    if (e instanceof XlError) return { lines: e.lines, exitCode: e.exitCode };
    throw e;
  }
  throw new Error("expected an XlError");
}

describe("parseVtpmSpec (xl_parse.c rules)", () => {
  it.each([
    [`backend=vtpmmgr,uuid=${uuid}`, { backend: "vtpmmgr", uuid }],
    [`backend=vtpmmgr,uuid=${uuid.toUpperCase()}`, { backend: "vtpmmgr", uuid }],
    ["backend=web1-vtpm", { backend: "web1-vtpm", uuid: undefined }],
  ])("accepts %s", (spec, expected) => {
    expect(parseVtpmSpec(spec)).toEqual(expected);
  });

  it.each([
    ["backend=vtpmmgr,colour=1", "Unknown string `colour' in vtpm spec"],
    ["backend=vtpmmgr,uuid=not-a-uuid", "Failed to parse vtpm UUID: not-a-uuid"],
    [`uuid=${uuid}`, "vtpm spec missing required backend field!"],
    ["backend=", "vtpm spec missing required backend field!"],
  ])("rejects %s with xl's message and exit 1", (spec, message) => {
    expect(xlFailure(() => parseVtpmSpec(spec))).toEqual({ lines: [message], exitCode: 1 });
  });
});

describe("parseVifSpec", () => {
  it("reads bridge and mac", () => {
    expect(parseVifSpec("bridge=xenbr0,mac=00:16:3E:00:00:01")).toEqual({
      bridge: "xenbr0",
      mac: "00:16:3e:00:00:01",
    });
  });
  it("rejects a bad mac", () => {
    expect(xlFailure(() => parseVifSpec("mac=zz")).lines).toEqual(["Invalid mac address: zz"]);
  });
});

describe("domainKind", () => {
  it.each([
    ["/usr/lib/xen/boot/vtpmmgr-stubdom.gz", "vtpmmgr"],
    ["/usr/lib/xen/boot/vtpm-stubdom.gz", "vtpm"],
    ["/usr/lib/xen/boot/pv-grub-x86_64.gz", "guest"],
    [undefined, "guest"],
  ])("%s is a %s", (kernel, kind) => expect(domainKind(kernel)).toBe(kind));
});

const record: DomainRecord = {
  domid: 9,
  name: "web1-vtpm",
  configFile: "/etc/xen/web1-vtpm.cfg",
  createdAt: 0,
  ready: true,
  vtpms: [{ devid: 0, backendName: "vtpmmgr", backendDomid: 3, uuid }],
  config: {
    name: "web1-vtpm",
    kind: "vtpm",
    memoryMiB: 8,
    maxmemMiB: 8,
    vcpus: 1,
    uuid: "7e6897a4-111d-4ec4-86d1-5fa918d9daae",
    kernel: "/usr/lib/xen/boot/vtpm-stubdom.gz",
    disks: [
      { pdev_path: "/var/lib/xen/vtpm/web1.img", vdev: "hda", format: "raw", readwrite: 1, is_cdrom: 0 },
    ],
    nics: [],
    iomem: [],
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "destroy",
    tpm2: false,
  },
};

describe("xl output formats (measured on Xen 4.17.7)", () => {
  it("xl vtpm-list matches real xl's columns", () => {
    expect(renderVtpmList([{ devid: 0, backendDomid: 3, uuid, state: 1, frontendDomid: 9 }])).toBe(
      "Idx BE Uuid                                 handle state evt-ch ring-ref BE-path   \n" +
        "0   3  ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839      0     1     -1       -1 /local/domain/3/backend/vtpm/9/0\n",
    );
  });

  it("xl list -l prints libxl's JSON with yajl's empty maps", () => {
    const text = renderListLong([record]);
    expect(text).toContain('                "type.pv": {\n\n                },\n');
    const json = JSON.parse(text);
    expect(json[0].domid).toBe(9);
    expect(json[0].config.c_info).toMatchObject({ type: "pv", name: "web1-vtpm" });
    expect(json[0].config.disks[0]).toMatchObject({
      pdev_path: "/var/lib/xen/vtpm/web1.img",
      vdev: "hda",
      format: "raw",
    });
    expect(json[0].config.vtpms).toEqual([{ backend_domname: "vtpmmgr", devid: 0, uuid }]);
    expect(json[0].config.on_reboot).toBe("restart");
  });
});
