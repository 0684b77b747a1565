/**
 * provider/dom0/qcow2.ts against the real qemu-img: images made by `qemu-img create` with
 * generated backing names, formats, qcow2 versions and cluster sizes, read from their first
 * HEADER_READ_BYTES bytes (what INSPECT sends), must give what `qemu-img info` says of them. And
 * no byte string makes the parser throw or claim a backing file it could not read.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { HEADER_READ_BYTES, parseQcow2Header } from "../../provider/dom0/qcow2";
import { qcow2Head } from "../support/qcow2Head";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-qcow2-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The file's first HEADER_READ_BYTES bytes, as `head -c` sends them. */
function head(file: string): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(HEADER_READ_BYTES);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** `qemu-img create` of a qcow2 image backed by `backing` (-u: the base need not exist; the name is written as given). */
function createOverlay(file: string, backing: string, format: string, options: string[] = []): void {
  const o = options.length ? ["-o", options.join(",")] : [];
  execFileSync("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-u",
    "-b",
    backing,
    "-F",
    format,
    ...o,
    file,
    "1G",
  ]);
}

function qemuInfo(file: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync("qemu-img", ["info", "-U", "--output=json", "--", file], { encoding: "utf8" }),
  );
}

// A path a user could name as a base image: printable, spaces, quotes, non-ASCII; no NUL or newline.
const nameChar = fc.oneof(
  fc.constantFrom(..."abcxyz019-_. /'\"$()*é€漢"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }).filter((c) => !/[\0\n\r,:]/.test(c)),
);
const backingName = fc
  .array(nameChar, { minLength: 1, maxLength: 120 })
  .map((cs) => `/${cs.join("")}`)
  .filter((n) => Buffer.byteLength(n) <= 1023);

describe("parseQcow2Header against qemu-img info", () => {
  it("reads the backing file and its format of any image qemu-img creates", () => {
    let n = 0;
    fc.assert(
      fc.property(
        backingName,
        fc.constantFrom("raw", "qcow2", "vmdk"),
        fc.constantFrom("0.10", "1.1"),
        fc.constantFrom(512, 4096, 65536, 2 * 1024 * 1024),
        fc.boolean(),
        (backing, format, compat, clusterSize, lazy) => {
          const file = path.join(dir, `i${n++}.qcow2`);
          const options = [`compat=${compat}`, `cluster_size=${clusterSize}`];
          if (lazy && compat === "1.1") options.push("lazy_refcounts=on");
          createOverlay(file, backing, format, options);
          const info = qemuInfo(file);
          expect(parseQcow2Header(head(file))).toEqual({
            format: info.format,
            backingFile: info["backing-filename"],
            backingFormat: info["backing-filename-format"],
          });
          rmSync(file);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("reads the longest name the spec allows (1023 bytes)", () => {
    const backing = `/${"b".repeat(1022)}`;
    const file = path.join(dir, "long.qcow2");
    createOverlay(file, backing, "raw");
    expect(qemuInfo(file)["backing-filename"]).toBe(backing);
    expect(parseQcow2Header(head(file))).toEqual({
      format: "qcow2",
      backingFile: backing,
      backingFormat: "raw",
    });
  });

  it("finds no backing file in an image without one, or once it was rebased onto none", () => {
    const file = path.join(dir, "plain.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", file, "1G"]);
    expect(parseQcow2Header(head(file))).toEqual({ format: "qcow2" });
    const overlay = path.join(dir, "rebased.qcow2");
    createOverlay(overlay, "/b.raw", "raw");
    execFileSync("qemu-img", ["rebase", "-u", "-b", "", overlay]);
    expect(qemuInfo(overlay)["backing-filename"]).toBeUndefined();
    expect(parseQcow2Header(head(overlay)).backingFile).toBeUndefined();
  });

  it("says a raw image, an empty file and a text file are not qcow2", () => {
    const raw = path.join(dir, "disk.raw");
    execFileSync("qemu-img", ["create", "-q", "-f", "raw", raw, "1M"]);
    writeFileSync(path.join(dir, "empty"), "");
    writeFileSync(path.join(dir, "text"), "QFI but not quite\n");
    for (const f of [raw, path.join(dir, "empty"), path.join(dir, "text")])
      expect(parseQcow2Header(head(f))).toEqual({ format: "not qcow2" });
  });
});

describe("parseQcow2Header on headers qemu-img does not write", () => {
  it("reads a name without a backing-format extension", () => {
    expect(parseQcow2Header(qcow2Head("/b.raw"))).toEqual({ format: "qcow2", backingFile: "/b.raw" });
  });

  it("is unreadable, not wrong, when the name lies past the bytes read", () => {
    const h = qcow2Head("/b.raw", "raw");
    expect(parseQcow2Header(h.subarray(0, 140))).toEqual({
      format: "qcow2",
      unreadable: "a backing file name beyond the first 140 bytes",
    });
    expect(parseQcow2Header(h.subarray(0, 60)).unreadable).toBe(
      "a backing file name beyond the first 60 bytes",
    );
    const noName = qcow2Head("", "raw");
    expect(parseQcow2Header(noName.subarray(0, 60)).unreadable).toBe("a version 3 header of 60 bytes");
  });

  it("is unreadable for a name longer than the spec's 1023 bytes or outside the first cluster", () => {
    const long = Buffer.from(qcow2Head("/b.raw", "raw"));
    long.writeUInt32BE(1024, 16);
    expect(parseQcow2Header(long).unreadable).toBe("a backing file name of 1024 bytes");
    const small = Buffer.from(qcow2Head("/b.raw", "raw"));
    small.writeBigUInt64BE(65534n, 8); // 6 bytes from 65534: past the 64 KiB first cluster
    expect(parseQcow2Header(small).unreadable).toBe("a backing file name outside the first cluster");
  });

  it("never throws, and claims a backing file only when its bytes were read", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.nat(600),
        fc.nat(2000),
        fc.oneof(fc.nat(40), fc.nat()),
        fc.constantFrom(2, 3, 4),
        (bytes, offset, size, clusterBits, version) => {
          const h = Buffer.alloc(Math.max(bytes.length, 0));
          Buffer.from(bytes).copy(h);
          if (h.length >= 24) {
            h.writeUInt32BE(0x514649fb, 0);
            h.writeUInt32BE(version, 4);
            h.writeBigUInt64BE(BigInt(offset), 8);
            h.writeUInt32BE(size, 16);
            h.writeUInt32BE(clusterBits, 20);
          }
          const r = parseQcow2Header(h);
          if (r.backingFile !== undefined) {
            expect(offset + size).toBeLessThanOrEqual(h.length);
            expect(size).toBeLessThanOrEqual(1023);
            expect(r.unreadable).toBeUndefined();
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
