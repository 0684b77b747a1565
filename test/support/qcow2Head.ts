/** qcow2 headers for unit tests of what reads them (provider/dom0/qcow2.ts). */

/** A version 3 qcow2 header naming `backing` in format `format`, as qemu lays one out. */
export function qcow2Head(backing: string, format?: string): Buffer {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(3, 4);
  head.writeUInt32BE(16, 20);
  head.writeUInt32BE(112, 100);
  let at = 112;
  if (format !== undefined) {
    head.writeUInt32BE(0xe2792aca, at);
    head.writeUInt32BE(format.length, at + 4);
    head.write(format, at + 8);
    at += 8 + Math.ceil(format.length / 8) * 8;
  }
  const name = at + 8; // after the end-of-extensions marker (type 0, length 0: zeros)
  head.writeBigUInt64BE(BigInt(name), 8);
  head.writeUInt32BE(Buffer.byteLength(backing), 16);
  head.write(backing, name);
  return head;
}
