/**
 * Issue 12, item 5: after every e2e run, no private key, passphrase, owner or SRK auth is in
 * plaintext in the stack's state, the CLI's output, its engine events and error messages, the
 * dom0's files (but the 0600 file each secret is meant for), or any process's arguments.
 *
 * Three parts:
 *  - the secrets a stack uses (SecretSet): the lab's SSH keys, the stack's passphrase, every
 *    config secret, and every secret in every checkpoint the backend ever wrote (decrypted here
 *    with the stack's passphrase, as the CLI does): VtpmManager ownerAuth/srkAuth, TvdAuthority
 *    and MemberIdentity private keys, a SeedImage's keys, a connection's key and passphrase.
 *    Each becomes byte patterns for its plaintext encodings (the PEM body, base64 of the key or
 *    of the PEM at any offset, the raw key bytes, hex; an auth's hex, raw bytes and base64),
 *    drawn only from bytes that are private: a public key, certificate or fingerprint of the
 *    same key never matches;
 *  - scanners over each place (scanRuns, scanDom0, scanStateFiles, ArgvSampler + scanArgv), one
 *    Aho-Corasick automaton over all patterns (Matcher);
 *  - SecretScan, one per TestStack (test/e2e/pulumi.ts): argv sampled during every CLI run, the
 *    dom0s' files after every operation that may write them, everything at dispose, which fails
 *    the test file naming each finding's place and the secret's hash prefix, never the secret.
 *
 * Figures go to bench/results/reliability.json, section "secrets", one entry per test file.
 */
import { createDecipheriv, createHash, createPrivateKey, pbkdf2Sync, type JsonWebKey } from "node:crypto";
import {
  closeSync,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  type Stats,
} from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { utils as sshUtils } from "ssh2";
import type { RunResult } from "../../lab/exec";
import { readReliability, recordReliability, reliabilityScope, RELIABILITY_FILE } from "./reliability";

// ---------------------------------------------------------------------------------------------
// Matching: one automaton for every pattern of every secret, over bytes.

export interface Pattern {
  readonly bytes: Buffer;
  /** Index of the secret in its SecretSet. */
  readonly secret: number;
  /** How the secret is written in this pattern, e.g. "PEM body line", "hex". */
  readonly encoding: string;
}

/** Aho-Corasick as a full DFA (256 transitions per state): one table lookup per byte scanned. */
export class Matcher {
  private readonly delta: Int32Array;
  private readonly outputs: ReadonlyArray<readonly number[] | undefined>;
  private readonly hasOutput: Uint8Array;
  /** Bytes that start no pattern: the automaton stays at its root on them (most binary data). */
  private readonly rootStays: Uint8Array;

  constructor(readonly patterns: readonly Pattern[]) {
    const children: Array<Map<number, number>> = [new Map()];
    const outs: number[][] = [[]];
    patterns.forEach((p, i) => {
      let s = 0;
      for (const b of p.bytes) {
        let next = children[s].get(b);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          outs.push([]);
          children[s].set(b, next);
        }
        s = next;
      }
      outs[s].push(i);
    });
    const delta = new Int32Array(children.length * 256);
    const fail = new Int32Array(children.length);
    const queue: number[] = [];
    for (let b = 0; b < 256; b++) {
      const c = children[0].get(b);
      if (c !== undefined) {
        delta[b] = c;
        queue.push(c);
      }
    }
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q];
      // fail[s] is shallower than s, so its outputs are complete already (breadth first).
      if (outs[fail[s]].length) outs[s] = [...outs[s], ...outs[fail[s]]];
      for (let b = 0; b < 256; b++) {
        const c = children[s].get(b);
        if (c !== undefined) {
          fail[c] = delta[fail[s] * 256 + b];
          delta[s * 256 + b] = c;
          queue.push(c);
        } else {
          delta[s * 256 + b] = delta[fail[s] * 256 + b];
        }
      }
    }
    this.delta = delta;
    this.outputs = outs.map((o) => (o.length ? o : undefined));
    this.hasOutput = Uint8Array.from(outs, (o) => (o.length ? 1 : 0));
    this.rootStays = Uint8Array.from({ length: 256 }, (_, b) => (delta[b] === 0 ? 1 : 0));
  }

  /**
   * Feeds bytes from automaton state `state` (0 to start); calls `hit` with each pattern found
   * and the offset just past its end. Returns the state to continue with on the next chunk.
   */
  feed(bytes: Uint8Array, hit: (pattern: number, end: number) => void, state = 0): number {
    const { delta, hasOutput, rootStays } = this;
    const n = bytes.length;
    let s = state;
    for (let i = 0; i < n; i++) {
      if (s === 0) {
        while (i < n && rootStays[bytes[i]] === 1) i++;
        if (i === n) break;
      }
      s = delta[(s << 8) | bytes[i]];
      if (hasOutput[s] === 1) for (const p of this.outputs[s]!) hit(p, i + 1);
    }
    return s;
  }

  /** The distinct patterns found in bytes, each with its first end offset. */
  find(bytes: Uint8Array): Map<number, number> {
    const found = new Map<number, number>();
    this.feed(bytes, (p, end) => {
      if (!found.has(p)) found.set(p, end);
    });
    return found;
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets and the encodings they are looked for in.

export type SecretKind = "private key" | "auth" | "passphrase" | "opaque";

export interface Secret {
  /** `sha256:<12 hex>` of the value: what findings print instead of the secret. */
  readonly id: string;
  readonly kind: SecretKind;
  /** Where it came from, e.g. "MemberIdentity red-01-identity sshHostPrivateKey"; no secret in it. */
  readonly labels: Set<string>;
  /** The dom0 files meant to hold it (its allowed homes, each required to be a 0600 file). */
  readonly homes: Set<string>;
  readonly patterns: Array<{ bytes: Buffer; encoding: string }>;
}

const MIN_PATTERN = 16;
const MAX_PATTERN = 32;
/** A PEM private key of any kind, known or not: its armour followed by a body line. */
const ANY_PRIVATE_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:\r?\n|\\r?\\n)[ \t]*[A-Za-z0-9+/=]{16}/;
const PRIVATE_PEM_BLOCK =
  /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;
/**
 * vtpmmgr-stubdom's owner_auth= and srk_auth=: a SHA-1, as 40 hex digits (optionally hash:); a
 * member's vTPM auth (MemberIdentity tpmOwnerAuth, tpmSrkAuth): 32 bytes, as 64 hex digits.
 */
