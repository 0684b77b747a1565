/**
 * The files of a cloud-init NoCloud seed for one TVD member: meta-data, user-data
 * (`#cloud-config`) and network-config (version 2). Pure and deterministic: the same seed gives
 * the same bytes, so the image built from them hashes the same and drift is a hash comparison.
 *
 * No YAML library is used: the emitter below writes only double-quoted and literal block scalars,
 * so no value a user gives (quotes, `: `, `#`, newlines, `yes`, `0644`) can change the document's
 * structure or be read back as another type.
 */
import { AGENT_PATHS, AGENT_RUNCMD, AGENT_UNIT, agentConfig, type SeedAgent } from "./agent";

export type SeedNetwork =
  | { readonly kind: "dhcp" }
  | {
      readonly kind: "static";
      /** The member's address with its prefix length, e.g. 10.50.0.11/24 or fd00::11/64. */
      readonly address: string;
      readonly gateway?: string;
      readonly dns?: readonly string[];
    };

/** The member's own ed25519 host key and its certificate, signed by the TVD's SSH CA. */
export interface SeedSshHostKey {
  readonly privateKey: string;
  readonly publicKey: string;
  readonly certificate: string;
}

/** The member's X.509 identity and the TVD's CA certificate, all PEM. */
export interface SeedX509 {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caCertPem: string;
}

export interface SeedExtraFile {
  readonly path: string;
  readonly content: string;
  /** Octal, as cloud-init's write_files takes it. @default "0644" */
  readonly permissions?: string;
  /** user or user:group. @default - cloud-init's default, root:root */
  readonly owner?: string;
}

export interface MemberSeed {
  /** cloud-init runs its per-instance modules again when this changes. */
  readonly instanceId: string;
  readonly hostname: string;
  readonly fqdn?: string;
  readonly network: SeedNetwork;
  /** Matches the interface in network-config; without it the interface is matched by name. */
  readonly macAddress?: string;
  /** @default "eth0" */
  readonly interfaceName?: string;
  readonly sshHostKey?: SeedSshHostKey;
  readonly sshAuthorizedKeys: readonly string[];
  /** Trusted to sign other hosts' keys: `@cert-authority *` lines in /etc/ssh/ssh_known_hosts. */
  readonly sshCaPublicKeys: readonly string[];
  readonly x509?: SeedX509;
  /** The member agent's TPM auth values: the seed then installs and starts the agent. */
  readonly agent?: SeedAgent;
  readonly extraFiles?: readonly SeedExtraFile[];
}

/** A type, not an interface, so that it is a Record<string, string> for buildSeedImage. */
export type SeedFiles = {
  readonly "meta-data": string;
  readonly "user-data": string;
  readonly "network-config": string;
};

/** Where the seed puts what the guest needs; exported so that extraFiles cannot collide with them. */
export const SEED_PATHS = {
  knownHosts: "/etc/ssh/ssh_known_hosts",
  sshdDropIn: "/etc/ssh/sshd_config.d/50-tvd-host-certificate.conf",
  x509Cert: "/etc/tvd/member.crt",
  x509Key: "/etc/tvd/member.key",
  x509Ca: "/etc/tvd/ca.crt",
  agentConfig: AGENT_PATHS.config,
  agentUnit: AGENT_PATHS.unit,
} as const;

/** Where cloud-init's ssh module writes the certificate given as ssh_keys.ed25519_certificate. */
const HOST_CERTIFICATE = "/etc/ssh/ssh_host_ed25519_key-cert.pub";

// ---- YAML emitter --------------------------------------------------------------------------

export type YamlValue = string | number | boolean | null | readonly YamlValue[] | YamlMap;
export interface YamlMap {
  readonly [key: string]: YamlValue | undefined;
}

