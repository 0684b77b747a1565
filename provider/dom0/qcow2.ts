/**
 * Reading a qcow2 image's header: whether a file is qcow2 and which backing file it names. Pure.
 *
 * A refresh reads each guest's overlay to see whether it still derives from the declared base.
 * `qemu-img info` told us that at about 30 ms of a dom0's CPU a call (it links half of QEMU);
 * INSPECT now sends the file's first HEADER_READ_BYTES bytes and this reads the few fields it
 * needs, as qemu's block/qcow2.c does (docs/interop/qcow2.txt):
 *
 *   0  magic "QFI\xfb"          4  version (2 or 3)
 *   8  backing_file_offset u64  16 backing_file_size u32 (at most 1023)   20 cluster_bits u32
 *   100 header_length u32 (version 3; version 2's header is 72 bytes)
 *
 * then header extensions from the header's end (type u32, length u32, data padded to 8 bytes; type
 * 0 ends them, 0xE2792ACA is the backing file's format name). All big-endian.
 */

/** What INSPECT reads of an overlay: qemu keeps the header, its extensions and the backing file's
 * name in the first cluster, and `qemu-img create` puts them in its first 2 KiB (about 600 bytes of
 * header and extensions, a name of at most 1023 bytes). */
export const HEADER_READ_BYTES = 2048;

const QCOW2_MAGIC = 0x514649fb;
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
/** The qcow2 spec's bound on a backing file's name (qemu refuses to open an image with a longer one). */
const MAX_BACKING_NAME = 1023;

export interface Qcow2Header {
  /** "qcow2" when the file starts with qcow2's magic; anything else is "not qcow2". */
  readonly format: "qcow2" | "not qcow2";
  /** The backing file's name as the header stores it (what `qemu-img info` calls backing-filename). */
  readonly backingFile?: string;
  /** Its format from the backing-format extension (backing-filename-format). */
  readonly backingFormat?: string;
  /**
   * Why the backing file could not be read from the bytes given: a name or an extension past
   * them, or fields no valid image has. Unset when the header was read in full.
   */
  readonly unreadable?: string;
}

/** The header of a file whose first bytes are `head` (fewer when the file is shorter). */
export function parseQcow2Header(head: Buffer): Qcow2Header {
  if (head.length < 4 || head.readUInt32BE(0) !== QCOW2_MAGIC) return { format: "not qcow2" };
  const unreadable = (why: string): Qcow2Header => ({ format: "qcow2", unreadable: why });
  if (head.length < 24) return unreadable(`a header of ${head.length} bytes`);
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) return unreadable(`version ${version}`);
  const clusterBits = head.readUInt32BE(20);
  // qemu's bounds (MIN_CLUSTER_BITS, MAX_CLUSTER_BITS): 512 bytes to 2 MiB.
  if (clusterBits < 9 || clusterBits > 21) return unreadable(`cluster_bits ${clusterBits}`);
  const clusterSize = 2 ** clusterBits;

  let backingFile: string | undefined;
  const nameOffset = head.readBigUInt64BE(8);
  const nameSize = head.readUInt32BE(16);
  // qemu reads an offset with an empty name as no backing file, as `qemu-img info` shows it.
  if (nameOffset !== 0n && nameSize > 0) {
    if (nameSize > MAX_BACKING_NAME) return unreadable(`a backing file name of ${nameSize} bytes`);
    const end = nameOffset + BigInt(nameSize);
    if (end > BigInt(clusterSize)) return unreadable("a backing file name outside the first cluster");
    if (end > BigInt(head.length))
      return unreadable(`a backing file name beyond the first ${head.length} bytes`);
    backingFile = head.subarray(Number(nameOffset), Number(end)).toString("utf8");
  }

  const headerLength = version === 2 ? 72 : head.length >= 104 ? head.readUInt32BE(100) : undefined;
  if (headerLength === undefined) return unreadable(`a version 3 header of ${head.length} bytes`);
  let backingFormat: string | undefined;
  for (let at = headerLength; ;) {
    if (at + 8 > head.length) return unreadable(`header extensions beyond the first ${head.length} bytes`);
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    const data = at + 8;
    if (data + length > head.length)
      return unreadable(`a header extension beyond the first ${head.length} bytes`);
    if (type === EXT_BACKING_FORMAT) backingFormat = head.subarray(data, data + length).toString("utf8");
    at = data + Math.ceil(length / 8) * 8;
  }
  return {
    format: "qcow2",
    ...(backingFile !== undefined ? { backingFile } : {}),
    ...(backingFormat !== undefined ? { backingFormat } : {}),
  };
}