const AUTH = /^(hash:)?([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/;
/** TPM 1.2's well-known auth (20 zero bytes) is a public constant, not a secret. */
const PUBLIC_AUTH = new Set(["well-known"]);

export function secretId(value: string): string {
  return `sha256:${createHash("sha256").update(value).digest("hex").slice(0, 12)}`;
}

/** Up to `count` windows of MAX_PATTERN characters spread over a run (its start, middle, end). */
function windows(run: string, count: number): string[] {
  if (run.length < MIN_PATTERN) return [];
  if (run.length <= MAX_PATTERN) return [run];
  const out = new Set<string>();
  for (let k = 0; k < count; k++) {
    const start = Math.round((k * (run.length - MAX_PATTERN)) / Math.max(1, count - 1));
    out.add(run.slice(start, start + MAX_PATTERN));
  }
  return [...out];
}

/** At most `count` of the runs long enough to search for, spread over the list. */
function spread(runs: string[], count: number): string[] {
  const long = runs.filter((r) => r.length >= MIN_PATTERN);
  const step = Math.max(1, Math.ceil(long.length / count));
  return long.filter((_, i) => i % step === 0);
}

/**
 * Base64 of `bytes` from offset `shift`, cut to the runs of characters that encode only private
 * bytes (mask[i] = 1): any text holding those bytes base64-encoded at an offset congruent to
 * `shift` (mod 3) holds these runs.
 */
function privateBase64Runs(
  bytes: Uint8Array,
  mask: Uint8Array,
  shift: number,
  encoding: "base64" | "base64url" = "base64",
): string[] {
  const tail = Buffer.from(bytes.subarray(shift));
  const text = tail.toString(encoding).replace(/=+$/, "");
  const runs: string[] = [];
  let start = -1;
  for (let j = 0; j <= text.length; j++) {
    const first = shift + ((6 * j) >> 3);
    const last = shift + ((6 * j + 5) >> 3);
    const ok = j < text.length && last < bytes.length && mask[first] === 1 && mask[last] === 1;
    if (ok && start < 0) start = j;
    if (!ok && start >= 0) {
      runs.push(text.slice(start, j));
      start = -1;
    }
  }
  return runs;
}

interface PemBlock {
  readonly label: string;
  readonly text: string;
  /** The body's base64 lines with their offsets in `text`. */
  readonly lines: Array<{ text: string; offset: number }>;
}

function privatePemBlocks(value: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of value.matchAll(PRIVATE_PEM_BLOCK)) {
    const text = m[0];
    const bodyStart = text.indexOf("\n") + 1;
    const lines: PemBlock["lines"] = [];
    let offset = bodyStart;
    for (const raw of m[2].split("\n")) {
      const line = raw.replace(/\r$/, "");
      const lead = line.length - line.trimStart().length;
      const trimmed = line.trim();
      // Legacy encrypted PEM headers (Proc-Type:, DEK-Info:) and blank lines are no base64.
      if (trimmed && /^[A-Za-z0-9+/=]+$/.test(trimmed)) lines.push({ text: trimmed, offset: offset + lead });
      offset += raw.length + 1;
    }
    blocks.push({ label: m[1], text, lines });
  }
  return blocks;
}

/** The byte range of the private section of an OpenSSH key (openssh-key-v1), and its cipher. */
function opensshPrivateSection(bin: Buffer): { cipher: string; start: number; end: number } | undefined {
  const magic = "openssh-key-v1\0";
  if (bin.subarray(0, magic.length).toString("latin1") !== magic) return undefined;
  let o = magic.length;
  const str = () => {
    const n = bin.readUInt32BE(o);
    const s = bin.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    return s;
  };
  const cipher = str().toString("latin1");
  str(); // kdf name
  str(); // kdf options
  const keys = bin.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < keys; i++) str(); // public keys
  const len = bin.readUInt32BE(o);
  return { cipher, start: o + 4, end: o + 4 + len };
}

const PRIVATE_JWK_PARTS = ["d", "p", "q", "dp", "dq", "qi"] as const;

/**
 * Which bytes of a key's binary body are private: its private components (d, and for RSA the
 * primes and CRT values) located in the body, or, for an encrypted key, its ciphertext. A
 * public key, whose bytes the body also holds, is never marked.
 */
function privateMask(block: PemBlock, bin: Buffer): { mask: Uint8Array; components: Buffer[] } {
  const mask = new Uint8Array(bin.length);
  const components: Buffer[] = [];
  const section = block.label === "OPENSSH PRIVATE KEY" ? opensshPrivateSection(bin) : undefined;
  if (section && section.cipher !== "none") {
    mask.fill(1, section.start, section.end);
    return { mask, components };
  }
  if (/ENCRYPTED/.test(block.label) || /^Proc-Type:/m.test(block.text)) {
    // PKCS#8 or legacy PEM encryption: all but the algorithm header is ciphertext.
    mask.fill(1, Math.min(64, bin.length >> 1));
    return { mask, components };
  }
  let jwk: JsonWebKey;
  try {
    let pem = block.text;
    if (section) {
      const parsed = sshUtils.parseKey(block.text);
      if (parsed instanceof Error) throw parsed;
      pem = (Array.isArray(parsed) ? parsed[0] : parsed).getPrivatePEM();
    }
    jwk = createPrivateKey(pem).export({ format: "jwk" });
  } catch {
    mask.fill(1, Math.floor(bin.length / 3));
    return { mask, components };
  }
  for (const part of PRIVATE_JWK_PARTS) {
    const value = jwk[part];
    if (typeof value !== "string") continue;
    const bytes = Buffer.from(value, "base64url");
    const at = bin.indexOf(bytes);
    if (bytes.length < 8 || at < 0) continue;
    mask.fill(1, at, at + bytes.length);
    components.push(bytes);
  }
  return { mask, components };
}

type PatternSink = (bytes: Buffer | string, encoding: string) => void;

function keyPatterns(block: PemBlock, add: PatternSink): void {
  const body = block.lines.map((l) => l.text).join("");
  const bin = Buffer.from(body, "base64");
  const { mask, components } = privateMask(block, bin);

  // 1. The PEM as written (raw, JSON- or YAML-escaped, indented): the private characters of
  //    each body line. A character is private when both bytes it draws bits from are.
  const charPrivate = (j: number) =>
    mask[(6 * j) >> 3] === 1 && mask[Math.min(bin.length - 1, (6 * j + 5) >> 3)] === 1;
  let at = 0;
  const textMask = new Uint8Array(Buffer.byteLength(block.text));
  const lineRuns: string[] = [];
  for (const line of block.lines) {
    let start = -1;
    for (let k = 0; k <= line.text.length; k++) {
      const ok = k < line.text.length && line.text[k] !== "=" && charPrivate(at + k);
      if (ok) textMask[line.offset + k] = 1;
      if (ok && start < 0) start = k;
      if (!ok && start >= 0) {
        lineRuns.push(line.text.slice(start, k));
        start = -1;
      }
    }
    at += line.text.length;
  }
  // At most eight lines' worth, spread over the key (an RSA key has ~25 private lines).
  spread(lineRuns, 8).forEach((r) => windows(r, 1).forEach((w) => add(w, "PEM body")));

  // 2. The key's binary (DER or openssh-key-v1) base64-encoded at any offset, e.g. inside
  //    another container; and the PEM text itself base64-encoded (a cloud-init b64 file).
  const textBytes = Buffer.from(block.text);
  for (let shift = 0; shift < 3; shift++) {
    for (const run of spread(privateBase64Runs(bin, mask, shift), 3))
      windows(run, 2).forEach((w) => add(w, "base64 of the key"));
    for (const run of spread(privateBase64Runs(textBytes, textMask, shift), 3))
      windows(run, 1).forEach((w) => add(w, "base64 of the PEM"));
  }

  // 3. The private value itself: raw bytes (a DER file, a swtpm blob), hex, base64 and
  //    base64url (a JWK's "d").
  for (const c of components.slice(0, 1)) {
    add(c.subarray(0, MAX_PATTERN), "raw key bytes");
    add(c.toString("hex").slice(0, MAX_PATTERN), "hex of the key");
    add(c.toString("base64").slice(0, MAX_PATTERN), "base64 of the private value");
    add(c.toString("base64url").slice(0, MAX_PATTERN), "base64url of the private value (JWK)");
  }
}