/** Keys that YAML 1.1 (PyYAML, which cloud-init uses) would read as booleans or null. */
const RESERVED_KEY = /^(y|n|yes|no|on|off|true|false|null|~)$/i;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function quoted(s: string): string {
  if (LONE_SURROGATE.test(s))
    throw new Error(`cannot write a string with a lone UTF-16 surrogate: ${JSON.stringify(s)}`);
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    // Everything else is escaped: the output stays ASCII, and no line break (NEL, U+2028) can fold it.
    else if (c <= 0xff) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c <= 0xffff) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += `\\U${c.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

function key(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) && !RESERVED_KEY.test(k) ? k : quoted(k);
}

/**
 * A literal block scalar (`|`) for multi-line printable ASCII such as PEM, so the file reads
 * as it will be written; the chomping indicator keeps the trailing newlines exactly.
 */
function literal(s: string, indent: number): { head: string; lines: string[] } | undefined {
  if (!s.includes("\n") || !/^[\x20-\x7e\t\n]*$/.test(s)) return undefined;
  const body = s.replace(/\n+$/, "");
  const trailing = s.length - body.length;
  if (body === "") return undefined;
  const chomp = trailing === 0 ? "-" : trailing === 1 ? "" : "+";
  // A first line that starts with a space would be taken for deeper indentation: say it.
  const indicator = /^\n*[ \t]/.test(body) ? "2" : "";
  const pad = " ".repeat(indent);
  const lines = body.split("\n").map((l) => (l === "" ? "" : pad + l));
  for (let i = 1; i < trailing && chomp === "+"; i++) lines.push("");
  return { head: ` |${indicator}${chomp}`, lines };
}

function isCollection(v: YamlValue): v is readonly YamlValue[] | YamlMap {
  return v !== null && typeof v === "object" && Object.keys(v).length > 0;
}

/** A value after `key:` or `-`: the rest of that line, and the lines below it at `indent`. */
function value(v: YamlValue, indent: number): { head: string; lines: string[] } {
  if (typeof v === "string") return literal(v, indent) ?? { head: ` ${quoted(v)}`, lines: [] };
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`cannot write the number ${v}`);
    return { head: ` ${v}`, lines: [] };
  }
  if (typeof v === "boolean") return { head: ` ${v}`, lines: [] };
  if (v === null) return { head: " null", lines: [] };
  if (!isCollection(v)) return { head: Array.isArray(v) ? " []" : " {}", lines: [] };
  return { head: "", lines: collection(v, indent) };
}

function collection(v: readonly YamlValue[] | YamlMap, indent: number): string[] {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    return (v as readonly YamlValue[]).flatMap((item) => {
      if (isCollection(item)) {
        // The item's first line shares the dash's line: "- key: value".
        const lines = collection(item, indent + 2);
        return [`${pad}- ${lines[0].slice(indent + 2)}`, ...lines.slice(1)];
      }
      const { head, lines } = value(item, indent + 2);
      return [`${pad}-${head}`, ...lines];
    });
  }
  const map = v as YamlMap;
  return Object.keys(map)
    .sort()
    .filter((k) => map[k] !== undefined)
    .flatMap((k) => {
      const { head, lines } = value(map[k]!, indent + 2);
      return [`${pad}${key(k)}:${head}`, ...lines];
    });
}

/** A YAML document of `doc`, keys sorted, every string quoted or a literal block. */
export function toYaml(doc: YamlMap): string {
  return collection(doc, 0).join("\n") + "\n";
}

// ---- the seed files ------------------------------------------------------------------------

function asLines(items: readonly string[]): string {
  return items.map((l) => `${l}\n`).join("");
}

function networkConfig(seed: MemberSeed): YamlMap {
  const name = seed.interfaceName ?? "eth0";
  const n = seed.network;
  const addressing: YamlMap =
    n.kind === "dhcp"
      ? { dhcp4: true }
      : {
          dhcp4: false,
          addresses: [n.address],
          routes: n.gateway
            ? [{ to: n.gateway.includes(":") ? "::/0" : "0.0.0.0/0", via: n.gateway }]
            : undefined,
          nameservers: n.dns?.length ? { addresses: [...n.dns] } : undefined,
        };
  const match: YamlMap = seed.macAddress
    ? { match: { macaddress: seed.macAddress.toLowerCase() }, "set-name": name }
    : {};
  return { version: 2, ethernets: { [name]: { ...match, ...addressing } } };
}

interface WriteFile extends YamlMap {
  readonly path: string;
  readonly content: string;
  readonly permissions: string;
}

function writeFiles(seed: MemberSeed): WriteFile[] {
  const files: WriteFile[] = [];
  const add = (path: string, content: string, permissions: string, owner?: string) =>
    files.push({ path, content, permissions, owner: owner ?? "root:root" });
  if (seed.sshCaPublicKeys.length)
    add(
      SEED_PATHS.knownHosts,
      asLines(seed.sshCaPublicKeys.map((k) => `@cert-authority * ${k.trim()}`)),
      "0644",
    );
  if (seed.sshHostKey) add(SEED_PATHS.sshdDropIn, `HostCertificate ${HOST_CERTIFICATE}\n`, "0644");
  if (seed.x509) {
    add(SEED_PATHS.x509Cert, seed.x509.certPem, "0644");
    add(SEED_PATHS.x509Key, seed.x509.keyPem, "0600");
    add(SEED_PATHS.x509Ca, seed.x509.caCertPem, "0644");
  }
  if (seed.agent) {
    add(SEED_PATHS.agentConfig, agentConfig(seed.agent), "0600");
    add(SEED_PATHS.agentUnit, AGENT_UNIT, "0644");
  }
  for (const f of seed.extraFiles ?? []) add(f.path, f.content, f.permissions ?? "0644", f.owner);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function userData(seed: MemberSeed): YamlMap {
  const files = writeFiles(seed);
  return {
    hostname: seed.hostname,
    fqdn: seed.fqdn,
    preserve_hostname: false,
    ssh_keys: seed.sshHostKey
      ? {
          ed25519_private: seed.sshHostKey.privateKey,
          ed25519_public: seed.sshHostKey.publicKey.trim(),
          ed25519_certificate: seed.sshHostKey.certificate.trim(),
        }
      : undefined,
    ssh_authorized_keys: seed.sshAuthorizedKeys.length
      ? seed.sshAuthorizedKeys.map((k) => k.trim())
      : undefined,
    write_files: files.length ? files : undefined,
    runcmd: seed.agent ? AGENT_RUNCMD.map((c) => [...c]) : undefined,
  };
}

/** The three NoCloud files for one member. */
export function renderSeedFiles(seed: MemberSeed): SeedFiles {
  return {
    "meta-data": toYaml({ "instance-id": seed.instanceId, "local-hostname": seed.hostname }),
    "user-data": `#cloud-config\n${toYaml(userData(seed))}`,
    "network-config": toYaml(networkConfig(seed)),
  };
}
