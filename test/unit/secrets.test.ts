/**
 * The secret scanner of issue 12.5 (test/support/secrets.ts), on its own: each kind of secret is
 * found in each plaintext encoding it can take, the public halves of the same keys never are,
 * and each scanner names the place of a finding without printing the secret.
 */
import { execFileSync, spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as forge from "node-forge";
import { utils as sshUtils } from "ssh2";
import {
  ArgvSampler,
  formatFinding,
  harvestState,
  Matcher,
  PassphraseCrypter,
  scanArgv,
  scanBytes,
  scanDom0,
  scanRuns,
  SecretSet,
  type CliRun,
  type Finding,
} from "../support/secrets";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-secrets-unit-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sshKey(name: string): { key: string; pub: string; file: string } {
  const file = path.join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", file]);
  return { key: readFileSync(file, "utf8"), pub: readFileSync(`${file}.pub`, "utf8"), file };
}

/** An OpenSSH private key as PKCS#8 PEM (what node:crypto reads). */
function pkcs8Of(key: string): string {
  const parsed = sshUtils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  return (Array.isArray(parsed) ? parsed[0] : parsed).getPrivatePEM();
}

/** Base64 of `text` placed at `offset` bytes into other bytes, wrapped like MIME (76) or not. */
function embeddedBase64(text: string, offset: number, wrap?: number): string {
  const b64 = Buffer.concat([randomBytes(offset), Buffer.from(text), randomBytes(5)]).toString("base64");
  return wrap ? b64.match(new RegExp(`.{1,${wrap}}`, "g"))!.join("\n") : b64;
}

const found = (set: SecretSet, text: string | Buffer) =>
  scanBytes(set, typeof text === "string" ? Buffer.from(text) : text, "output", "test");

describe("Matcher", () => {
  it("finds every pattern, overlapping ones too, across chunks fed one after another", () => {
    const m = new Matcher(
      ["abcd", "bcd", "cdef", "zz"].map((s, i) => ({ bytes: Buffer.from(s), secret: i, encoding: s })),
    );
    expect([...m.find(Buffer.from("xxabcdefyy")).keys()].sort()).toEqual([0, 1, 2]);
    const hits: number[] = [];
    const state = m.feed(Buffer.from("..ab"), (p) => hits.push(p));
    m.feed(Buffer.from("cdef"), (p) => hits.push(p), state);
    expect(hits.sort()).toEqual([0, 1, 2]);
    expect(m.find(Buffer.from("abc bcx cde z z")).size).toBe(0);
  });
});

describe("an OpenSSH ed25519 private key", () => {
  let k: ReturnType<typeof sshKey>;
  let other: ReturnType<typeof sshKey>;
  let set: SecretSet;
  beforeAll(() => {
    k = sshKey("member");
    other = sshKey("other");
    set = new SecretSet();
    set.add(k.key, "test key");
  });

  it("is one secret, found as written, escaped, indented, and base64-encoded at any offset", () => {
    expect(set.size).toBe(1);
    const yamlIndented = k.key
      .split("\n")
      .map((l) => `      ${l}`)
      .join("\n");
    for (const text of [
      k.key,
      JSON.stringify({ privateKey: k.key }),
      `ssh_keys:\n  ed25519_private: |\n${yamlIndented}`,
      embeddedBase64(k.key, 0),
      embeddedBase64(k.key, 1),
      embeddedBase64(k.key, 2, 76),
      embeddedBase64(k.key, 7, 64),
    ])
      expect(found(set, text)).toHaveLength(1);
  });

  it("is found as its raw private bytes in binary data", () => {
    const seed = Buffer.from(createPrivateKey(pkcs8Of(k.key)).export({ format: "jwk" }).d!, "base64url");
    expect(found(set, Buffer.concat([randomBytes(100), seed, randomBytes(100)]))).toHaveLength(1);
  });

  it("is not found in its public halves, nor in another key of the same type", () => {
    const fingerprint = execFileSync("ssh-keygen", ["-l", "-f", `${k.file}.pub`], { encoding: "utf8" });
    const ca = sshKey("ca");
    execFileSync("ssh-keygen", ["-q", "-s", ca.file, "-I", "member", "-h", "-n", "member", `${k.file}.pub`]);
    const cert = readFileSync(`${k.file}-cert.pub`, "utf8");
    const spki = createPublicKey(pkcs8Of(k.key)).export({ type: "spki", format: "pem" }).toString();
    for (const text of [k.pub, fingerprint, cert, spki, `@cert-authority * ${ca.pub}`, other.pub])
      expect(found(set, text)).toEqual([]);
    // Another key is no match for this one (only the check for any private key fires).
    expect(found(set, other.key).map((f) => f.secret)).toEqual(["an unknown PEM private key"]);
  });

  it("is found even where only its armour and a body line remain (an unknown key)", () => {
    const unknown = new SecretSet();
    expect(found(unknown, other.key)).toEqual([
      expect.objectContaining({ secret: "an unknown PEM private key" }),
    ]);
    expect(found(unknown, other.pub)).toEqual([]);
  });
});

describe("an RSA key in PKCS#8, with its X.509 certificate", () => {
  const pair = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const set = new SecretSet();
  set.add(pair.privateKey, "ca key");

  it("is found as PEM, as its DER in base64 at any offset, and re-encoded as PKCS#1", () => {
    const der = createPrivateKey(pair.privateKey).export({ type: "pkcs8", format: "der" });
    const pkcs1 = createPrivateKey(pair.privateKey).export({ type: "pkcs1", format: "pem" }).toString();
    for (const text of [
      pair.privateKey,
      JSON.stringify(pair.privateKey),
      der,
      Buffer.concat([randomBytes(1), der]).toString("base64"),
      Buffer.concat([randomBytes(2), der]).toString("base64"),
      embeddedBase64(pair.privateKey, 4, 76),
      pkcs1,
    ])
      expect(found(set, text).length).toBeGreaterThan(0);
  });

  it("is not found in its public key nor its certificate, in any encoding", () => {
    const pub = createPublicKey(pair.publicKey);
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey);
    cert.serialNumber = "01";
    cert.validity.notBefore = new Date();
    cert.validity.notAfter = new Date(Date.now() + 86400_000);
    cert.setSubject([{ name: "commonName", value: "red TVD CA" }]);
    cert.setIssuer([{ name: "commonName", value: "red TVD CA" }]);
    cert.sign(forge.pki.privateKeyFromPem(pair.privateKey), forge.md.sha256.create());
    const certPem = forge.pki.certificateToPem(cert);
    const spkiDer = pub.export({ type: "spki", format: "der" });
    for (const text of [
      pair.publicKey,
      certPem,
      JSON.stringify(pub.export({ format: "jwk" })),
      ...[0, 1, 2].map((o) => Buffer.concat([randomBytes(o), spkiDer]).toString("base64")),
      ...[0, 1, 2].map((o) => embeddedBase64(certPem, o)),
    ])
      expect(found(set, text)).toEqual([]);
  });
});