function authPatterns(hex: string, add: PatternSink): void {
  const raw = Buffer.from(hex, "hex");
  add(hex.toLowerCase(), "hex auth");
  add(hex.toUpperCase(), "hex auth (upper case)");
  add(raw, "raw auth bytes");
  const all = (n: number) => new Uint8Array(n).fill(1);
  const hexText = Buffer.from(hex.toLowerCase());
  for (let shift = 0; shift < 3; shift++) {
    for (const run of privateBase64Runs(raw, all(raw.length), shift))
      windows(run, 1).forEach((w) => add(w, "base64 of the auth"));
    for (const run of privateBase64Runs(hexText, all(hexText.length), shift))
      windows(run, 1).forEach((w) => add(w, "base64 of the hex auth"));
  }
}

function textPatterns(value: string, add: PatternSink): void {
  const bytes = Buffer.from(value);
  add(bytes.length > MAX_PATTERN * 2 ? bytes.subarray(0, MAX_PATTERN * 2) : bytes, "plaintext");
  const all = new Uint8Array(bytes.length).fill(1);
  for (let shift = 0; shift < 3; shift++)
    for (const run of privateBase64Runs(bytes, all, shift))
      if (run.length >= 12) add(run.slice(0, MAX_PATTERN), "base64 of the value");
}

/** The dom0 files meant for the private keys and the auths found under one property. */
interface Homes {
  readonly keys?: readonly string[];
  readonly auths?: readonly string[];
}

/** The secrets one stack uses, each with its patterns; patterns are added as secrets are found. */
export class SecretSet {
  readonly secrets: Secret[] = [];
  private readonly byValue = new Map<string, Secret>();
  /** Values seen as secrets that are public by definition (TPM's well-known auth). */
  readonly publicValues = new Set<string>();
  private matcher?: Matcher;

  /**
   * Adds one value: a text holding PEM private keys (each key a secret), an auth, or a
   * passphrase or other secret text. Returns the secrets it added or matched.
   */
  add(
    value: string,
    label: string,
    as: "auto" | "auth" | "passphrase" | "opaque" = "auto",
    homes: readonly string[] = [],
  ): Secret[] {
    if (PUBLIC_AUTH.has(value)) {
      this.publicValues.add(value);
      return [];
    }
    const blocks = privatePemBlocks(value);
    if (blocks.length)
      return blocks.map((b) => this.put(b.text, "private key", label, homes, (add) => keyPatterns(b, add)));
    const auth = AUTH.exec(value);
    if (auth && (as === "auto" || as === "auth"))
      return [this.put(auth[2].toLowerCase(), "auth", label, homes, (add) => authPatterns(auth[2], add))];
    if (as === "auto" || value.length < 8) return [];
    return [this.put(value, as, label, homes, (add) => textPatterns(value, add))];
  }

  private put(
    value: string,
    kind: SecretKind,
    label: string,
    homes: readonly string[],
    patterns: (add: PatternSink) => void,
  ): Secret {
    let secret = this.byValue.get(value);
    if (!secret) {
      secret = { id: secretId(value), kind, labels: new Set(), homes: new Set(), patterns: [] };
      const seen = new Set<string>();
      const list = secret.patterns;
      patterns((bytes, encoding) => {
        const b = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : Buffer.from(bytes);
        const key = b.toString("hex");
        if (b.length >= Math.min(MIN_PATTERN, 8) && !seen.has(key)) {
          seen.add(key);
          list.push({ bytes: b, encoding });
        }
      });
      this.byValue.set(value, secret);
      this.secrets.push(secret);
      this.matcher = undefined;
    }
    if (!secret.labels.has(label)) secret.labels.add(label);
    for (const home of homes) secret.homes.add(home);
    return secret;
  }

  /** Every secret in a JSON value (a decrypted secret or a config value), by property name. */
  harvest(value: unknown, label: string, homes: Homes = {}, key = ""): void {
    if (typeof value === "string") {
      if (privatePemBlocks(value).length) this.add(value, label, "auto", homes.keys);
      else if (/auth$/i.test(key)) this.add(value, label, "auth", homes.auths);
      else if (/passphrase|password/i.test(key)) this.add(value, label, "passphrase");
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => this.harvest(v, `${label}[${i}]`, homes, key));
    else if (value && typeof value === "object")
      for (const [k, v] of Object.entries(value)) this.harvest(v, `${label}.${k}`, homes, k);
  }

  get size(): number {
    return this.secrets.length;
  }

  matcherOf(): Matcher {
    this.matcher ??= new Matcher(
      this.secrets.flatMap((s, i) =>
        s.patterns.map((p) => ({ bytes: p.bytes, secret: i, encoding: p.encoding })),
      ),
    );
    return this.matcher;
  }

