/**
 * A TVD member's port on dom0 and the bridge that holds it. A member's guest vif is declared on
 * its TVD's holding bridge (`bridge=<holding>`, with a `vifname=` of its own): Xen's vif-bridge
 * hotplug script puts every new backend interface on the bridge its xenstore `bridge` key names,
 * at each start of the domain, so a guest that (re)starts is always held. The holding bridge is
 * kept down: a down bridge's ports are in the disabled state and forward nothing, to one another
 * or to dom0, whatever joins it. A MemberPort moves the port onto the TVD bridge once the member's
 * attestation passed, and back. The scripts are constants; values reach them only as positional
 * arguments.
 */
import { RemoteCommandError } from "../transport/errors";
import { sessionFor, type ExecResult, type SshSession } from "../transport/ssh";
import type { Connection } from "../transport/connection";
import { withLock } from "./dom0";
import { readBatcherFor } from "./readBatcher";

/** Exit code of PORT_MOVE when the port does not exist (its guest is not running). */
export const EXIT_NO_PORT = 4;
/** Exit code of PORT_MOVE when the port is on a bridge it may not be taken from; prints it. */
export const EXIT_FOREIGN_BRIDGE = 5;
/** Exit code of HOLD_DELETE while ports are on the holding bridge; prints each. */
export const EXIT_HOLD_BUSY = 6;

/**
 * $1 port, $2 the bridge to put it on, then the bridges it may be taken from. A port already on
 * $2 is left as it is; one on any other bridge (or on none) is refused, printing its master.
 * The port stays up: the guest's link does not flap.
 */
export const PORT_MOVE = `set -u
port=$1; to=$2; shift 2
ip link show dev "$port" >/dev/null 2>&1 || exit ${EXIT_NO_PORT}
master=$(ip -o link show dev "$port" | grep -o ' master [^ ]*' | cut -d' ' -f3)
[ "$master" = "$to" ] && exit 0
ok=0; for b in "$@"; do [ -n "$master" ] && [ "$master" = "$b" ] && ok=1; done
[ "$ok" = 1 ] || { printf '%s\\n' "\${master:--}"; exit ${EXIT_FOREIGN_BRIDGE}; }
ip link set dev "$port" master "$to" || exit 1
ip link set dev "$port" up
`;

/**
 * $1 holding bridge, $2 MTU. Makes the bridge if missing (refusing a device of that name that is
 * not a bridge), sets its MTU (vif-bridge gives each new port the bridge's MTU, which must be the
 * TVD bridge's) and keeps it down, which is what holds: its ports forward nothing.
 */
export const HOLD_ENSURE = `set -u
br=$1; mtu=$2
if ip link show dev "$br" >/dev/null 2>&1; then
  [ -n "$(ip -o link show dev "$br" type bridge)" ] || { echo "$br exists on this host and is not a bridge" >&2; exit 1; }
else
  ip link add name "$br" type bridge || exit 1
fi
ip link set dev "$br" mtu "$mtu" && ip link set dev "$br" down
`;

/**
 * $1 holding bridge. Removes it, but not while ports are on it: then it exits ${EXIT_HOLD_BUSY}
 * printing each, having removed nothing. Gone already is fine.
 */
export const HOLD_DELETE = `set -u
br=$1
[ -n "$(ip -o link show dev "$br" type bridge 2>/dev/null)" ] || exit 0
ports=$(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
[ -z "$ports" ] || { printf '%s\\n' "$ports"; exit ${EXIT_HOLD_BUSY}; }
ip link del dev "$br"
`;

/** Where a member finds its TVD's CRL: its own xenstore data path, which it may read. */
export const CRL_NODE = "data/tvd/crl";

/**
 * $1 domain, the CRL on stdin. Writes it to the running domain's /local/domain/<domid>/$CRL_NODE
 * (dom0 may write anywhere; the guest reads its own data path). Exits ${EXIT_NO_PORT} when the
 * domain is not running. A CRL is public: no secret passes here.
 */
export const CRL_WRITE = `set -u
id=$(xl domid "$1" 2>/dev/null) || exit ${EXIT_NO_PORT}
xenstore-write "/local/domain/$id/${CRL_NODE}" "$(cat)"
`;

/** $1 domain. Prints the CRL the running domain holds; nothing when it holds none. Read only. */
export const CRL_READ = `set -u
id=$(xl domid "$1" 2>/dev/null) || exit 0
xenstore-read "/local/domain/$id/${CRL_NODE}" 2>/dev/null || true
`;

/** What `ip -j link show dev <port>` says of a port: its bridge, or that it does not exist. */
export interface PortSeen {
  readonly exists: boolean;
  /** The bridge it is on; undefined when on none. */
  readonly master?: string;
}

