import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fingerprintOf, keyTypeOf, verifyHostKey } from "../../provider/transport/hostKey";

let dir: string;
let blobA: Buffer;
let lineA: string;
let blobB: Buffer;
let fingerprintA: string;

function keygen(name: string): { blob: Buffer; line: string } {
  const file = path.join(dir, name);
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  const line = readFileSync(`${file}.pub`, "utf8").trim();
  return { blob: Buffer.from(line.split(" ")[1], "base64"), line };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-hostkey-"));
  ({ blob: blobA, line: lineA } = keygen("a"));
  ({ blob: blobB } = keygen("b"));
  const r = spawnSync("ssh-keygen", ["-l", "-E", "sha256", "-f", path.join(dir, "a.pub")], {
    encoding: "utf8",
  });
  fingerprintA = r.stdout.split(" ")[1];
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("fingerprintOf", () => {
  it("matches what ssh-keygen -l prints", () => {
    expect(fingerprintOf(blobA)).toBe(fingerprintA);
    expect(keyTypeOf(blobA)).toBe("ssh-ed25519");
  });
});

describe("verifyHostKey", () => {
  const keyPart = () => lineA.split(" ").slice(0, 2).join(" ");

  it("accepts the pinned fingerprint and names both keys on mismatch", () => {
    expect(verifyHostKey({ kind: "fingerprint", fingerprint: fingerprintA }, "h", 22, blobA)).toEqual({
      ok: true,
    });
    const v = verifyHostKey({ kind: "fingerprint", fingerprint: fingerprintA }, "h", 2201, blobB);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain(`expected ${fingerprintA}`);
    expect(!v.ok && v.reason).toContain(`ssh-ed25519 ${fingerprintOf(blobB)}`);
  });

  it.each([
    ["plain host on port 22", (k: string) => `dom0.example ${k}`, "dom0.example", 22, true],
    ["host pattern list", (k: string) => `other,dom0.example ${k}`, "dom0.example", 22, true],
    ["bracketed host:port", (k: string) => `[127.0.0.1]:2201 ${k}`, "127.0.0.1", 2201, true],
    ["port must match", (k: string) => `[127.0.0.1]:2201 ${k}`, "127.0.0.1", 2202, false],
    ["plain entry does not cover a non-22 port", (k: string) => `127.0.0.1 ${k}`, "127.0.0.1", 2201, false],
    ["wildcard", (k: string) => `*.example ${k}`, "dom0.example", 22, true],
    ["negation wins", (k: string) => `*.example,!dom0.example ${k}`, "dom0.example", 22, false],
    ["comments and blank lines", (k: string) => `# c\n\ndom0 ${k}`, "dom0", 22, true],
  ])("known_hosts: %s", (_, entry, host, port, ok) => {
    const v = verifyHostKey(
      { kind: "knownHosts", knownHosts: entry(keyPart()) },
      host as string,
      port as number,
      blobA,
    );
    expect(v.ok).toBe(ok);
  });

  it("understands hashed known_hosts lines as written by ssh-keygen -H", () => {
    const file = path.join(dir, "known_hosts");
    writeFileSync(file, `[127.0.0.1]:2201 ${keyPart()}\n`);
    spawnSync("ssh-keygen", ["-q", "-H", "-f", file]);
    const hashed = readFileSync(file, "utf8");
    expect(hashed.startsWith("|1|")).toBe(true);
    expect(verifyHostKey({ kind: "knownHosts", knownHosts: hashed }, "127.0.0.1", 2201, blobA).ok).toBe(true);
    expect(verifyHostKey({ kind: "knownHosts", knownHosts: hashed }, "127.0.0.1", 2202, blobA).ok).toBe(
      false,
    );
  });

  it("rejects a @revoked key even when another line lists it", () => {
    const kh = `dom0 ${keyPart()}\n@revoked dom0 ${keyPart()}`;
    const v = verifyHostKey({ kind: "knownHosts", knownHosts: kh }, "dom0", 22, blobA);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("@revoked");
  });

  it("says when known_hosts has no entry for the host, and which key it saw", () => {
    const v = verifyHostKey({ kind: "knownHosts", knownHosts: `other ${keyPart()}` }, "dom0", 22, blobB);
    expect(!v.ok && v.reason).toBe(
      `knownHosts has no entry for dom0; the host presented ssh-ed25519 ${fingerprintOf(blobB)}`,
    );
  });

  it("accepts anything only when explicitly told to", () => {
    expect(verifyHostKey({ kind: "insecureAcceptAny" }, "dom0", 22, blobB).ok).toBe(true);
  });
});
