import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inspectArgs, parseInspection } from "../../provider/dom0/inspect";
import { INSPECT } from "../../provider/dom0/scripts";
import { qcow2Head } from "../support/qcow2Head";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("parseInspection", () => {
  it("puts a domain, its vtpm devices, its files and an overlay's backing file together", () => {
    const vtpms = [{ backend_domname: "g-vtpm", devid: 0, uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839" }];
    const list = [
      { domid: 0, config: { c_info: { name: "Domain-0" } } },
      { domid: 7, config: { c_info: { name: "g" }, vtpms } },
    ];
    const stdout = [
      "size:/etc/xen/g.cfg\t12",
      `content:/etc/xen/g.cfg\t${b64('name="g"\n')}`,
      "size:/o.qcow2\t196616",
      `qcow2:/o.qcow2\t${qcow2Head("/b.raw", "raw").toString("base64")}`,
      `missing:/gone.img\t`,
    ].join("\n");
    expect(parseInspection("g", stdout, list)).toEqual({
      domain: {
        running: true,
        domid: 7,
        config: { c_info: { name: "g" }, vtpms },
        vtpms: [{ devid: 0, backend: "g-vtpm", uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839" }],
        usedBy: [],
      },
      files: {
        // Trailing newlines go, as `$(cat)` would take them.
        "/etc/xen/g.cfg": { exists: true, sizeBytes: 12, content: 'name="g"' },
        "/o.qcow2": {
          exists: true,
          sizeBytes: 196616,
          qcow2: { format: "qcow2", backingFile: "/b.raw", backingFormat: "raw" },
        },
        "/gone.img": { exists: false },
      },
    });
  });

  it("reports a domain the host's list does not hold as stopped, without its config or devices", () => {
    const list = [{ domid: 3, config: { c_info: { name: "g2" } } }];
    expect(parseInspection("g", "", list).domain).toEqual({
      running: false,
      config: undefined,
      domid: undefined,
      vtpms: [],
      usedBy: [],
    });
  });

  it("names the running domains that use the inspected one as their vtpm backend, from the same list", () => {
    const dom = (name: string, backends: string[]) => ({
      config: { c_info: { name }, vtpms: backends.map((b) => ({ backend_domname: b })) },
    });
    const list = [
      dom("vtpmmgr", []),
      dom("web-vtpm", ["vtpmmgr"]),
      dom("db-vtpm", ["vtpmmgr"]),
      dom("web", ["web-vtpm"]),
    ];
    expect(parseInspection("vtpmmgr", "", list).domain.usedBy).toEqual(["db-vtpm", "web-vtpm"]);
    expect(parseInspection("web-vtpm", "", list).domain.usedBy).toEqual(["web"]);
    expect(parseInspection("web", "", list).domain.usedBy).toEqual([]);
    // A stopped vTPM whose guest still names it as its backend is still in use.
    expect(parseInspection("gone-vtpm", "", [dom("g", ["gone-vtpm"])]).domain).toMatchObject({
      running: false,
      usedBy: ["g"],
    });
  });

  it("reads a checksum target's sha256, and leaves it unset when the file could not be read", () => {
    const hash = "a".repeat(64);
    const stdout = [
      "size:/s.img\t1048576",
      `sha256:/s.img\t${hash}`,
      "size:/unreadable.img\t10",
      "sha256:/unreadable.img\t",
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

describe("INSPECT run by dash, read by parseInspection", () => {
  // The script as a dom0's /bin/sh runs it, on real files and a real qemu-img overlay. An `xl` on
  // its PATH records any call: a read's domain and devices come from the batch's one `xl list -l`.
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tvd-inspect-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reports each target's size, content, backing file and checksum, and a missing one", () => {
    const bin = path.join(dir, "bin");
    execFileSync("mkdir", ["-p", bin]);
    const xlCalls = path.join(dir, "xl-calls");
    writeFileSync(path.join(bin, "xl"), `#!/bin/sh\necho "$*" >> '${xlCalls}'\n`);
    chmodSync(path.join(bin, "xl"), 0o755);
    const config = path.join(dir, "a b$(x).cfg");
    writeFileSync(config, 'name = "g"\n\n');
    const base = path.join(dir, "base.raw");
    writeFileSync(base, Buffer.alloc(1 << 20));
    const overlay = path.join(dir, "g.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay]);
    const stdout = execFileSync(
      "dash",
      [
        "-c",
        INSPECT,
        "inspect",
        ...inspectArgs("g", [
          { role: "config", path: config },
          { role: "overlay", path: overlay },
          { role: "checksum", path: base },
          { role: "image", path: path.join(dir, "gone.img") },
        ]),
      ],
      { encoding: "utf8", env: { PATH: `${bin}:${process.env.PATH}` } },
    );
    const r = parseInspection("g", stdout, [{ domid: 5, config: { c_info: { name: "g" } } }]);
    expect(existsSync(xlCalls)).toBe(false);
    expect(r.files[config]).toEqual({ exists: true, sizeBytes: 12, content: 'name = "g"' });
    expect(r.files[overlay]).toMatchObject({
      exists: true,
      qcow2: { format: "qcow2", backingFile: base, backingFormat: "raw" },
    });
    expect(r.files[base]).toEqual({
      exists: true,
      sizeBytes: 1 << 20,
      sha256: "30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58",
    });
    expect(r.files[path.join(dir, "gone.img")]).toEqual({ exists: false });
    // One line a value: a size, and the content, qcow2 header or checksum, of each file there.
    expect(stdout.trimEnd().split("\n")).toHaveLength(7);
  });
});