  /** How a finding names a secret: its kind, hash prefix and where it came from; never the value. */
  describe(i: number): string {
    const s = this.secrets[i];
    const labels = [...s.labels];
    return `${s.kind} ${s.id} (${labels.slice(0, 2).join("; ")}${labels.length > 2 ? `; +${labels.length - 2}` : ""})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Pulumi's passphrase secrets: AES-256-GCM with a PBKDF2-SHA256 key (1,000,000 rounds) from the
// passphrase and the stack's salt, as the CLI's passphrase secrets manager encrypts them.

const derivedKeys = new Map<string, Buffer>();

export class PassphraseCrypter {
  private readonly key: Buffer;

  /** `salt` is the stack's `encryptionsalt` (v1:<salt>:<check>), from its config or its state. */
  constructor(passphrase: string, salt: string) {
    const m = /^v1:([^:]+):(v1:.+)$/.exec(salt.trim());
    if (!m) throw new Error("unrecognised encryption salt");
    const cacheKey = createHash("sha256").update(`${passphrase}\0${m[1]}`).digest("hex");
    let key = derivedKeys.get(cacheKey);
    if (!key) {
      key = pbkdf2Sync(passphrase, Buffer.from(m[1], "base64"), 1_000_000, 32, "sha256");
      derivedKeys.set(cacheKey, key);
    }
    this.key = key;
    let check: string | undefined;
    try {
      check = this.decrypt(m[2]);
    } catch {
      // a wrong key fails GCM's authentication
    }
    if (check !== "pulumi") throw new Error("the passphrase does not open this stack's secrets");
  }

  decrypt(ciphertext: string): string {
    const [version, nonce, data] = ciphertext.split(":");
    if (version !== "v1" || !nonce || !data) throw new Error("unrecognised ciphertext");
    const bytes = Buffer.from(data, "base64");
    const d = createDecipheriv("aes-256-gcm", this.key, Buffer.from(nonce, "base64"));
    d.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([d.update(bytes.subarray(0, bytes.length - 16)), d.final()]).toString("utf8");
  }
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270";

/**
 * The dom0 files each secret is meant for (its homes), by the resource that holds it; any other
 * file holding it is a finding, and so is a home that is not a 0600 regular file.
 */
export const SECRET_HOMES = [
  {
    kind: "VtpmManager",
    files: ["<configDir>/<name>.cfg", "/var/log/xen/console/guest-<name>.log"],
    holds: "its ownerAuth and srkAuth: the config's extra= line, which Mini-OS prints on the console at boot",
  },
  {
    kind: "SeedImage",
    files: ["<path> (default /var/lib/xen/images/<name>-seed.img)"],
    holds: "its member's SSH host key and X.509 key, and its vTPM's owner and SRK auth (seed.agent)",
  },
] as const;

/**
 * Lab files that stand for what a real dom0 keeps elsewhere; they may hold the secret kinds
 * listed, at the mode the emulator writes them.
 */
export const LAB_STAND_INS: readonly {
  readonly file: string | RegExp;
  readonly kinds: readonly SecretKind[];
  /** The mode the file must have, when the stand-in is itself a secret's file. @default - any */
  readonly mode?: number;
  readonly why: string;
}[] = [
  {
    file: "/var/lib/tvd-lab/domains.json",
    kinds: ["auth"],
    why:
      "the xl emulator's table of running domains (each with its command line): stands for the hypervisor and " +
      "for libxl's per-domain userdata, which real libxl writes 0600 (libxl__userdata_store); the emulator writes it 0644",
  },
  {
    file: /^\/var\/lib\/xen\/(vtpm|pulumi-tvd\/archive)\/[^/]+$/,
    kinds: ["auth"],
    why:
      "a vTPM's key image (or its archived copy): a TPM keeps its owner and SRK auth in its own state, which " +
      "the lab's swtpm writes in plain, where vtpm-stubdom encrypts it under a key its vtpmmgr holds",
  },
  {
    file: /^\/var\/lib\/tvd-lab\/guest\/[^/]+\/run\/agent\.json$/,
    kinds: ["auth"],
    mode: 0o600,
    why:
      "a lab guest's /etc/tvd/agent.json, as cloud-init writes it from the member's seed (0600): on Xen it is on " +
      "the guest's own disk, which the lab's guests (namespaces) do not have",
  },
];

/** Whether `file` (as shown) is a lab stand-in allowed to hold a secret of `kind` at `mode`. */
function isLabStandIn(file: string, kind: SecretKind, mode: number): boolean {
  return LAB_STAND_INS.some(
    (s) =>
      (typeof s.file === "string" ? s.file === file : s.file.test(file)) &&
      s.kinds.includes(kind) &&
      (s.mode === undefined || s.mode === mode),
  );
}

function homesOf(resource: Record<string, unknown>): { props: readonly string[]; homes: Homes } {
  const type = String(resource.type ?? "");
  const props = { ...(resource.inputs as object), ...(resource.outputs as object) } as Record<
    string,
    unknown
  >;
  if (type.endsWith(":SeedImage") && typeof props.path === "string")
    return { props: ["seed"], homes: { keys: [props.path], auths: [props.path] } };
  if (type.endsWith(":VtpmManager") && typeof props.name === "string") {
    const dir = typeof props.configDir === "string" ? props.configDir : "/etc/xen";
    const auths = [`${dir}/${props.name}.cfg`, `/var/log/xen/console/guest-${props.name}.log`];
    return { props: ["ownerAuth", "srkAuth"], homes: { auths } };
  }
  return { props: [], homes: {} };
}

/**
 * Harvests the secrets of a checkpoint or an export (any JSON Pulumi writes): every secret
 * value, decrypted, under the resource it belongs to. Returns how many secret values it opened.
 */
export function harvestState(doc: unknown, set: SecretSet, crypter: PassphraseCrypter | undefined): number {
  let opened = 0;
  const walk = (v: unknown, label: string, homes: Homes, key: string): void => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, label, homes, key));
    if (!v || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_MARK) {
      let plain: string | undefined;
      if (typeof o.plaintext === "string") plain = o.plaintext;
      else if (typeof o.ciphertext === "string" && crypter) plain = crypter.decrypt(o.ciphertext);
      if (plain !== undefined) {
        opened++;
        set.harvest(JSON.parse(plain), label, homes, key);
      }
      return;
    }
    if (typeof o.urn === "string" && typeof o.type === "string") {
      const name = o.urn.split("::").pop();
      const kind = o.type.split(":").pop();
      const { props, homes: own } = homesOf(o);
      // Homes apply to the properties meant for them only (a seed's keys, not its connection's).
      const inner = (k: string, x: unknown) => {
        if (x && typeof x === "object" && !Array.isArray(x) && (k === "inputs" || k === "outputs"))
          for (const [p, y] of Object.entries(x))
            walk(y, `${kind} ${name} ${p}`, props.includes(p) ? own : {}, p);
        else walk(x, `${kind} ${name}`, {}, k);
      };
      for (const [k, x] of Object.entries(o)) inner(k, x);
      return;
    }
    for (const [k, x] of Object.entries(o)) walk(x, label ? `${label}.${k}` : k, homes, k);
  };
  walk(doc, "", {}, "");
  return opened;
}

// ---------------------------------------------------------------------------------------------
// Places.

export type Place = "state" | "output" | "event" | "diagnostic" | "file" | "argv";

export interface Finding {
  readonly place: Place;
  /** Where, e.g. "dom0-a:/etc/xen/web1.cfg (0644)", "pulumi up, event #12 (diagnostic error)". */
  readonly where: string;
  /** The secret: kind, hash prefix and origin; or "an unknown PEM private key". */
  readonly secret: string;
  readonly encoding: string;
}

export function formatFinding(f: Finding): string {
  return `${f.place}: ${f.secret} found as ${f.encoding} in ${f.where}`;
}

/** Findings in one piece of text or bytes; the generic PEM check runs on what is text-sized. */
export function scanBytes(
  set: SecretSet,
  bytes: Uint8Array,
  place: Place,
  where: string,
  opts: { pemCheck?: boolean } = {},
): Finding[] {
  const findings = new Map<number, Finding>();
  const matcher = set.matcherOf();
  for (const [p] of matcher.find(bytes)) {
    const pat = matcher.patterns[p];
    if (!findings.has(pat.secret))
      findings.set(pat.secret, { place, where, secret: set.describe(pat.secret), encoding: pat.encoding });
  }
  const out = [...findings.values()];
  if (opts.pemCheck !== false && !out.some((f) => f.secret.startsWith("private key"))) {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
    if (ANY_PRIVATE_PEM.test(text))
      out.push({ place, where, secret: "an unknown PEM private key", encoding: "PEM" });
  }
  return out;
}

export interface CliRun {
  readonly args: readonly string[];
  readonly result: RunResult;
}

/**
 * The Node SDK logs each RegisterResource/ReadResource RPC's response at debug severity,
 * secret outputs in plaintext (@pulumi/pulumi runtime/resource.js: `RegisterResource RPC
 * finished: ...; resp: ${innerResponse}` in @pulumi/pulumi 3.259.0, unlike its Invoke RPC lines,
 * which print their payload only with excessiveDebugOutput), and `pulumi --json` streams debug
 * diagnostics whatever the verbosity. Only those events are left out of the findings (and
 * counted); everything else the CLI prints is scanned.
 */
const UPSTREAM_DEBUG_RPC = /^(RegisterResource|ReadResource|getResource Invoke) RPC finished: /;

export interface RunScan {
  readonly findings: Finding[];
  readonly outputs: number;
  readonly events: number;
  readonly diagnostics: number;
  readonly upstreamDebugEvents: number;
  readonly upstreamDebugEventsWithSecrets: number;
  readonly skippedShowSecrets: number;
}

interface EventLine {
  sequence?: number;
  diagnosticEvent?: { severity?: string; message?: string; urn?: string };
  [k: string]: unknown;
}

/** Every CLI run's stdout and stderr, event by event; runs asked to --show-secrets are left out. */
export function scanRuns(set: SecretSet, runs: readonly CliRun[]): RunScan {
  const scan = {
    findings: [] as Finding[],
    outputs: 0,
    events: 0,
    diagnostics: 0,
    upstreamDebugEvents: 0,
    upstreamDebugEventsWithSecrets: 0,
    skippedShowSecrets: 0,
  };
  runs.forEach((run, i) => {
    if (run.args.includes("--show-secrets")) {
      scan.skippedShowSecrets++;
      return;
    }
    const what = `pulumi ${run.args
      .filter((a) => !a.startsWith("-"))
      .slice(0, 2)
      .join(" ")} (CLI run ${i + 1})`;
    const plain: string[] = [];
    for (const line of run.result.stdout.split("\n")) {
      let event: EventLine | undefined;
      if (line.startsWith("{")) {
        try {
          const parsed = JSON.parse(line) as EventLine;
          if (typeof parsed.sequence === "number") event = parsed;
        } catch {
          // not an event line
        }
      }
      if (!event) {
        plain.push(line);
        continue;
      }
      const d = event.diagnosticEvent;
      const type = Object.keys(event).find((k) => k.endsWith("Event")) ?? "event";
      const where = `${what}, event #${event.sequence} (${type}${d ? ` ${d.severity}` : ""}${d?.urn ? ` on ${d.urn.split("::").pop()}` : ""})`;
      const place: Place = d && d.severity !== "debug" ? "diagnostic" : "event";
      const found = scanBytes(set, Buffer.from(line), place, where);
      if (d?.severity === "debug" && UPSTREAM_DEBUG_RPC.test(d.message ?? "")) {
        scan.upstreamDebugEvents++;
        if (found.length) scan.upstreamDebugEventsWithSecrets++;
        continue;
      }
      if (place === "diagnostic") scan.diagnostics++;
      else scan.events++;
      scan.findings.push(...found);
    }
    scan.outputs += 2;
    scan.findings.push(...scanBytes(set, Buffer.from(plain.join("\n")), "output", `${what} stdout`));
    scan.findings.push(...scanBytes(set, Buffer.from(run.result.stderr), "output", `${what} stderr`));
  });
  return scan;
}

