import { createHash } from "node:crypto";
import {
  artifactKey,
  CLAIM,
  EXIT_CONFLICT,
  OWNERS,
  OwnershipConflictError,
  parseConflicts,
  parseKeys,
  parseOwners,
  RELEASE,
  RELEASE_STALE,
  type Artifact,
  type OwnerRecord,
} from "../core/ownership";
import type { Connection } from "../transport/connection";
import { redactSecrets, RemoteCommandError } from "../transport/errors";
import { sessionFor, type ExecResult, type SshSession } from "../transport/ssh";
import { parseFacts, probeFactsArgv, type HostFactsReport } from "./facts";
import { readBatcherFor } from "./readBatcher";
import {
  domainsWithVtpmBackend,
  inspectArgs,
  parseInspection,
  parseXlListLong,
  type Inspection,
  type InspectTarget,
  type XlListLongEntry,
} from "./inspect";
import {
  AGENT_EXCHANGE,
  ARCHIVE_DIR,
  ARCHIVE_FILE,
  consoleLogPath,
  CREATE_OVERLAY,
  CREATE_RAW_IMAGE,
  DESTROY_UNLESS_USED,
  EXIT_BUSY,
  EXIT_EXISTS,
  EXIT_MISSING,
  EXIT_NOT_RUNNING,
  EXIT_TIMEOUT,
  INSPECT,
  LOCK_DIR,
  PRIVATE_CONSOLE_LOG,
  TVD_NET_CREATE,
  TVD_NET_DELETE,
  TVD_NET_READ,
  WAIT_FOR_CONSOLE,
  WRITE_FILE_ATOMIC,
} from "./scripts";

/** Something that must never be overwritten (a vTPM image, an overlay) already exists. */
export class ArtifactExistsError extends Error {
  constructor(
    readonly endpoint: string,
    readonly path: string,
  ) {
    super(`${path} already exists on ${endpoint}; pulumi-tvd never overwrites it`);
    this.name = "ArtifactExistsError";
  }
}

/** An input the operation needs (a base image) is not on the dom0. */
export class ArtifactMissingError extends Error {
  constructor(
    readonly endpoint: string,
    readonly path: string,
  ) {
    super(`${path} does not exist on ${endpoint}`);
    this.name = "ArtifactMissingError";
  }
}

/** A domain other domains use as their vtpm backend (a manager, a vTPM) cannot go now. */
export class BackendInUseError extends Error {
  constructor(endpoint: string, what: string, name: string, doing: string, users: readonly string[]) {
    super(
      `refusing to ${doing} ${what} ${name} on ${endpoint}: domains use it as their vTPM backend: ${users.join(", ")}. ` +
        "Stop or destroy them first (their keys are safe in the vTPM images)",
    );
    this.name = "BackendInUseError";
  }
}

/** Lock names are artifact names (validated domain names); the path is built here, once. */
function lockPath(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new Error(`invalid lock name ${JSON.stringify(name)}`);
  return `${LOCK_DIR}/${name}.lock`;
}

/** Exit code of a command that waited too long for its dom0-side lock. */
export const EXIT_LOCK_WAIT = 75;

/**
 * argv run while holding the dom0-side lock named `lockName`, waiting up to two minutes for it.
 * The lock lives on the dom0, so it also holds between two stacks or two machines. A shared hold
 * (`shared`) admits other shared holders and excludes only exclusive ones: many vTPMs may start on
 * one manager at once, but none while the manager is being destroyed. A wait that runs out says
 * so on stderr, instead of flock's silent exit 1.
 */
export function withLock(
  lockName: string,
  argv: readonly string[],
  opts: { shared?: boolean } = {},
): string[] {
  const mode = opts.shared ? "-s" : "-x";
  const script =
    `l=$1; shift; mkdir -p -- "$(dirname -- "$l")" || exit 1; flock ${mode} -E ${EXIT_LOCK_WAIT} -w 120 -- "$l" "$@"; rc=$?; ` +
    `[ "$rc" != ${EXIT_LOCK_WAIT} ] || echo "waited 120 s for the dom0 lock $l, held by another pulumi-tvd step; retry when it is done" >&2; exit "$rc"`;
  return ["sh", "-c", script, "lock", lockPath(lockName), ...argv];
}

/** A constant script's argv: its values only as positional arguments. */
function scriptArgv(script: string, args: readonly string[]): string[] {
  return ["sh", "-c", script, "pulumi-tvd", ...args];
}

