import { createHash, createHmac } from "node:crypto";

/** How the transport decides whether the key a host presents is the one we expect. */
export type HostKeyPolicy =
  | { readonly kind: "fingerprint"; readonly fingerprint: string }
  | { readonly kind: "knownHosts"; readonly knownHosts: string }
  | { readonly kind: "insecureAcceptAny" };

export type HostKeyVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** OpenSSH's `SHA256:<base64 without padding>` fingerprint of a public key blob. */
export function fingerprintOf(keyBlob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/** The key type named inside an SSH public key blob (e.g. `ssh-ed25519`). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

interface KnownHostLine {
  readonly marker?: "@revoked" | "@cert-authority";
  readonly patterns: string;
  readonly keyType: string;
  readonly keyBlob: Buffer;
}

function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostLine["marker"];
    if (fields[0] === "@revoked" || fields[0] === "@cert-authority") {
      marker = fields.shift() as KnownHostLine["marker"];
    }
    if (fields.length < 3) continue;
    lines.push({
      marker,
      patterns: fields[0],
      keyType: fields[1],
      keyBlob: Buffer.from(fields[2], "base64"),
    });
  }
  return lines;
}

/** The names OpenSSH looks up for a host: `host` on port 22, `[host]:port` otherwise. */
function lookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

function hashedMatches(pattern: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const [, magic, salt, hash] = pattern.split("|");
  if (magic !== "1" || !salt || !hash) return false;
  const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
  return mac === hash;
}

function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith("|")) return hashedMatches(patterns, name);
  let matched = false;
  for (const p of patterns.split(",")) {
    const negated = p.startsWith("!");
    const glob = negated ? p.slice(1) : p;
    if (globToRegExp(glob).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Decides whether `keyBlob`, presented by host:port, is acceptable under `policy`. */
export function verifyHostKey(
  policy: HostKeyPolicy,
  host: string,
  port: number,
  keyBlob: Buffer,
): HostKeyVerdict {
  const seen = `${keyTypeOf(keyBlob)} ${fingerprintOf(keyBlob)}`;
  switch (policy.kind) {
    case "insecureAcceptAny":
      return { ok: true };
    case "fingerprint":
      return fingerprintOf(keyBlob) === policy.fingerprint
        ? { ok: true }
        : {
            ok: false,
            reason: `host key mismatch for ${host}:${port}: expected ${policy.fingerprint}, the host presented ${seen}`,
          };
    case "knownHosts": {
      const name = lookupName(host, port);
      const entries = parseKnownHosts(policy.knownHosts).filter((e) => patternsMatch(e.patterns, name));
      if (entries.some((e) => e.marker === "@revoked" && e.keyBlob.equals(keyBlob))) {
        return { ok: false, reason: `host key for ${name} is marked @revoked in knownHosts (${seen})` };
      }
      const plain = entries.filter((e) => e.marker === undefined);
      if (plain.some((e) => e.keyBlob.equals(keyBlob))) return { ok: true };
      if (plain.length === 0) {
        return { ok: false, reason: `knownHosts has no entry for ${name}; the host presented ${seen}` };
      }
      return {
        ok: false,
        reason: `host key mismatch for ${name}: knownHosts lists ${plain
          .map((e) => `${e.keyType} ${fingerprintOf(e.keyBlob)}`)
          .join(", ")}, the host presented ${seen}`,
      };
    }
  }
}
