/**
 * Raw TPM 1.2 commands over a swtpm server socket, enough to give a fresh vTPM the state Xen's
 * vtpm-stubdom has from its first start: enabled, activated, with an endorsement key, unowned.
 * A fresh libtpms TPM 1.2 has no EK ("the TPM does not have an EK installed", 0x23); the
 * libtpms here also starts it enabled and activated, but the TPM 1.2 spec's defaults are
 * disabled and deactivated, so both are set, with physical presence asserted by the platform
 * (TSC_PhysicalPresence) as a BIOS would.
 *
 * Run as a script by the emulator (`node tpm12.js provision <server> <ctrl>`): xl is synchronous
 * and socket I/O in node is not.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as net from "node:net";

const TAG_RQU_COMMAND = 0x00c1;
const ORD = {
  TSC_PhysicalPresence: 0x4000000a,
  PhysicalEnable: 0x6f,
  PhysicalSetDeactivated: 0x72,
  CreateEndorsementKeyPair: 0x78,
  ReadPubek: 0x7c,
  GetCapability: 0x65,
  Startup: 0x99,
  Extend: 0x14,
  PcrRead: 0x15,
};
const PP = { CMD_ENABLE: 0x0020, PRESENT: 0x0008 };
/** TPM_INVALID_POSTINIT: TPM_Startup on a TPM that is already started. */
const RC_INVALID_POSTINIT = 0x26;

export class TpmError extends Error {
  constructor(
    readonly ordinal: number,
    readonly rc: number,
  ) {
    super(`TPM 1.2 ordinal 0x${ordinal.toString(16)} returned 0x${rc.toString(16)}`);
  }
}

function command(ordinal: number, params: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TAG_RQU_COMMAND, 0);
  head.writeUInt32BE(10 + params.length, 2);
  head.writeUInt32BE(ordinal, 6);
  return Buffer.concat([head, params]);
}

/** One connection to a TPM: commands are sent one at a time, each answer read whole. */
export class Tpm12 {
  private buf = Buffer.alloc(0);
  private waiting?: { resolve: (b: Buffer) => void; reject: (e: Error) => void };

  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.deliver();
    });
    const fail = (e: Error) => {
      this.waiting?.reject(e);
      this.waiting = undefined;
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("the TPM closed the connection")));
  }

  static connect(server: string): Promise<Tpm12> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(server, () => resolve(new Tpm12(sock)));
      sock.once("error", reject);
    });
  }

  private deliver(): void {
    if (!this.waiting || this.buf.length < 10) return;
    const size = this.buf.readUInt32BE(2);
    if (this.buf.length < size) return;
    const answer = this.buf.subarray(0, size);
    this.buf = this.buf.subarray(size);
    const w = this.waiting;
    this.waiting = undefined;
    w.resolve(answer);
  }

  /**
   * Sends one whole command and resolves with the whole response. TPM 2.0 frames commands the
   * same way (a 2-byte tag, a 4-byte size, a 4-byte code), so this serves both versions.
   */
  raw(cmd: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.sock.write(cmd);
    });
  }

  /** Sends one command; resolves with the return code and the response's parameters. */
  async transmit(ordinal: number, params?: Buffer): Promise<{ rc: number; body: Buffer }> {
    const b = await this.raw(command(ordinal, params));
    return { rc: b.readUInt32BE(6), body: b.subarray(10) };
  }

  async ok(ordinal: number, params?: Buffer): Promise<Buffer> {
    const { rc, body } = await this.transmit(ordinal, params);
    if (rc !== 0) throw new TpmError(ordinal, rc);
    return body;
  }

  close(): void {
    this.sock.destroy();
  }
}

export const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** TPM_KEY_PARMS of an RSA 2048 EK: RSAES-OAEP SHA-1 encryption, no signature scheme. */
function ekKeyParms(): Buffer {
  const rsa = Buffer.concat([u32(2048), u32(2), u32(0)]);
  return Buffer.concat([
    u32(1 /* TPM_ALG_RSA */),
    u16(3 /* OAEP SHA1 MGF1 */),
    u16(1 /* SS_NONE */),
    u32(rsa.length),
    rsa,
  ]);
}