/** Regular files under dir (symlinks not followed), with their stats. */
function* walkFiles(dir: string): Generator<{ file: string; stat: Stats }> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries.sort()) {
    const file = path.join(dir, name);
    let stat: Stats;
    try {
      stat = lstatSync(file);
    } catch {
      continue; // gone meanwhile
    }
    if (stat.isDirectory()) yield* walkFiles(file);
    else if (stat.isFile()) yield { file, stat };
  }
}

const CHUNK = 4 << 20;
const TEXT_SIZED = 4 << 20;

/** The patterns (by secret) in one file, read in chunks; plus whether it holds a PEM private key. */
function scanFile(
  set: SecretSet,
  file: string,
  size: number,
): { secrets: Map<number, string>; pem: boolean } {
  const matcher = set.matcherOf();
  const secrets = new Map<number, string>();
  let pem = false;
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return { secrets, pem };
  }
  try {
    if (size <= TEXT_SIZED) {
      const bytes = readFileSync(fd);
      for (const [p] of matcher.find(bytes)) {
        const pat = matcher.patterns[p];
        if (!secrets.has(pat.secret)) secrets.set(pat.secret, pat.encoding);
      }
      pem = ANY_PRIVATE_PEM.test(bytes.toString("latin1"));
    } else {
      const buf = Buffer.alloc(CHUNK);
      let state = 0;
      for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0;) {
        state = matcher.feed(
          buf.subarray(0, n),
          (p) => {
            const pat = matcher.patterns[p];
            if (!secrets.has(pat.secret)) secrets.set(pat.secret, pat.encoding);
          },
          state,
        );
      }
    }
  } catch {
    // a file removed or truncated while read: what was read counts
  } finally {
    closeSync(fd);
  }
  return { secrets, pem };
}

/** Everything under the stack's work dir: checkpoints, history, backups, config, PULUMI_HOME. */
export function scanStateFiles(set: SecretSet, workDir: string): { findings: Finding[]; files: number } {
  const findings: Finding[] = [];
  let files = 0;
  for (const { file } of walkFiles(workDir)) {
    files++;
    let bytes = readFileSync(file);
    if (file.endsWith(".gz")) bytes = gunzipSync(bytes);
    const where = path.relative(workDir, file);
    // A program installed from tarballs (test/e2e/teamPackage.test.ts) has its dependencies'
    // own files under node_modules, ssh2's test fixture keys among them: they are checked for
    // this stack's secrets like any file, but a PEM key that is none of ours is the package's.
    const installed = where.split(path.sep).includes("node_modules");
    findings.push(
      ...scanBytes(set, bytes, "state", where).filter(
        (f) => !(installed && f.secret === "an unknown PEM private key"),
      ),
    );
  }
  return { findings, files };
}