describe("owner and SRK auth, passphrases", () => {
  const hex = randomBytes(20).toString("hex");
  const set = new SecretSet();
  set.add(`hash:${hex}`, "VtpmManager vtpmmgr ownerAuth", "auth");
  set.add("correct horse battery staple", "connection passphrase", "passphrase");

  it("finds an auth as hex (either case), as raw bytes and base64, and a passphrase as text and base64", () => {
    for (const text of [
      `extra = "owner_auth=${hex}"`,
      hex.toUpperCase(),
      Buffer.concat([randomBytes(3), Buffer.from(hex, "hex")]),
      Buffer.from(hex, "hex").toString("base64"),
      Buffer.from(`owner_auth=${hex}`).toString("base64"),
      "pass: correct horse battery staple",
      Buffer.from("x correct horse battery staple").toString("base64"),
    ])
      expect(found(set, text)).toHaveLength(1);
  });

  it("takes TPM's well-known auth for the public constant it is", () => {
    const s = new SecretSet();
    expect(s.add("well-known", "ownerAuth", "auth")).toEqual([]);
    expect(s.size).toBe(0);
    expect(s.publicValues.has("well-known")).toBe(true);
  });
});

describe("Pulumi passphrase secrets", () => {
  // Written by the real CLI (v3.259.0): `pulumi config set --secret` with passphrase "pp".
  const salt = "v1:n/zTe2t5tSY=:v1:c/DdhiWcNDraDx0A:s83p1rXmGHZ49T17wRj4EcKnZcvFTw==";
  it("decrypts what the CLI encrypted, and refuses a wrong passphrase", () => {
    const c = new PassphraseCrypter("pp", salt);
    expect(c.decrypt("v1:a8rmFNM9Hih1HW7U:ueu4QvfB28zufqHd3d9p+BuV90bv1deGNOJTcvZmfA==")).toBe(
      "CONFIGSECRET789",
    );
    expect(() => new PassphraseCrypter("not it", salt)).toThrow(/does not open/);
  });
});