/** Parses `ip -j link show dev <port>` (exit code and stdout). Pure. */
export function parsePortLink(exitCode: number | null, stdout: string): PortSeen {
  if (exitCode !== 0) return { exists: false };
  const [link] = JSON.parse(stdout || "[]") as Array<{ master?: string }>;
  return link ? { exists: true, master: link.master } : { exists: false };
}

/** The port is on a bridge a MemberPort may not take it from. */
export class ForeignBridgeError extends Error {
  constructor(
    readonly endpoint: string,
    readonly port: string,
    readonly master: string | undefined,
    allowed: readonly string[],
  ) {
    super(
      `port ${port} on ${endpoint} is on ${master ? `bridge ${master}` : "no bridge"}, not on ${allowed.join(" or ")}; ` +
        `pulumi-tvd does not take a port from a bridge that is not its TVD's: move it back (ip link set dev ${port} master ${allowed[allowed.length - 1]}) or restart its guest`,
    );
    this.name = "ForeignBridgeError";
  }
}

/** The port does not exist: its guest is not running (or has another vifname). */
export class MissingPortError extends Error {
  constructor(
    readonly endpoint: string,
    readonly port: string,
    domain: string,
  ) {
    super(
      `port ${port} of domain ${domain} does not exist on ${endpoint}: the guest is not running, or its vif has another vifname; start the guest (its port comes up on the holding bridge) and run up again`,
    );
    this.name = "MissingPortError";
  }
}

/** The holding bridge still holds ports. */
export class HoldInUseError extends Error {
  constructor(endpoint: string, bridge: string, ports: readonly string[]) {
    super(
      `holding bridge ${bridge} on ${endpoint} still has ports ${ports.join(", ")}; guests must go first: destroy them before deleting the network`,
    );
    this.name = "HoldInUseError";
  }
}

/** Port and holding-bridge operations on one dom0. Each is one round trip. */
export class MemberPorts {
  private constructor(private readonly session: SshSession) {}

  static async connect(conn: Connection): Promise<MemberPorts> {
    return new MemberPorts(await sessionFor(conn));
  }

  get endpoint(): string {
    return this.session.endpoint;
  }

  private run(script: string, args: readonly string[], lock?: string): Promise<ExecResult> {
    const argv = ["sh", "-c", script, "pulumi-tvd", ...args];
    return this.session.run(lock ? withLock(lock, argv) : argv);
  }

  /** Where the port is. Read only; coalesced with the host's other reads. */
  async readPort(port: string): Promise<PortSeen> {
    const r = await readBatcherFor(this.session).run(["ip", "-j", "link", "show", "dev", port]);
    return parsePortLink(r.exitCode, r.stdout);
  }

  /**
   * Puts `port` on `to`, taking it only from `from` (the TVD's other bridge). Throws
   * MissingPortError or ForeignBridgeError, having moved nothing.
   */
  async movePort(port: string, domain: string, to: string, from: string): Promise<void> {
    const r = await this.run(PORT_MOVE, [port, to, from], `bridge-${to}`);
    if (r.exitCode === EXIT_NO_PORT) throw new MissingPortError(this.endpoint, port, domain);
    if (r.exitCode === EXIT_FOREIGN_BRIDGE) {
      const master = r.stdout.trim();
      throw new ForeignBridgeError(this.endpoint, port, master === "-" ? undefined : master, [to, from]);
    }
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `move port ${port} to ${to}`, r.exitCode, r.stderr);
  }

  /** Hands the member its TVD's CRL through its xenstore data path. */
  async writeCrl(domain: string, port: string, crlPem: string): Promise<void> {
    const r = await this.session.run(["sh", "-c", CRL_WRITE, "pulumi-tvd", domain], { stdin: crlPem });
    if (r.exitCode === EXIT_NO_PORT) throw new MissingPortError(this.endpoint, port, domain);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `write ${domain}'s CRL`, r.exitCode, r.stderr);
  }

  /** The CRL the member holds, or "" (none, or not running). Read only; coalesced. */
  async readCrl(domain: string): Promise<string> {
    const r = await readBatcherFor(this.session).run(["sh", "-c", CRL_READ, "pulumi-tvd", domain]);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `read ${domain}'s CRL`, r.exitCode, r.stderr);
    return r.stdout.replace(/\n+$/, "\n");
  }

  async ensureHold(bridge: string, mtu: number): Promise<void> {
    const r = await this.run(HOLD_ENSURE, [bridge, String(mtu)], `bridge-${bridge}`);
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `create holding bridge ${bridge}`, r.exitCode, r.stderr);
  }

  async deleteHold(bridge: string): Promise<void> {
    const r = await this.run(HOLD_DELETE, [bridge], `bridge-${bridge}`);
    if (r.exitCode === EXIT_HOLD_BUSY)
      throw new HoldInUseError(this.endpoint, bridge, r.stdout.trim().split("\n"));
    if (r.exitCode !== 0)
      throw new RemoteCommandError(this.endpoint, `delete holding bridge ${bridge}`, r.exitCode, r.stderr);
  }
}