/**
 * `xl list -l` parsed once per result: the inspections of one batch share its one result (see
 * readBatcher), and a refresh of a host's 67 domains had parsed the host's whole list 67 times.
 * The entries are shared, so nothing may change them (they are read only everywhere).
 */
const parsedLists = new WeakMap<ExecResult, XlListLongEntry[]>();
function parsedList(list: ExecResult): XlListLongEntry[] {
  let parsed = parsedLists.get(list);
  if (!parsed) {
    parsed = parseXlListLong(list.stdout, list.stderr, "xl list -l");
    parsedLists.set(list, parsed);
  }
  return parsed;
}

/** Typed operations on one dom0. Each method is one round trip unless it says otherwise. */
export class Dom0 {
  private constructor(private readonly session: SshSession) {}

  static async connect(conn: Connection): Promise<Dom0> {
    return new Dom0(await sessionFor(conn));
  }

  get endpoint(): string {
    return this.session.endpoint;
  }

  /** Read only; coalesced with the host's other reads (see read). */
  async probeFacts(xenDataDir: string): Promise<HostFactsReport> {
    const r = await this.read(probeFactsArgv(xenDataDir));
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, "probe host facts", r.exitCode, r.stderr);
    return parseFacts(r.stdout);
  }

  /**
   * A read-only command: the reads this host is asked for at once (a refresh of every resource)
   * share one round trip (readBatcher.ts); each still gets its own result.
   */
  private read(argv: readonly string[]): Promise<ExecResult> {
    return readBatcherFor(this.session).run(argv);
  }

  private async script(
    script: string,
    args: readonly string[],
    opts: { lock?: string; stdin?: string | Buffer } = {},
  ): Promise<ExecResult> {
    const argv = scriptArgv(script, args);
    return this.session.run(opts.lock ? withLock(opts.lock, argv) : argv, { stdin: opts.stdin });
  }

  private fail(argv: readonly string[], r: ExecResult, path: string): never {
    if (r.exitCode === EXIT_EXISTS) throw new ArtifactExistsError(this.endpoint, path);
    if (r.exitCode === EXIT_MISSING) throw new ArtifactMissingError(this.endpoint, path);
    throw new RemoteCommandError(this.endpoint, argv.join(" "), r.exitCode, r.stderr);
  }

  /** A zero-filled raw image of `sizeMiB` (what `dd` makes for vTPMs); never overwrites. */
  async createRawImage(path: string, sizeMiB: number, lock?: string): Promise<void> {
    const r = await this.script(CREATE_RAW_IMAGE, [path, String(sizeMiB)], { lock });
    if (r.exitCode !== 0) this.fail(["create raw image", path], r, path);
  }

  /**
   * Replaces a file atomically: readers see the old content or the new, never a part. Binary
   * content (an image) goes through stdin byte for byte.
   */
  async writeFileAtomic(path: string, content: string | Buffer, mode = "0644", lock?: string): Promise<void> {
    // The dom0 checks what it received against these before the rename (a cut connection).
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const args = [path, mode, String(bytes.length), sha256];
    const r = await this.script(WRITE_FILE_ATOMIC, args, { lock, stdin: bytes });
    if (r.exitCode !== 0) this.fail(["write", path], r, path);
  }

  /** A qcow2 overlay on `base` (O(1), no copy); never overwrites an existing overlay. */
  async createOverlay(
    base: string,
    baseFormat: "raw" | "qcow2",
    overlay: string,
    lock?: string,
  ): Promise<void> {
    const r = await this.script(CREATE_OVERLAY, [base, baseFormat, overlay], { lock });
    if (r.exitCode !== 0)
      this.fail(["create overlay", overlay], r, r.exitCode === EXIT_MISSING ? base : overlay);
  }

  /**
   * What is really on the dom0 for one domain and its artifacts: read only, two reads of one round
   * trip (see read), the host's `xl list -l` shared by every inspection of a batch.
   */
  async inspect(domain: string, targets: readonly InspectTarget[]): Promise<Inspection> {
    const [list, r] = await Promise.all([
      this.read(["xl", "list", "-l"]),
      this.read(scriptArgv(INSPECT, inspectArgs(domain, targets))),
    ]);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `inspect ${domain}`, r.exitCode, r.stderr);
    if (list.exitCode !== 0)
      throw new RemoteCommandError(
        this.endpoint,
        `inspect ${domain}: xl list -l`,
        list.exitCode,
        list.stderr,
      );
    return parseInspection(domain, r.stdout, parsedList(list));
  }

  /**
   * Waits until `domain`'s console prints `text`, checking on the dom0 itself (one round trip
   * however long it takes). Throws with the console's last lines when it does not in time.
   */
  async waitForConsole(domain: string, text: string, timeoutSec: number): Promise<void> {
    const log = consoleLogPath(domain);
    const r = await this.session.run(
      ["sh", "-c", WAIT_FOR_CONSOLE, "pulumi-tvd", log, text, String(timeoutSec)],
      {
        timeoutSec: timeoutSec + 30,
      },
    );
    if (r.exitCode === 0) return;
    if (r.exitCode === EXIT_TIMEOUT) {
      // A manager's console echoes its command line, owner_auth= and srk_auth= included.
      const tail = redactSecrets(r.stderr.trim());
      const last = tail ? `; its console's last lines:\n    ${tail.split("\n").join("\n    ")}` : "";
      throw new Error(`${domain} on ${this.endpoint} did not print "${text}" within ${timeoutSec}s${last}`);
    }
    throw new RemoteCommandError(this.endpoint, `wait for ${domain}'s console`, r.exitCode, r.stderr);
  }

  /** Makes `domain`'s console log a 0600 file before the domain starts (see PRIVATE_CONSOLE_LOG). */
  async privateConsoleLog(domain: string): Promise<void> {
    const log = consoleLogPath(domain);
    const r = await this.script(PRIVATE_CONSOLE_LOG, [log]);
    if (r.exitCode !== 0) this.fail(["make private", log], r, log);
  }

  /**
   * Moves a file (a vTPM image) into the dom0's archive, timestamped, never overwriting.
   * Returns where it went, or undefined when there was nothing to archive.
   */
  async archive(path: string, now = new Date()): Promise<string | undefined> {
    const stamp = now
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    const r = await this.script(ARCHIVE_FILE, [path, ARCHIVE_DIR, stamp]);
    if (r.exitCode !== 0) this.fail(["archive", path], r, path);
    return r.stdout.trim() || undefined;
  }

  /** Removes files; missing ones are fine (delete is idempotent). */
  async removeFiles(paths: readonly string[]): Promise<void> {
    if (paths.length) await this.session.check(["rm", "-f", "--", ...paths]);
  }

  /**
   * `xl create <config>`; throws with xl's own messages. A domain with a vtpm backend is created
   * holding the backend's lock shared, so that it never starts while the backend is being
   * destroyed (see xlDestroyUnlessUsed, which holds it exclusively), while the vTPMs of one manager
   * still start side by side (real xl takes 10-60 s per stub domain under QEMU).
   */
  async xlCreate(configPath: string, backend?: string): Promise<void> {
    const argv = ["xl", "create", configPath];
    for (let attempt = 1; ; attempt++) {
      const r = await this.session.run(backend ? withLock(backend, argv, { shared: true }) : argv);
      if (r.exitCode === 0) return;
      if (attempt > VTPM_ATTACH_RETRIES || !vtpmBackendWasLate(r.stderr)) {
        throw new RemoteCommandError(this.endpoint, argv.join(" "), r.exitCode, r.stderr);
      }
      await new Promise((resolve) => setTimeout(resolve, VTPM_ATTACH_RETRY_DELAY_MS));
    }
  }

  /**
   * `xl destroy <domain>` unless a domain uses it as its vtpm backend; then throws naming them,
   * having destroyed nothing. The check and the destroy are one step under the domain's lock.
   */
  async xlDestroyUnlessUsed(domain: string, what: string, doing: string): Promise<void> {
    const argv = ["sh", "-c", DESTROY_UNLESS_USED, "pulumi-tvd", domain];
    const r = await this.session.run(withLock(domain, argv));
    if (r.exitCode === EXIT_BUSY) {
      const users = domainsWithVtpmBackend(parseXlListLong(r.stdout, "", "xl list -l"), domain);
      throw new BackendInUseError(this.endpoint, what, domain, doing, users);
    }
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `destroy ${domain}`, r.exitCode, r.stderr);
  }

  /**
   * One exchange with the agent in `domain` through its xenstore data path (agent/PROTOCOL.md):
   * writes `value` to data/tvd/<write> and returns the JSON the agent leaves in data/tvd/<answer>
   * once it carries `token`. One round trip. A member that is not running gives AgentUnreachable
   * ("not running"), an agent that does not answer in time AgentUnreachable ("no answer").
   */
  async agentExchange(
    domain: string,
    exchange: { write: string; answer: string; token: string; value: string },
    timeoutSec: number,
  ): Promise<string> {
    const args = [domain, exchange.write, exchange.answer, exchange.token, String(timeoutSec)];
    const r = await this.session.run(["sh", "-c", AGENT_EXCHANGE, "pulumi-tvd", ...args], {
      stdin: exchange.value,
      timeoutSec: timeoutSec + 30,
    });
    if (r.exitCode === 0) return r.stdout.trim();
    if (r.exitCode === EXIT_NOT_RUNNING)
      throw new AgentUnreachableError(this.endpoint, domain, "not running");
    if (r.exitCode === EXIT_TIMEOUT)
      throw new AgentUnreachableError(this.endpoint, domain, "no answer", timeoutSec, r.stderr.trim());
    throw new RemoteCommandError(this.endpoint, `exchange with ${domain}'s agent`, r.exitCode, r.stderr);
  }

  /** `xl destroy <domain>`; a domain that is already gone is fine. */
  async xlDestroy(domain: string): Promise<void> {
    const r = await this.session.run(["xl", "destroy", domain]);
    if (r.exitCode !== 0 && !/is an invalid domain identifier/.test(r.stderr)) {
      throw new RemoteCommandError(this.endpoint, `xl destroy ${domain}`, r.exitCode, r.stderr);
    }
  }

  /**
   * Records `owner` as the owner of each artifact, refusing (OwnershipConflictError, nothing
   * recorded) when one exists and is another's or nobody's (unless `adopt`). Returns the keys
   * this call recorded, which are exactly what a failed step may release. One round trip.
   */
  async claim(owner: string, artifacts: readonly Artifact[], adopt: boolean): Promise<string[]> {
    const args = [owner, adopt ? "1" : "0", ...artifacts.map((a) => `${artifactKey(a)}=${a.role}`)];
    const r = await this.script(CLAIM, args);
    if (r.exitCode === EXIT_CONFLICT)
      throw new OwnershipConflictError(this.endpoint, parseConflicts(r.stdout), artifacts);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, "claim ownership records", r.exitCode, r.stderr);
    return parseKeys(r.stdout, "claimed");
  }

  /** Removes `owner`'s records of these keys; another owner's record is never touched. One round trip. */
  async release(owner: string, keys: readonly string[]): Promise<void> {
    if (!keys.length) return;
    const r = await this.script(RELEASE, [owner, ...keys]);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, "release ownership records", r.exitCode, r.stderr);
  }

  /**
   * Removes `owner`'s records of artifacts that are not among `current` and do not exist (what an
   * earlier, unfinished create of the resource claimed and never made). One round trip.
   */
  async releaseStale(owner: string, current: readonly string[]): Promise<void> {
    const r = await this.script(RELEASE_STALE, [owner, ...current]);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, "release stale ownership records", r.exitCode, r.stderr);
  }

  /** Who owns each artifact, and whether it exists. One round trip, read only. */
  async owners(artifacts: readonly Pick<Artifact, "type" | "name">[]): Promise<Map<string, OwnerRecord>> {
    const r = await this.script(OWNERS, artifacts.map(artifactKey));
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, "read ownership records", r.exitCode, r.stderr);
    return parseOwners(r.stdout);
  }

  /**
   * Makes a TVD's bridge and VXLAN as declared: what is missing is made, peers are added and
   * removed, the MTU is set (see TVD_NET_CREATE). One round trip.
   */
  async ensureVxlanBridge(n: VxlanBridge): Promise<void> {
    const args = [n.bridge, String(n.vni), n.localIp, String(n.dstPort), String(n.mtu), ...n.peers];
    const r = await this.script(TVD_NET_CREATE, args, { lock: `bridge-${n.bridge}` });
    if (r.exitCode !== 0)
      throw new RemoteCommandError(
        this.endpoint,
        `create bridge ${n.bridge} with vx${n.vni}`,
        r.exitCode,
        r.stderr,
      );
  }

  /**
   * Every link on the dom0 and the VXLAN's fdb, as `ip -j` and `bridge -j` print them. Read only,
   * one round trip or a part of one (see read).
   */
  async readVxlanBridge(bridge: string, vxlan: string): Promise<{ links: unknown[]; fdb: unknown[] }> {
    const r = await this.read(scriptArgv(TVD_NET_READ, [bridge, vxlan]));
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `read bridge ${bridge}`, r.exitCode, r.stderr);
    const values = new Map(
      r.stdout
        .split("\n")
        .filter((l) => l.includes("\t"))
        .map((l) => [
          l.slice(0, l.indexOf("\t")),
          Buffer.from(l.slice(l.indexOf("\t") + 1), "base64").toString(),
        ]),
    );
    const json = (key: string) => JSON.parse(values.get(key)?.trim() || "[]") as unknown[];
    return { links: json("links"), fdb: json("fdb") };
  }

  /**
   * Removes the bridge and its VXLAN, or only those of the two that `remove` names (what the
   * network owns); gone already is fine. Throws BridgeInUseError, removing nothing, while other
   * interfaces (guests' vifs) are still on a bridge to remove.
   */
  async deleteVxlanBridge(
    bridge: string,
    vxlan: string,
    remove: { readonly bridge: boolean; readonly vxlan: boolean } = { bridge: true, vxlan: true },
  ): Promise<void> {
    if (!remove.bridge && !remove.vxlan) return;
    const flags = [remove.bridge ? "1" : "0", remove.vxlan ? "1" : "0"];
    const r = await this.script(TVD_NET_DELETE, [bridge, vxlan, ...flags], { lock: `bridge-${bridge}` });
    if (r.exitCode === EXIT_BUSY) {
      const ports = r.stdout
        .trim()
        .split("\n")
        .map((l) => {
          const [ifname, domain] = l.split(" ");
          return { ifname, domain: domain === "-" || domain === "?" ? undefined : domain };
        });
      throw new BridgeInUseError(this.endpoint, bridge, ports);
    }
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `delete bridge ${bridge}`, r.exitCode, r.stderr);
  }
}