describe("a stack's state", () => {
  it("yields each secret under its resource, with the homes its kind declares for the property meant for them", () => {
    const memberKey = sshKey("seed-key").key;
    const labKey = sshKey("lab-key").key;
    const hex = randomBytes(20).toString("hex");
    // As `pulumi stack export --show-secrets` shows secrets; the backend's files hold ciphertext.
    const secret = (v: unknown) => ({
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      plaintext: JSON.stringify(v),
    });
    const type = (kind: string) => `pulumi-nodejs:dynamic/pulumi-tvd:${kind}`;
    const doc = {
      deployment: {
        resources: [
          {
            urn: `urn:pulumi:e2e::p::${type("SeedImage")}::m1-seed`,
            type: type("SeedImage"),
            inputs: {
              connection: secret({ privateKey: labKey }),
              seed: secret({ sshHostKey: { privateKey: memberKey } }),
            },
            outputs: { path: "/var/lib/xen/images/m1-seed.img" },
          },
          {
            urn: `urn:pulumi:e2e::p::${type("VtpmManager")}::manager`,
            type: type("VtpmManager"),
            outputs: {
              name: "vtpmmgr",
              configDir: "/etc/xen",
              ownerAuth: secret(hex),
              srkAuth: secret("well-known"),
            },
          },
        ],
      },
    };
    const set = new SecretSet();
    expect(harvestState(doc, set, undefined)).toBe(4);
    const byLabel = Object.fromEntries(set.secrets.map((x) => [[...x.labels][0], [x.kind, [...x.homes]]]));
    expect(byLabel).toEqual({
      "SeedImage m1-seed connection.privateKey": ["private key", []],
      "SeedImage m1-seed seed.sshHostKey.privateKey": ["private key", ["/var/lib/xen/images/m1-seed.img"]],
      "VtpmManager manager ownerAuth": [
        "auth",
        ["/etc/xen/vtpmmgr.cfg", "/var/log/xen/console/guest-vtpmmgr.log"],
      ],
    });
    expect(set.publicValues).toEqual(new Set(["well-known"]));
  });
});

