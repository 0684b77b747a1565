/**
 * provider/tpm against a real TPM 2.0 (swtpm) driven by tpm2-tools: the keys it parses, the
 * Names it computes, and credentials it makes that the TPM itself activates, or refuses to when
 * the credential is not for that AK.
 */
import { createHash, createPublicKey } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import {
  checkResponse,
  makeChallenge,
  makeTpm2Credential,
  parseReport,
  parseTpm2Public,
  publicKeyFingerprint,
  unwrapTpm2bPublic,
  type Tpm2Challenge,
  type Tpm2PublicKey,
} from "../../provider/tpm";
import { run, startSwtpm, type Swtpm } from "../support/swtpm";

jest.setTimeout(60_000);

let tpm: Swtpm;

async function tpm2(tool: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(`tpm2_${tool}`, args, {
    env: { TPM2TOOLS_TCTI: `swtpm:path=${tpm.socket}` },
    cwd: tpm.dir,
  });
  // Without a resource manager, each tool leaves its transient objects loaded; swtpm has 3 slots.
  if (tool !== "flushcontext")
    await run("tpm2_flushcontext", ["-t"], { env: { TPM2TOOLS_TCTI: `swtpm:path=${tpm.socket}` } });
  return stdout;
}

const file = (name: string): string => path.join(tpm.dir, name);
const readPublic = async (name: string): Promise<Tpm2PublicKey> =>
  parseTpm2Public(unwrapTpm2bPublic(await readFile(file(name))));

/** tpm2_readpublic's `name:` line, in hex. */
async function tpmName(context: string): Promise<string> {
  const out = await tpm2("readpublic", "-c", context);
  const match = /^name: ([0-9a-f]+)$/m.exec(out);
  if (!match) throw new Error(`no name in tpm2_readpublic output:\n${out}`);
  return match[1];
}

/** tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
function credentialFile(credentialBlob: Buffer, encryptedSecret: Buffer): Buffer {
  const sized = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  return Buffer.concat([
    Buffer.from("badcc0de00000001", "hex"),
    sized(credentialBlob),
    sized(encryptedSecret),
  ]);
}

/** TPM2_ActivateCredential(ak, EK) with the EK's policy (PolicySecret of the endorsement hierarchy). */
async function activate(akContext: string, credentialBlob: Buffer, encryptedSecret: Buffer): Promise<Buffer> {
  await writeFile(file("cred.in"), credentialFile(credentialBlob, encryptedSecret));
  await tpm2("startauthsession", "--policy-session", "-S", "session.ctx");
  try {
    await tpm2("policysecret", "-S", "session.ctx", "-c", "e");
    await tpm2(
      "activatecredential",
      "-c",
      akContext,
      "-C",
      "ek.ctx",
      "-i",
      "cred.in",
      "-o",
      "secret.out",
      "-P",
      "session:session.ctx",
    );
  } finally {
    await tpm2("flushcontext", "session.ctx").catch(() => undefined);
  }
  return readFile(file("secret.out"));
}

let ek: Tpm2PublicKey;
let ak: Tpm2PublicKey;
let otherAk: Tpm2PublicKey;

beforeAll(async () => {
  tpm = await startSwtpm("2.0");
  await tpm2("createek", "-G", "rsa", "-u", "ek.pub", "-c", "ek.ctx");
  await tpm2(
    "createak",
    "-C",
    "ek.ctx",
    "-c",
    "ak.ctx",
    "-G",
    "rsa",
    "-g",
    "sha256",
    "-s",
    "rsassa",
    "-u",
    "ak.pub",
    "-n",
    "ak.name",
  );
  await tpm2(
    "createak",
    "-C",
    "ek.ctx",
    "-c",
    "ak2.ctx",
    "-G",
    "rsa",
    "-g",
    "sha256",
    "-s",
    "rsassa",
    "-u",
    "ak2.pub",
  );
  await tpm2("createprimary", "-C", "o", "-G", "rsa2048", "-c", "srk.ctx");
  await tpm2("readpublic", "-c", "srk.ctx", "-o", "srk.pub");
  ek = await readPublic("ek.pub");
  ak = await readPublic("ak.pub");
  otherAk = await readPublic("ak2.pub");
});

