/** Parsing what INSPECT prints: what is really on a dom0 for one domain. Pure. */
import { redactSecrets } from "../transport/errors";
import { parseQcow2Header, type Qcow2Header } from "./qcow2";

/**
 * A vtpm device of a running domain, from its config in the host's `xl list -l`: libxl builds that
 * config from the devices xenstore holds (retrieve_domain_configuration), so a device detached
 * since the domain started is not in it, one attached later is.
 */
export interface AttachedVtpm {
  readonly devid: number;
  /** The backend domain's name (a guest's vTPM, a vTPM's manager). */
  readonly backend: string;
  readonly uuid: string;
}

export interface FileReport {
  readonly exists: boolean;
  readonly sizeBytes?: number;
  /** Text of a config file. */
  readonly content?: string;
  /** An overlay's qcow2 header: its format and backing file (see qcow2.ts). */
  readonly qcow2?: Qcow2Header;
  /** Hex sha256 of the file's bytes; unset when it could not be read. */
  readonly sha256?: string;
}

export interface DomainReport {
  readonly running: boolean;
  /** The domain's libxl config as `xl list -l` prints it. */
  readonly config?: Record<string, unknown>;
  readonly domid?: number;
  readonly vtpms: AttachedVtpm[];
  /** Running domains with a vtpm device on this one as its backend (a manager's vTPMs, a vTPM's guest). */
  readonly usedBy: string[];
}

export interface Inspection {
  readonly domain: DomainReport;
  readonly files: Record<string, FileReport>;
}

export type InspectTarget = {
  readonly role: "config" | "image" | "overlay" | "checksum";
  readonly path: string;
};

export function inspectArgs(domain: string, targets: readonly InspectTarget[]): string[] {
  return [domain, ...targets.map((t) => `${t.role}=${t.path}`)];
}

/** One domain of `xl list -l`'s JSON array. */
export interface XlListLongEntry {
  readonly domid?: number;
  readonly config?: Record<string, unknown>;
}

/**
 * `xl list -l`'s stdout as JSON, its stderr (libxl's warnings) never part of it. Output that is
 * not JSON fails naming the command and what xl printed, secrets redacted.
 */
export function parseXlListLong(stdout: string, stderr: string, command: string): XlListLongEntry[] {
  try {
    const list: unknown = JSON.parse(stdout.trim() || "[]");
    if (Array.isArray(list)) return list as XlListLongEntry[];
  } catch {
    // reported below with what xl printed
  }
  const shown = (text: string) => redactSecrets(text.trim()).split("\n").slice(0, 5).join("\n    ");
  throw new Error(
    `cannot read the output of \`${command}\` (expected a JSON array):\n    ${shown(stdout)}` +
      (stderr.trim() ? `\n  xl's stderr:\n    ${shown(stderr)}` : ""),
  );
}

/** The entry of `domain` in the host's `xl list -l`, or undefined when it is not running. */
export function domainEntry(list: readonly XlListLongEntry[], domain: string): XlListLongEntry | undefined {
  return list.find((d) => (d.config?.c_info as { name?: unknown } | undefined)?.name === domain);
}

type XlVtpm = { devid?: unknown; backend_domname?: unknown; uuid?: unknown };

/** The vtpm devices of one domain's `xl list -l` config. */
function xlVtpms(config: Record<string, unknown> | undefined): XlVtpm[] {
  return Array.isArray(config?.vtpms) ? (config.vtpms as XlVtpm[]) : [];
}

/** A running domain's vtpm devices, from its `xl list -l` config. */
export function attachedVtpms(config: Record<string, unknown> | undefined): AttachedVtpm[] {
  return xlVtpms(config).map((v) => ({
    devid: Number(v.devid ?? 0),
    backend: String(v.backend_domname ?? ""),
    uuid: String(v.uuid ?? ""),
  }));
}

/**
 * What INSPECT printed about `domain`'s devices and files, with its entry in the host's
 * `xl list -l` (`list`, parsed by parseXlListLong).
 */
export function parseInspection(
  domain: string,
  stdout: string,
  list: readonly XlListLongEntry[],
): Inspection {
  // One `key<TAB>value` line per value: a config's text and an overlay's first bytes in base64,
  // every other value as its tool printed it, trailing newlines gone as a command substitution
  // takes them (a config reads as `$(cat)` would).
  const values = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab <= 0) continue;
    const key = line.slice(0, tab);
    const value = line.slice(tab + 1);
    values.set(
      key,
      key.startsWith("content:") ? Buffer.from(value, "base64").toString("utf8").replace(/\n+$/, "") : value,
    );
  }
  const entry = domainEntry(list, domain);
  const running = entry !== undefined;
  const config = entry?.config;
  const domid = entry?.domid;
  const files: Record<string, FileReport> = {};
  for (const [key, value] of values) {
    const colon = key.indexOf(":");
    if (colon < 0) continue;
    const kind = key.slice(0, colon);
    const path = key.slice(colon + 1);
    const prev = files[path] ?? { exists: kind !== "missing" };
    if (kind === "size") files[path] = { ...prev, exists: true, sizeBytes: Number(value) };
    else if (kind === "missing") files[path] = { exists: false };
    else if (kind === "content") files[path] = { ...prev, content: value };
    else if (kind === "sha256")
      files[path] = /^[0-9a-f]{64}$/.test(value) ? { ...prev, sha256: value } : prev;
    else if (kind === "qcow2")
      files[path] = { ...prev, qcow2: parseQcow2Header(Buffer.from(value, "base64")) };
  }
  return {
    domain: {
      running,
      config,
      domid,
      vtpms: running ? attachedVtpms(config) : [],
      usedBy: domainsWithVtpmBackend(list, domain),
    },
    files,
  };
}

/** Names of domains in `xl list -l` output with a vtpm device on `backend`. Pure. */
export function domainsWithVtpmBackend(
  list: ReadonlyArray<{ config?: Record<string, unknown> }>,
  backend: string,
): string[] {
  return list
    .filter((d) => xlVtpms(d.config).some((v) => v.backend_domname === backend))
    .map((d) => String((d.config?.c_info as { name?: string } | undefined)?.name))
    .sort();
}