describe("the places", () => {
  const hex = randomBytes(20).toString("hex");
  const set = new SecretSet();
  set.add(hex, "VtpmManager vtpmmgr ownerAuth", "auth", ["/etc/xen/vtpmmgr.cfg"]);
  const noSecretIn = (findings: Finding[]) => {
    for (const f of findings) {
      expect(formatFinding(f)).not.toContain(hex);
      expect(formatFinding(f)).toMatch(/auth sha256:[0-9a-f]{12}/);
    }
  };

  it("CLI runs: each event and diagnostic by its sequence; the SDK's debug RPC echo counted apart", () => {
    const events = [
      {
        sequence: 1,
        diagnosticEvent: { severity: "error", message: `xl said owner_auth=${hex}`, urn: "a::b::vtpmmgr" },
      },
      {
        sequence: 2,
        diagnosticEvent: { severity: "debug", message: `RegisterResource RPC finished: x; resp: ${hex}` },
      },
      {
        sequence: 3,
        resOutputsEvent: { metadata: { op: "create", new: { outputs: { ownerAuth: "[secret]" } } } },
      },
    ];
    const runs: CliRun[] = [
      {
        args: ["up", "--json"],
        result: { code: 0, stdout: events.map((e) => JSON.stringify(e)).join("\n"), stderr: "" },
      },
      { args: ["stack", "export", "--show-secrets"], result: { code: 0, stdout: hex, stderr: "" } },
      { args: ["config", "set"], result: { code: 1, stdout: "", stderr: `error: ${hex}` } },
    ];
    const r = scanRuns(set, runs);
    expect(r.findings.map((f) => [f.place, f.where])).toEqual([
      ["diagnostic", "pulumi up (CLI run 1), event #1 (diagnosticEvent error on vtpmmgr)"],
      ["output", "pulumi config set (CLI run 3) stderr"],
    ]);
    expect(r).toMatchObject({
      upstreamDebugEvents: 1,
      upstreamDebugEventsWithSecrets: 1,
      skippedShowSecrets: 1,
    });
    noSecretIn(r.findings);
  });

  it("dom0 files: only the secret's own file, and only at 0600", () => {
    const host = path.join(dir, "dom0-a");
    const file = (p: string, content: string, mode: number) => {
      const f = path.join(host, "root", p);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, content);
      chmodSync(f, mode);
    };
    file("etc/xen/vtpmmgr.cfg", `extra = "owner_auth=${hex}"\n`, 0o600);
    file("etc/xen/web1.cfg", 'name = "web1"\n', 0o644);
    file("var/log/xen/console/guest-vtpmmgr.log", `cmd_line: owner_auth=${hex}\n`, 0o644);
    const dom0 = { name: "dom0-a", dir: host, holderPid: 0 };
    const first = scanDom0(set, [dom0]);
    expect(first.findings.map((f) => f.where)).toEqual([
      "dom0-a:/var/log/xen/console/guest-vtpmmgr.log (mode 0644), not a file meant to hold it",
    ]);
    chmodSync(path.join(host, "root/etc/xen/vtpmmgr.cfg"), 0o644);
    rmSync(path.join(host, "root/var/log/xen/console/guest-vtpmmgr.log"));
    file("tmp/key", sshKey("stray").key, 0o600);
    const second = scanDom0(set, [dom0]);
    expect(second.findings.map((f) => [f.where, f.secret.replace(/ \(.*/, "")])).toEqual([
      [
        "dom0-a:/etc/xen/vtpmmgr.cfg (mode 0644), the secret's own file but not 0600",
        `auth ${set.secrets[0].id}`,
      ],
      ["dom0-a:/tmp/key (mode 0600)", "an unknown PEM private key"],
    ]);
    noSecretIn(second.findings.filter((f) => f.secret.startsWith("auth")));
  });

  it("process arguments: a command line holding a secret, sampled while it runs", async () => {
    const sampler = new ArgvSampler();
    const child = spawn("sh", ["-c", "sleep 2", "sh", `owner_auth=${hex}`], { stdio: "ignore" });
    const stop = sampler.start("pulumi up");
    await new Promise((r) => setTimeout(r, 200));
    stop();
    child.kill();
    expect(sampler.samples).toBeGreaterThanOrEqual(3);
    const findings = scanArgv(set, sampler);
    expect(findings.map((f) => f.where)).toEqual([`pid ${child.pid} sh argv[4] (during pulumi up)`]);
    noSecretIn(findings);
  });
});
