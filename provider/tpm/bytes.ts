/**
 * Big-endian readers and writers for TPM wire structures. Every read names the structure and
 * field it is for, so that a malformed blob from a member's agent is reported as exactly what
 * was wrong and where, never as a RangeError out of Buffer.
 */
import { TpmFormatError } from "./errors";

export class ByteReader {
  private position = 0;

  constructor(
    readonly structure: string,
    private readonly buffer: Buffer,
    /** Where `buffer` starts in the outermost blob, so nested readers report absolute offsets. */
    private readonly base = 0,
  ) {}

  get offset(): number {
    return this.base + this.position;
  }

  get remaining(): number {
    return this.buffer.length - this.position;
  }

  fail(field: string, problem: string, offset = this.offset): never {
    throw new TpmFormatError(this.structure, field, offset, problem);
  }

  private take(field: string, length: number): Buffer {
    if (length > this.remaining) {
      this.fail(field, `needs ${length} byte(s), ${this.remaining} left`);
    }
    const slice = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return slice;
  }

  u8(field: string): number {
    return this.take(field, 1).readUInt8(0);
  }

  u16(field: string): number {
    return this.take(field, 2).readUInt16BE(0);
  }

  u32(field: string): number {
    return this.take(field, 4).readUInt32BE(0);
  }

  /** A copy, so the parsed structure never aliases the caller's buffer. */
  bytes(field: string, length: number): Buffer {
    return Buffer.from(this.take(field, length));
  }

  /** A field preceded by its 16-bit size (a TPM2B, or TPM_SYMMETRIC_KEY's data). */
  sized16(field: string, maxLength = 0xffff): Buffer {
    const at = this.offset;
    const length = this.u16(`${field}.size`);
    if (length > maxLength) this.fail(`${field}.size`, `${length} exceeds the maximum ${maxLength}`, at);
    if (length > this.remaining) {
      this.fail(`${field}.size`, `${length} exceeds the ${this.remaining} byte(s) left`, at);
    }
    return this.bytes(field, length);
  }

  /** A field preceded by its 32-bit size (TPM 1.2's parmSize, keyLength, encDataSize...). */
  sized32(field: string): Buffer {
    const at = this.offset;
    const length = this.u32(`${field}.size`);
    if (length > this.remaining) {
      this.fail(`${field}.size`, `${length} exceeds the ${this.remaining} byte(s) left`, at);
    }
    return this.bytes(field, length);
  }

  /** A reader over the next `length` bytes, which must then be consumed exactly. */
  sub(structure: string, field: string, length: number): ByteReader {
    const at = this.offset;
    return new ByteReader(structure, this.take(field, length), at);
  }

  /** Trailing bytes mean the blob is not the structure the caller thinks it is. */
  end(): void {
    if (this.remaining !== 0) this.fail("end", `${this.remaining} unexpected trailing byte(s)`);
  }
}

export function u8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

export function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

export function sized16(data: Buffer): Buffer {
  return Buffer.concat([u16(data.length), data]);
}

export function sized32(data: Buffer): Buffer {
  return Buffer.concat([u32(data.length), data]);
}

/** Big-endian unsigned bytes without leading zeros (JWK's form of an RSA modulus or exponent). */
export function stripLeadingZeros(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return value.subarray(i);
}