/** A lab host as the dom0 scan needs it (test/support/lab.ts's LabHostRecord has these). */
export interface Dom0 {
  readonly name: string;
  readonly dir: string;
  readonly holderPid: number;
}

/** The dom0's own tree: its bound directories, /var/lib/xen as mounted inside it, its sshd log. */
function dom0Roots(h: Dom0): Array<{ dir: string; as: string }> {
  const roots = [{ dir: path.join(h.dir, "root"), as: "/" }];
  const xen = `/proc/${h.holderPid}/root/var/lib/xen`;
  if (existsSync(xen)) roots.push({ dir: xen, as: "/var/lib/xen" });
  return roots;
}

/** What one read of a file found: the secrets (by index) with an encoding each, and any PEM key. */
interface CachedFile {
  readonly key: string;
  readonly hits: ReadonlyMap<number, string>;
  readonly pem: boolean;
}

/**
 * Walks each dom0's files: a file holding a secret must be one of that secret's homes (its
 * resource's file) and a 0600 regular file; a PEM private key no secret accounts for is a
 * finding wherever it is but in a key's home. A file unchanged since it was read is not read
 * again (unless `reread`): a secret learned since cannot be in it, as each secret is known before
 * the first operation (keys, passphrases, config) or made by an operation, after which this scan
 * runs. Homes and modes are judged afresh each time.
 */
export function scanDom0(
  set: SecretSet,
  hosts: readonly Dom0[],
  cache = new Map<string, CachedFile>(),
  opts: { reread?: boolean } = {},
): { findings: Finding[]; files: number; bytes: number; read: number; standIns: number } {
  const findings: Finding[] = [];
  let standIns = 0;
  let files = 0;
  let bytes = 0;
  let read = 0;
  let readBytes = 0;
  for (const h of hosts) {
    const sshdLog = path.join(h.dir, "sshd.log");
    const entries = dom0Roots(h).flatMap(({ dir, as }) =>
      [...walkFiles(dir)].map((e) => ({ ...e, shown: path.posix.join(as, path.relative(dir, e.file)) })),
    );
    if (existsSync(sshdLog)) entries.push({ file: sshdLog, stat: lstatSync(sshdLog), shown: "(sshd log)" });
    for (const { file, stat, shown } of entries) {
      files++;
      bytes += stat.size;
      const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
      let seen = cache.get(file);
      if (!seen || seen.key !== key || opts.reread) {
        read++;
        readBytes += stat.size;
        const scan = scanFile(set, file, stat.size);
        seen = { key, hits: scan.secrets, pem: scan.pem };
        cache.set(file, seen);
      }
      const mode = stat.mode & 0o7777;
      const where = `${h.name}:${shown} (mode ${mode.toString(8).padStart(4, "0")})`;
      let isKeyHome = false;
      let keyFound = false;
      for (const [i, encoding] of seen.hits) {
        const secret = set.secrets[i];
        const home = secret.homes.has(shown);
        if (secret.kind === "private key") keyFound = true;
        if (home && secret.kind === "private key") isKeyHome = true;
        if (home && mode === 0o600) continue;
        if (isLabStandIn(shown, secret.kind, mode)) {
          standIns++;
          continue;
        }
        findings.push({
          place: "file",
          where: `${where}${home ? ", the secret's own file but not 0600" : ", not a file meant to hold it"}`,
          secret: set.describe(i),
          encoding,
        });
      }
      if (seen.pem && !isKeyHome && !keyFound)
        findings.push({ place: "file", where, secret: "an unknown PEM private key", encoding: "PEM" });
    }
  }
  if (process.env.TVD_SECRETS_PROFILE)
    console.error(`secrets scan: ${files} files, read ${read} (${readBytes} bytes)`);
  return { findings, files, bytes, read, standIns };
}

// ---------------------------------------------------------------------------------------------
// Process arguments, on this machine and on the lab's dom0s (their processes are this
// machine's, in namespaces of their own): sampled from /proc every ~50 ms during CLI runs.

export const ARGV_INTERVAL_MS = 50;
const MAX_DISTINCT_ARGV = 50_000;

/**
 * A process's command line, or undefined once it exited. One read into a reused buffer:
 * readFileSync costs several times more on /proc (whose files report no size).
 */
function readCmdline(file: string, buffer: Buffer): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return n < buffer.length ? buffer.toString("latin1", 0, n) : readFileSync(file, "latin1");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export class ArgvSampler {
  /** Each distinct command line seen (NUL-separated argv), with a pid and the run it was seen in. */
  readonly seen = new Map<string, { pid: number; during: string }>();
  samples = 0;
  /** CPU time spent sampling, in ms (what sampling costs the run; wall time counts others' load). */
  spentMs = 0;
  private active = 0;
  private timer?: NodeJS.Timeout;
  private readonly buffer = Buffer.alloc(64 << 10);
  private label = "";

  /** Samples until the returned function is called (nested and overlapping runs share one timer). */
  start(during: string): () => void {
    this.label = during;
    this.sample();
    if (this.active++ === 0) {
      this.timer = setInterval(() => this.sample(), ARGV_INTERVAL_MS);
      this.timer.unref();
    }
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.sample();
      if (--this.active === 0) clearInterval(this.timer);
    };
  }

  sample(): void {
    const started = process.cpuUsage();
    this.samples++;
    let pids: string[];
    try {
      pids = readdirSync("/proc");
    } catch {
      return;
    }
    for (const p of pids) {
      if (p.charCodeAt(0) > 57 || p.charCodeAt(0) < 48) continue;
      const cmdline = readCmdline(`/proc/${p}/cmdline`, this.buffer);
      if (cmdline && !this.seen.has(cmdline) && this.seen.size < MAX_DISTINCT_ARGV)
        this.seen.set(cmdline, { pid: Number(p), during: this.label });
    }
    const used = process.cpuUsage(started);
    this.spentMs += (used.user + used.system) / 1000;
  }
}