afterAll(async () => {
  await tpm?.stop();
});

test("the EK and AK parse, with the attributes of an EK and an AK", () => {
  expect(ek.structure.type).toBe(0x0001);
  expect(ek.key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
  expect(ek.attributes).toMatchObject({
    restricted: true,
    decrypt: true,
    sign: false,
    fixedTPM: true,
    fixedParent: true,
  });
  expect(ak.attributes).toMatchObject({
    restricted: true,
    decrypt: false,
    sign: true,
    fixedTPM: true,
    fixedParent: true,
  });
  expect(ek.structure.symmetric).toEqual({ algorithm: 0x0006, keyBits: 128, mode: 0x0043 });
});

test("the Names are the TPM's own", async () => {
  expect(ak.name.toString("hex")).toBe(await tpmName("ak.ctx"));
  expect(ek.name.toString("hex")).toBe(await tpmName("ek.ctx"));
  expect(otherAk.name.toString("hex")).toBe(await tpmName("ak2.ctx"));
  expect(ak.name).toEqual(await readFile(file("ak.name")));
});

test("the key and its fingerprint are those of the PEM tpm2-tools exports", async () => {
  await tpm2("readpublic", "-c", "ak.ctx", "-f", "pem", "-o", "ak.pem");
  const der = createPublicKey(await readFile(file("ak.pem"))).export({ type: "spki", format: "der" });
  expect(publicKeyFingerprint(ak.key)).toBe(createHash("sha256").update(der).digest("hex"));
  expect(publicKeyFingerprint(ak.key)).toMatch(/^[0-9a-f]{64}$/);
});

test("a credential made here activates in the TPM and the response checks", async () => {
  const report = parseReport(
    JSON.stringify({
      version: 1,
      request: "boot",
      tpm: "2.0",
      ek: ek.bytes.toString("base64"),
      srk: (await readPublic("srk.pub")).bytes.toString("base64"),
      ak: ak.bytes.toString("base64"),
    }),
  );
  const { challenge, expectedSecret } = makeChallenge(report);
  const c = challenge as Tpm2Challenge;
  expect(c.tpm).toBe("2.0");
  const secret = await activate(
    "ak.ctx",
    Buffer.from(c.credentialBlob, "base64"),
    Buffer.from(c.encryptedSecret, "base64"),
  );
  expect(secret).toEqual(expectedSecret);
  const response = JSON.stringify({ version: 1, id: c.id, secret: secret.toString("base64") });
  expect(checkResponse(challenge, expectedSecret, response)).toEqual({ ok: true });
});

test("a credential made for another AK's Name does not activate with this AK", async () => {
  const secret = Buffer.from("not for this AK");
  const c = makeTpm2Credential({ ek, akName: otherAk.name, secret });
  await expect(activate("ak.ctx", c.credentialBlob, c.encryptedSecret)).rejects.toThrow(/integrity/i);
  // ...while the AK it names does get it back.
  expect(await activate("ak2.ctx", c.credentialBlob, c.encryptedSecret)).toEqual(secret);
});

test("a credential with any part altered does not activate", async () => {
  const secret = Buffer.from("0123456789abcdef0123456789abcdef");
  const c = makeTpm2Credential({ ek, akName: ak.name, secret });
  const flip = (b: Buffer, at: number): Buffer => {
    const copy = Buffer.from(b);
    copy[at] ^= 0x01;
    return copy;
  };
  // The integrity HMAC, the encrypted identity, the OAEP-encrypted seed.
  await expect(activate("ak.ctx", flip(c.credentialBlob, 5), c.encryptedSecret)).rejects.toThrow(
    /integrity/i,
  );
  await expect(
    activate("ak.ctx", flip(c.credentialBlob, c.credentialBlob.length - 1), c.encryptedSecret),
  ).rejects.toThrow(/integrity/i);
  await expect(activate("ak.ctx", c.credentialBlob, flip(c.encryptedSecret, 100))).rejects.toThrow(
    /tpm2_activatecredential/,
  );
  expect(await activate("ak.ctx", c.credentialBlob, c.encryptedSecret)).toEqual(secret);
});
