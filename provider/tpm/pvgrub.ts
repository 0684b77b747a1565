/**
 * What pv-grub measures before it boots a member, pure. Xen's `stubdom/grub/kexec.c`
 * (`tpm_hash2pcr`) sends three TPM 1.2 `TPM_Extend` commands to the domain's vTPM, in this order:
 *
 *   PCR 4 <- SHA-1 of the kernel's bytes;
 *   PCR 5 <- SHA-1 of the command line (`strlen` bytes: no terminating NUL);
 *   PCR 5 <- SHA-1 of the initrd's bytes (of zero bytes when there is no initrd: kexec.c hashes
 *            `modules[0]` whatever its size).
 *
 * The bytes are what GRUB legacy's `grub_read` returned, and GRUB legacy gunzips a gzip file
 * transparently, so a gzip-compressed kernel or initrd is measured decompressed; a bzImage, or an
 * xz/zstd initrd, is measured as stored (DESIGN.md section 8).
 *
 * A TPM 1.2 extend is `new = SHA-1(old || digest)` from twenty zero bytes. A TPM 2.0 vTPM has no
 * pv-grub of its own; pulumi-tvd's convention (the lab follows it) is the same three events,
 * extended with the bank's own hash: SHA-1 digests into the sha1 bank, SHA-256 digests into the
 * sha256 bank. The baseline a TVD declares is `replayPcrs(pvGrubMeasurements(...), bank)`.
 *
 * One function serves both sides: the provider computes the expected baseline from it, and the
 * lab's stand-in for pv-grub extends a vTPM with exactly these events.
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";

export type PcrBank = "sha1" | "sha256";

/** The size of one PCR of each bank, in bytes. */
export const PCR_SIZE: Record<PcrBank, number> = { sha1: 20, sha256: 32 };

/** The PCRs pv-grub extends: the kernel, then the command line and the initrd. */
export const PV_GRUB_KERNEL_PCR = 4;
export const PV_GRUB_CMDLINE_PCR = 5;

export interface BootMeasurementInput {
  /** The kernel file's bytes, as stored on the boot disk. */
  kernel: Buffer;
  /** The command line exactly as pv-grub hands it to the kernel. */
  cmdline: string;
  /** The initrd file's bytes, as stored; absent when the member boots without one. */
  initrd?: Buffer;
}

/** One extend: what was measured, into which PCR, and the digest sent with the extend. */
export interface MeasurementEvent {
  pcr: number;
  what: "kernel" | "cmdline" | "initrd";
  digest: Buffer;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * The bytes GRUB legacy reads for a file: a gzip stream decompressed, anything else as is. A
 * file that starts like gzip but is not a valid stream is read raw, as GRUB legacy's
 * `gunzip_test_header` falls back to plain reads when the header does not check out.
 */
export function grubLegacyRead(bytes: Buffer): Buffer {
  if (bytes.length < 18 || !bytes.subarray(0, 2).equals(GZIP_MAGIC)) {
    return bytes;
  }
  try {
    return gunzipSync(bytes);
  } catch {
    return bytes;
  }
}

/** The three extends pv-grub makes, in order, with the given bank's hash. */
export function pvGrubMeasurements(input: BootMeasurementInput, bank: PcrBank = "sha1"): MeasurementEvent[] {
  const digest = (bytes: Buffer): Buffer => createHash(bank).update(bytes).digest();
  return [
    { pcr: PV_GRUB_KERNEL_PCR, what: "kernel", digest: digest(grubLegacyRead(input.kernel)) },
    { pcr: PV_GRUB_CMDLINE_PCR, what: "cmdline", digest: digest(Buffer.from(input.cmdline, "utf8")) },
    {
      pcr: PV_GRUB_CMDLINE_PCR,
      what: "initrd",
      digest: digest(input.initrd === undefined ? Buffer.alloc(0) : grubLegacyRead(input.initrd)),
    },
  ];
}

/** `new = H(old || digest)`, the extend of both TPM 1.2 and TPM 2.0. */
export function extendPcr(old: Buffer, digest: Buffer, bank: PcrBank): Buffer {
  return createHash(bank)
    .update(Buffer.concat([old, digest]))
    .digest();
}

/**
 * The values the PCRs named by the events hold after replaying them from all-zero PCRs (a vTPM's
 * PCRs start at zero: vtpm-stubdom without `hwinitpcr=`, and swtpm's resettable PCRs 4 and 5).
 */
export function replayPcrs(events: readonly MeasurementEvent[], bank: PcrBank): Map<number, Buffer> {
  const pcrs = new Map<number, Buffer>();
  for (const event of events) {
    const old = pcrs.get(event.pcr) ?? Buffer.alloc(PCR_SIZE[bank]);
    pcrs.set(event.pcr, extendPcr(old, event.digest, bank));
  }
  return pcrs;
}