/** A TVD's network on one dom0: its bridge, joined to the other hosts by VXLAN vx<vni>. */
export interface VxlanBridge {
  readonly bridge: string;
  readonly vni: number;
  readonly localIp: string;
  readonly peers: readonly string[];
  readonly mtu: number;
  readonly dstPort: number;
}

/** A bridge cannot go while interfaces other than its VXLAN are on it. */
export class BridgeInUseError extends Error {
  constructor(
    readonly endpoint: string,
    readonly bridge: string,
    readonly ports: ReadonlyArray<{ readonly ifname: string; readonly domain?: string }>,
  ) {
    const named = ports.map((p) => (p.domain ? `${p.ifname} (domain ${p.domain})` : p.ifname)).join(", ");
    super(
      `bridge ${bridge} on ${endpoint} still has interfaces ${named}; guests must go first: destroy them (or move their vifs) before deleting the network`,
    );
    this.name = "BridgeInUseError";
  }
}

/** How often `xl create` is tried again when its vtpm backend did not answer in time. */
const VTPM_ATTACH_RETRIES = 2;
const VTPM_ATTACH_RETRY_DELAY_MS = 5_000;

/**
 * Whether `xl create` failed only because the vtpm backend (a vTPM stub domain) did not connect
 * the new device within libxl's device timeout. Real Xen under QEMU showed it when several guests
 * start beside their just-started vTPMs: `libxl_create.c: ...: unable to add vtpm devices`,
 * after which libxl destroys the half-made domain itself. Nothing of it is left, so the same
 * `xl create` may run again; any other failure (a backend that does not exist, or a domain left
 * behind, which makes the next try fail with "already exists") is reported as it is. Pure.
 */
export function vtpmBackendWasLate(stderr: string): boolean {
  // The backend domain ran but did not connect the device in time. When it does not exist at all,
  // libxl says "unable to add vtpm devices" without this line, and trying again cannot help.
  return (
    /device_backend_callback: .*unable to add device with path \S*\/backend\/vtpm\//.test(stderr) &&
    /unable to add vtpm devices/.test(stderr)
  );
}

/** A member's agent could not be asked: its domain is not running, or it did not answer in time. */
export class AgentUnreachableError extends Error {
  constructor(
    readonly endpoint: string,
    readonly domain: string,
    readonly why: "not running" | "no answer",
    timeoutSec?: number,
    last?: string,
  ) {
    super(
      why === "not running"
        ? `member ${domain} is not running on ${endpoint}: its agent cannot be asked; start it (pulumi up) and retry`
        : `member ${domain}'s agent on ${endpoint} did not answer within ${timeoutSec}s through xenstore ` +
            `(/local/domain/<domid>/data/tvd)${last ? `; the node held: ${last.slice(0, 300)}` : ""}; ` +
            "check that the member booted its seed (tvd-agent.service) and has a vTPM, or raise readyTimeoutSec",
    );
  }
}
