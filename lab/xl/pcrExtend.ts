/**
 * The lab's pv-grub extending a vTPM's PCRs over its swtpm server socket, as pv-grub's
 * `tpm_hash2pcr` does through tpmfront: one extend per event, in order, each checked.
 *
 *  - TPM 1.2: `TPM_Extend` (ordinal 0x14) with the event's SHA-1 digest, exactly kexec.c's command.
 *  - TPM 2.0: `TPM2_PCR_Extend` (0x182) under an empty password session, one command per event
 *    carrying the event's digest for each bank pvgrub.ts has a convention for (sha1, sha256) that
 *    the TPM has allocated. libtpms allocates sha1, sha256, sha384 and sha512 when nothing (no
 *    swtpm_setup) chose otherwise, as in the lab; sha384 and sha512 are left alone.
 *
 * Run as a script by the emulator (`node pcrExtend.js`, the request as JSON on stdin): xl is
 * synchronous and socket I/O in node is not. Any failure exits 1 with the reason on stderr.
 */
import { extend12, Tpm12, u16, u32 } from "./tpm12";

export interface ExtendRequest {
  readonly server: string;
  readonly tpm2: boolean;
  readonly events: readonly { pcr: number; what: string; sha1: string; sha256: string }[];
}

const TPM2 = {
  ST_NO_SESSIONS: 0x8001,
  ST_SESSIONS: 0x8002,
  CC_GetCapability: 0x17a,
  CC_PCR_Extend: 0x182,
  CAP_PCRS: 5,
  RS_PW: 0x40000009,
};
/** TPM_ALG_ID of the banks pvgrub.ts measures into. */
export const TPM2_ALG = { sha1: 0x0004, sha256: 0x000b } as const;

function command20(tag: number, code: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(tag, 0);
  head.writeUInt32BE(10 + body.length, 2);
  head.writeUInt32BE(code, 6);
  return Buffer.concat([head, body]);
}

async function ok20(tpm: Tpm12, what: string, cmd: Buffer): Promise<Buffer> {
  const r = await tpm.raw(cmd);
  const rc = r.readUInt32BE(6);
  if (rc !== 0) throw new Error(`${what} returned 0x${rc.toString(16)}`);
  return r;
}

/** The hash algorithms of the banks that have at least one PCR allocated (TPM2_GetCapability). */
export async function allocatedBanks20(tpm: Tpm12): Promise<number[]> {
  const r = await ok20(
    tpm,
    "TPM2_GetCapability(TPM_CAP_PCRS)",
    command20(TPM2.ST_NO_SESSIONS, TPM2.CC_GetCapability, u32(TPM2.CAP_PCRS), u32(0), u32(1)),
  );
  // moreData (1), capability (4), then TPML_PCR_SELECTION: count, then {hash, sizeofSelect, select[]}.
  let at = 10 + 1 + 4;
  const count = r.readUInt32BE(at);
  at += 4;
  const banks: number[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.readUInt16BE(at);
    const size = r[at + 2];
    if (r.subarray(at + 3, at + 3 + size).some((b) => b !== 0)) banks.push(alg);
    at += 3 + size;
  }
  return banks;
}

/** TPM2_PCR_Extend of one PCR with one digest per bank, authorized by an empty password. */
export async function extend20(tpm: Tpm12, pcr: number, digests: readonly [number, Buffer][]): Promise<void> {
  const auth = Buffer.concat([u32(TPM2.RS_PW), u16(0), Buffer.from([0]), u16(0)]);
  const values = Buffer.concat([
    u32(digests.length),
    ...digests.map(([alg, d]) => Buffer.concat([u16(alg), d])),
  ]);
  await ok20(
    tpm,
    `TPM2_PCR_Extend(PCR ${pcr})`,
    command20(TPM2.ST_SESSIONS, TPM2.CC_PCR_Extend, u32(pcr), u32(auth.length), auth, values),
  );
}

/** Sends every extend of the request, in order; the first failure stops it. */
export async function extendAll(req: ExtendRequest): Promise<string[]> {
  const tpm = await Tpm12.connect(req.server);
  const done: string[] = [];
  try {
    if (!req.tpm2) {
      for (const e of req.events) {
        await extend12(tpm, e.pcr, Buffer.from(e.sha1, "hex"));
        done.push(`PCR ${e.pcr} (${e.what}) sha1 ${e.sha1}`);
      }
      return done;
    }
    const allocated = await allocatedBanks20(tpm);
    const banks = (Object.keys(TPM2_ALG) as (keyof typeof TPM2_ALG)[]).filter((b) =>
      allocated.includes(TPM2_ALG[b]),
    );
    if (!banks.length) throw new Error("the TPM 2.0 has neither a sha1 nor a sha256 PCR bank allocated");
    for (const e of req.events) {
      await extend20(
        tpm,
        e.pcr,
        banks.map((b) => [TPM2_ALG[b], Buffer.from(e[b], "hex")]),
      );
      done.push(`PCR ${e.pcr} (${e.what}) ${banks.map((b) => `${b} ${e[b]}`).join(", ")}`);
    }
    return done;
  } finally {
    tpm.close();
  }
}

if (require.main === module) {
  const chunks: Buffer[] = [];
  process.stdin.on("data", (c: Buffer) => chunks.push(c));
  process.stdin.on("end", () => {
    extendAll(JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExtendRequest)
      .then((lines) => process.stdout.write(lines.map((l) => `${l}\n`).join("")))
      .catch((e: Error) => {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
      });
  });
}