export function scanArgv(set: SecretSet, sampler: ArgvSampler): Finding[] {
  const findings: Finding[] = [];
  const matcher = set.matcherOf();
  for (const [cmdline, { pid, during }] of sampler.seen) {
    const bytes = Buffer.from(cmdline, "latin1");
    const argv = cmdline.split("\0");
    const reported = new Set<number>();
    for (const [p, end] of matcher.find(bytes)) {
      const pat = matcher.patterns[p];
      if (reported.has(pat.secret)) continue;
      reported.add(pat.secret);
      const index = cmdline.slice(0, end).split("\0").length - 1;
      findings.push({
        place: "argv",
        where: `pid ${pid} ${path.basename(argv[0] ?? "?")} argv[${index}] (during ${during})`,
        secret: set.describe(pat.secret),
        encoding: pat.encoding,
      });
    }
    if (!reported.size && ANY_PRIVATE_PEM.test(cmdline.replace(/\0/g, " ")))
      findings.push({
        place: "argv",
        where: `pid ${pid} ${path.basename(argv[0] ?? "?")} (during ${during})`,
        secret: "an unknown PEM private key",
        encoding: "PEM",
      });
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------
// One scan per TestStack.

/** What SecretScan needs of a TestStack (test/e2e/pulumi.ts). */
export interface ScannedStack {
  readonly workDir: string;
  readonly programDir: string;
  readonly stackName: string;
  readonly runs: readonly CliRun[];
  readonly passphrase: string;
  cli(args: readonly string[]): Promise<RunResult>;
}

export interface ScanFigures {
  scans: number;
  secretsTracked: number;
  stateDocuments: number;
  stateFiles: number;
  secretValuesOpened: number;
  outputs: number;
  events: number;
  diagnostics: number;
  dom0Files: number;
  dom0Scans: number;
  argvSamples: number;
  argvDistinct: number;
  upstreamDebugEventsExcluded: number;
  upstreamDebugEventsWithSecrets: number;
  /** Secrets found in the lab's stand-in files (LAB_STAND_INS), allowed there; most in one scan. */
  labStandInHits: number;
  /**
   * What the scan added to the run, in ms: the CPU time of sampling (which runs beside the CLI),
   * plus the wall time of the dom0 scans after operations and of the final scan.
   */
  addedMs: number;
  argvCpuMs: number;
  dom0Ms: number;
  finalMs: number;
  findings: number;
}

const emptyFigures = (): ScanFigures => ({
  scans: 0,
  secretsTracked: 0,
  stateDocuments: 0,
  stateFiles: 0,
  secretValuesOpened: 0,
  outputs: 0,
  events: 0,
  diagnostics: 0,
  dom0Files: 0,
  dom0Scans: 0,
  argvSamples: 0,
  argvDistinct: 0,
  upstreamDebugEventsExcluded: 0,
  upstreamDebugEventsWithSecrets: 0,
  labStandInHits: 0,
  addedMs: 0,
  argvCpuMs: 0,
  dom0Ms: 0,
  finalMs: 0,
  findings: 0,
});

/** Operations that may write to a dom0, after which its files are scanned. */
const WRITES = new Set(["up", "refresh", "destroy"]);

export class SecretScan {
  readonly secrets = new SecretSet();
  readonly argv = new ArgvSampler();
  private readonly dom0s: Dom0[] = [];
  private readonly dom0Cache = new Map<string, CachedFile>();
  private readonly dom0Findings = new Map<string, Finding>();
  private dom0Scans = 0;
  private dom0Files = 0;
  private standIns = 0;
  /** Time the dom0 scans after operations took, in ms. */
  private dom0Ms = 0;
  private readonly extraKeys: Array<{ file: string; label: string }> = [];
  /** Checkpoint files harvested already, by path and what their stat said. */
  private readonly harvested = new Map<string, string>();
  private documents = 0;
  private opened = 0;
  private done = false;

  constructor(private readonly stack: ScannedStack) {}

  /**
   * Scans these lab hosts' files after every operation that may write them and at dispose, and
   * tracks their SSH private keys (a lab host record has privateKeyPath).
   */
  watchDom0s(lab: { readonly hosts: ReadonlyArray<Dom0 & { readonly privateKeyPath: string }> }): void {
    for (const h of lab.hosts) {
      this.dom0s.push(h);
      this.extraKeys.push({ file: h.privateKeyPath, label: `lab SSH key of ${h.name}` });
    }
    this.collectKnown();
  }

  /** Starts sampling process arguments for one CLI run; call the result when it ends. */
  duringRun(args: readonly string[]): () => void {
    return this.argv.start(
      `pulumi ${args
        .filter((a) => !a.startsWith("-"))
        .slice(0, 2)
        .join(" ")}`,
    );
  }

  /** After an operation: the dom0s' files, against every secret known by then. */
  afterOperation(args: readonly string[]): void {
    if (!this.dom0s.length || !WRITES.has(args[0])) return;
    const lap = profiler();
    this.harvest();
    lap(`harvest after ${args[0]}`);
    this.scanDom0s();
    lap(`dom0 after ${args[0]}`);
  }

  private scanDom0s(reread = false): void {
    const started = performance.now();
    const r = scanDom0(this.secrets, this.dom0s, this.dom0Cache, { reread });
    this.dom0Ms += performance.now() - started;
    this.dom0Scans++;
    this.dom0Files += r.files;
    this.standIns = Math.max(this.standIns, r.standIns);
    for (const f of r.findings) this.dom0Findings.set(`${f.where}|${f.secret}`, f);
  }

  /** Secrets known without the state: lab keys and the stack's passphrase. */
  private collectKnown(): void {
    for (const k of this.extraKeys)
      if (existsSync(k.file)) this.secrets.add(readFileSync(k.file, "utf8"), k.label);
    this.secrets.add(
      this.stack.passphrase,
      "the stack's passphrase (PULUMI_CONFIG_PASSPHRASE)",
      "passphrase",
    );
  }

  private crypter(): PassphraseCrypter | undefined {
    const config = path.join(this.stack.programDir, `Pulumi.${this.stack.stackName}.yaml`);
    const salt = existsSync(config)
      ? /^encryptionsalt:\s*(\S+)/m.exec(readFileSync(config, "utf8"))?.[1]
      : undefined;
    return salt ? new PassphraseCrypter(this.stack.passphrase, salt) : undefined;
  }

  /** Config secrets and every checkpoint the backend wrote (current, history, backups). */
  private harvest(): { documents: number; opened: number } {
    this.collectKnown();
    const crypter = this.crypter();
    const config = path.join(this.stack.programDir, `Pulumi.${this.stack.stackName}.yaml`);
    if (existsSync(config) && crypter) {
      for (const m of readFileSync(config, "utf8").matchAll(
        /^ {2}([^\s:]+:[^\s:]+):\n {4}secure: (\S+)$/gm,
      )) {
        const value = crypter.decrypt(m[2]);
        // Every config secret counts, whatever it is (the user said it is one).
        const as = /auth$/i.test(m[1]) ? "auth" : /passphrase|password/i.test(m[1]) ? "passphrase" : "opaque";
        this.secrets.add(value, `config ${m[1]}`, as);
      }
    }
    for (const { file, stat } of walkFiles(path.join(this.stack.workDir, "state"))) {
      if (!/\.json(\.gz)?$/.test(file)) continue;
      const key = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
      if (this.harvested.get(file) === key) continue;
      let doc: unknown;
      try {
        const raw = readFileSync(file);
        doc = JSON.parse((file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8"));
      } catch {
        continue; // being written
      }
      this.harvested.set(file, key);
      this.documents++;
      this.opened += harvestState(doc, this.secrets, crypter);
    }
    return { documents: this.documents, opened: this.opened };
  }

  /**
   * The whole scan, at dispose: harvest, then every place. Returns the findings and figures;
   * records them for the test file; the caller fails on findings.
   */
  async finish(): Promise<{ findings: Finding[]; figures: ScanFigures }> {
    if (this.done) return { findings: [], figures: emptyFigures() };
    this.done = true;
    const started = performance.now();
    const lap = profiler();
    const harvested = this.harvest();
    lap("harvest");
    // The state as the CLI shows it without --show-secrets, and with it: both must agree with
    // what this scan decrypted (it found every secret the CLI would show).
    const exported = await this.stack.cli(["stack", "export", "--stack", this.stack.stackName]);
    const shown = await this.stack.cli([
      "stack",
      "export",
      "--show-secrets",
      "--stack",
      this.stack.stackName,
    ]);
    const before = this.secrets.size;
    harvestState(JSON.parse(shown.stdout), this.secrets, undefined);
    const missed = this.secrets.size - before;
    await this.stack.cli(["stack", "output", "--json", "--stack", this.stack.stackName]);
    lap("cli");

    const findings: Finding[] = [];
    if (missed > 0)
      findings.push({
        place: "state",
        where: "pulumi stack export --show-secrets",
        secret: `${missed} secret(s) this scan did not decrypt from the backend's files`,
        encoding: "-",
      });
    findings.push(...scanBytes(this.secrets, Buffer.from(exported.stdout), "state", "pulumi stack export"));
    const files = scanStateFiles(this.secrets, this.stack.workDir);
    findings.push(...files.findings);
    lap("state files");
    const runs = scanRuns(this.secrets, this.stack.runs);
    findings.push(...runs.findings);
    lap("runs");
    if (this.dom0s.length) this.scanDom0s(true);
    findings.push(...this.dom0Findings.values());
    lap("dom0");
    findings.push(...scanArgv(this.secrets, this.argv));
    lap("argv");

    const argvCpuMs = Math.round(this.argv.spentMs);
    const dom0Ms = Math.round(this.dom0Ms);
    const finalMs = Math.round(performance.now() - started);
    const f: ScanFigures = {
      scans: 1,
      secretsTracked: this.secrets.size,
      stateDocuments: harvested.documents + 2,
      stateFiles: files.files,
      secretValuesOpened: harvested.opened,
      outputs: runs.outputs,
      events: runs.events,
      diagnostics: runs.diagnostics,
      dom0Files: this.dom0Files,
      dom0Scans: this.dom0Scans,
      argvSamples: this.argv.samples,
      argvDistinct: this.argv.seen.size,
      upstreamDebugEventsExcluded: runs.upstreamDebugEvents,
      upstreamDebugEventsWithSecrets: runs.upstreamDebugEventsWithSecrets,
      labStandInHits: this.standIns,
      addedMs: argvCpuMs + dom0Ms + finalMs,
      argvCpuMs,
      dom0Ms,
      finalMs,
      findings: findings.length,
    };
    recordScan(f, findings, this.secrets);
    return { findings, figures: f };
  }
}

function profiler(): (what: string) => void {
  let t = performance.now();
  return (what) => {
    const now = performance.now();
    if (process.env.TVD_SECRETS_PROFILE) console.error(`secrets scan: ${what} ${Math.round(now - t)} ms`);
    t = now;
  };
}

/** Fails with every finding (place and the secret's hash prefix; never the secret). */
export function assertNoFindings(findings: readonly Finding[]): void {
  if (findings.length)
    throw new Error(
      `secrets in plaintext (${findings.length} finding(s), issue 12.5):\n  ${findings.map(formatFinding).join("\n  ")}`,
    );
}

// ---------------------------------------------------------------------------------------------
// Figures: one entry per test file in the "secrets" section, totals over the entries.

interface FileEntry {
  at: string;
  figures: ScanFigures;
  findings: string[];
  kinds: Record<string, number>;
}

const fileTotals = new Map<string, FileEntry>();

function testFile(): string {
  const p = (expect as unknown as { getState(): { testPath?: string } }).getState?.().testPath;
  return p ? path.relative(path.resolve(__dirname, "..", ".."), p) : "(outside jest)";
}

function withSectionLock<T>(fn: () => T): T {
  const lock = `${RELIABILITY_FILE}.secrets.lock`;
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(lock, "wx"));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") break; // no results dir yet: first writer
      if (i > 200) rmSync(lock, { force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function recordScan(figures: ScanFigures, findings: readonly Finding[], set: SecretSet): void {
  const file = testFile();
  const entry = fileTotals.get(file) ?? { at: "", figures: emptyFigures(), findings: [], kinds: {} };
  for (const k of Object.keys(figures) as Array<keyof ScanFigures>) entry.figures[k] += figures[k];
  entry.findings.push(...findings.map(formatFinding));
  for (const s of set.secrets) entry.kinds[s.kind] = (entry.kinds[s.kind] ?? 0) + 1;
  entry.at = new Date().toISOString();
  fileTotals.set(file, entry);
  const scope = reliabilityScope();
  withSectionLock(() => {
    const current = readReliability().sections.secrets;
    const previous = (
      current?.scope === scope ? (current.details as { files?: Record<string, FileEntry> }) : undefined
    )?.files;
    const files: Record<string, FileEntry> = { ...previous, [file]: entry };
    const totals = emptyFigures();
    for (const e of Object.values(files))
      for (const k of Object.keys(totals) as Array<keyof ScanFigures>) totals[k] += e.figures[k] ?? 0;
    const places =
      totals.stateDocuments + totals.stateFiles + totals.outputs + totals.events + totals.diagnostics;
    recordReliability(
      "secrets",
      scope,
      { ...totals, placesScanned: places + totals.dom0Files + totals.argvDistinct },
      {
        about:
          "Each e2e stack is scanned at dispose (test/support/secrets.ts): its checkpoints and exports, every CLI output and engine event, the dom0s' files after each up/refresh/destroy, and every process's argv sampled every 50 ms during CLI runs, for each secret it used, in its plaintext encodings. findings must be 0.",
        homes: SECRET_HOMES,
        labStandIns: LAB_STAND_INS,
        upstream:
          "debug diagnostics 'RegisterResource/ReadResource RPC finished: ... resp:' from @pulumi/pulumi's Node SDK carry secret outputs in plaintext and `pulumi --json` streams them; left out of findings, counted as upstreamDebugEventsExcluded / upstreamDebugEventsWithSecrets (@pulumi/pulumi runtime/resource.js)",
        files,
      },
    );
  });
}