/** TPM_ReadPubek: the EK's TPM_PUBKEY as the TPM returns it (its checksum stripped). */
export async function readPubek(tpm: Tpm12): Promise<Buffer> {
  const body = await tpm.ok(ORD.ReadPubek, randomBytes(20));
  return body.subarray(0, body.length - 20);
}

/** TPM_Extend: `new = SHA-1(old || digest)`; resolves with the PCR's new value. */
export async function extend12(tpm: Tpm12, pcr: number, digest: Buffer): Promise<Buffer> {
  if (digest.length !== 20)
    throw new Error(`a TPM 1.2 extend takes a 20-byte digest, not ${digest.length} bytes`);
  return (await tpm.ok(ORD.Extend, Buffer.concat([u32(pcr), digest]))).subarray(0, 20);
}

/** TPM_PCRRead: the PCR's value. */
export async function pcrRead12(tpm: Tpm12, pcr: number): Promise<Buffer> {
  return (await tpm.ok(ORD.PcrRead, u32(pcr))).subarray(0, 20);
}

/** TPM_GetCapability(TPM_CAP_FLAG, TPM_CAP_FLAG_PERMANENT): disable, ownership, deactivated. */
export async function permanentFlags(
  tpm: Tpm12,
): Promise<{ disable: boolean; ownership: boolean; deactivated: boolean }> {
  const body = await tpm.ok(ORD.GetCapability, Buffer.concat([u32(4), u32(4), u32(0x108)]));
  // respSize, then TPM_PERMANENT_FLAGS: its tag, then one byte per flag in the spec's order.
  const flags = body.subarray(4 + 2);
  return { disable: flags[0] === 1, ownership: flags[1] === 1, deactivated: flags[2] === 1 };
}

/** TPM_GetCapability(TPM_CAP_PROPERTY, TPM_CAP_PROP_OWNER). */
export async function hasOwner(tpm: Tpm12): Promise<boolean> {
  const body = await tpm.ok(ORD.GetCapability, Buffer.concat([u32(5), u32(4), u32(0x111)]));
  return body[4] === 1;
}

function ctrlInit(ctrl: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("swtpm_ioctl", ["--unix", ctrl, "-i"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`swtpm_ioctl -i exited ${code}: ${err.trim()}`)),
    );
  });
}

/**
 * Enables and activates a fresh TPM 1.2 and creates its EK (a new key pair, so a wiped vTPM
 * comes back with another EK). Deactivation only changes at the next TPM_Startup, hence the
 * TPM_Init (over swtpm's control channel) and Startup in the middle.
 */
export async function provision(server: string, ctrl: string): Promise<void> {
  let tpm = await Tpm12.connect(server);
  try {
    await tpm.ok(ORD.TSC_PhysicalPresence, u16(PP.CMD_ENABLE));
    await tpm.ok(ORD.TSC_PhysicalPresence, u16(PP.PRESENT));
    await tpm.ok(ORD.PhysicalEnable);
    await tpm.ok(ORD.PhysicalSetDeactivated, Buffer.from([0]));
  } finally {
    tpm.close();
  }
  await ctrlInit(ctrl);
  tpm = await Tpm12.connect(server);
  try {
    const { rc } = await tpm.transmit(ORD.Startup, u16(1 /* TPM_ST_CLEAR */));
    if (rc !== 0 && rc !== RC_INVALID_POSTINIT) throw new TpmError(ORD.Startup, rc);
    await tpm.ok(ORD.CreateEndorsementKeyPair, Buffer.concat([randomBytes(20), ekKeyParms()]));
  } finally {
    tpm.close();
  }
}

if (require.main === module) {
  const [verb, server, ctrl] = process.argv.slice(2);
  if (verb !== "provision" || !server || !ctrl) {
    process.stderr.write("usage: tpm12.js provision <server socket> <ctrl socket>\n");
    process.exit(2);
  }
  provision(server, ctrl).catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  });
}
