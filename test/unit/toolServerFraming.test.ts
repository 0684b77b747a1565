/**
 * The framing between a lab host's tool client (lab/xl/toolClient.c) and its server: a request is
 * whole only once every byte of every field arrived, whatever the chunks; an answer carries the
 * exit code, stdout and stderr byte for byte.
 */
import fc from "fast-check";
import { encodeAnswer, parseRequest } from "../../lab/xl/toolServer";

/** What the C client writes: u32 count, then u32 length + bytes per field (big-endian). */
function encodeRequest(fields: string[]): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([
    u32(fields.length),
    ...fields.flatMap((f) => [u32(Buffer.byteLength(f)), Buffer.from(f, "utf8")]),
  ]);
}

describe("tool server framing", () => {
  it("parses a request only when it is complete, at any cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (fields, cut) => {
          const bytes = encodeRequest(fields);
          const at = cut % bytes.length;
          expect(parseRequest(bytes.subarray(0, at))).toBeUndefined();
          expect(parseRequest(bytes)).toEqual(fields);
        },
      ),
    );
  });

  it("encodes an answer the client can split back into code, stdout and stderr", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 255 }),
        fc.string({ unit: "binary" }),
        fc.string({ unit: "binary" }),
        (code, out, err) => {
          const b = encodeAnswer({ exitCode: code, stdout: out, stderr: err });
          const outLen = b.readUInt32BE(4);
          const errLen = b.readUInt32BE(8 + outLen);
          expect(b.readUInt32BE(0)).toBe(code);
          expect(b.subarray(8, 8 + outLen).toString("utf8")).toBe(out);
          expect(b.subarray(12 + outLen, 12 + outLen + errLen).toString("utf8")).toBe(err);
          expect(b.length).toBe(12 + outLen + errLen);
        },
      ),
    );
  });
});
