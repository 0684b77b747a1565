/**
 * Ownership of what pulumi-tvd makes on a dom0. A dom0 is shared with people and other stacks:
 * every artifact a resource creates (a domain name, a config, an image, an overlay, a seed, a
 * bridge, a VXLAN) gets an ownership record on the dom0 itself, naming the one resource of one
 * stack that made it. The record is written before the artifact exists and removed after it is
 * gone, so there is never an artifact of ours without its record. Create refuses anything that
 * exists and is not its own; delete and cleanup touch only what the resource owns.
 *
 * The pure half (keys, the in-program registry, messages) is here with the dom0 scripts; the
 * scripts are constants and every value reaches them as a positional argument.
 */
import { EXIT_EXISTS, IGNORE_SIGPIPE } from "../dom0/scripts";

/**
 * What kind of thing an artifact is; the key's prefix. A "uuid" is a vTPM's identity to its
 * manager: recorded like the rest, so two vTPMs of two stacks never present one UUID.
 */
export type ArtifactType = "domain" | "file" | "bridge" | "link" | "uuid";

/**
 * One thing on a dom0 a resource makes and owns. `role` says what it is to people reading an
 * error ("vTPM image", "config"); a "key image" holds vTPM keys and is never attached to a guest.
 */
export interface Artifact {
  readonly type: ArtifactType;
  /** The domain or link name, or the file's absolute path. */
  readonly name: string;
  readonly role: string;
  /** The input property that places it, named in the fix of a refusal. */
  readonly property: string;
}

/** The host-wide key of an artifact: one record per key per dom0. */
export function artifactKey(a: Pick<Artifact, "type" | "name">): string {
  // Records are lines; validated inputs never hold a newline, and a key that does is refused.
  if (/[\n\0]/.test(a.name))
    throw new Error(`an artifact name cannot hold a newline or NUL: ${JSON.stringify(a.name)}`);
  return `${a.type}:${a.name}`;
}

/** Where ownership records live on every dom0. */
export const OWNERS_DIR = "/var/lib/xen/pulumi-tvd/owners";

/** Exit code of CLAIM when something is in the way (as EEXIST). */
export const EXIT_CONFLICT = EXIT_EXISTS;

/**
 * Shell functions every ownership script shares. `rec <key>` is the record's path (the key's
 * sha256, so any path or name maps to a plain file name); a record holds three lines: the key,
 * the owner, the role.
 */
const RECORD_FUNCTIONS = `dir=${OWNERS_DIR}
rec() { printf '%s/%s' "$dir" "$(printf '%s' "$1" | sha256sum | cut -c1-40)"; }
owner_of() { r=$(rec "$1"); [ -f "$r" ] && sed -n 2p -- "$r"; }
role_of() { r=$(rec "$1"); [ -f "$r" ] && sed -n 3p -- "$r"; }
exists() {
  case $1 in
    domain:*) xl domid -- "\${1#domain:}" >/dev/null 2>&1 ;;
    file:*) [ -e "\${1#file:}" ] || [ -L "\${1#file:}" ] ;;
    bridge:*|link:*) ip link show dev "\${1#*:}" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
`;

/**
 * $1 owner, $2 adopt (1 or 0), then key=role arguments. Under one lock on the dom0 (what exists
 * is looked at before it): an artifact
 * whose record names this owner is already ours; one with another owner's record is refused;
 * one that exists without a record was made outside pulumi-tvd and is refused unless adopt is 1;
 * anything else gets this owner's record, written to a temporary file and linked into place
 * (never over another record). All or nothing: on a refusal the records made by this run are
 * removed and every conflict is printed as `conflict<TAB>key<TAB>owner` (owner empty: no
 * record). On success prints `claimed<TAB>key` for each record this run made.
 */
export const CLAIM = `set -u
${IGNORE_SIGPIPE}
${RECORD_FUNCTIONS}me=$1; adopt=$2; shift 2
# What exists is looked at before the lock: a domain's costs a toolstack call, and the claims of
# one host must not queue behind each other's for it. One made meanwhile outside pulumi-tvd is
# refused by the create that follows, as one made just after the lock would be.
present=""
for a in "$@"; do key=\${a%=*}; ! exists "$key" || present="$present\${key}
"; done
mkdir -p -- "$dir"
exec 9>"$dir/.lock"
flock -w 120 9 || { echo "cannot lock $dir" >&2; exit 1; }
made=""; conflicts=""; tmp=""
unwritten() {
  rm -f -- "$tmp"; for r in $made; do rm -f -- "$r"; done
  echo "cannot write the ownership record of $1 in $dir (is the disk full?); nothing was claimed" >&2
  exit 1
}
for a in "$@"; do
  key=\${a%=*}; role=\${a##*=}
  r=$(rec "$key")
  if [ -f "$r" ]; then
    o=$(sed -n 2p -- "$r")
    [ "$o" = "$me" ] && continue
    conflicts="$conflicts$(printf 'conflict\\t%s\\t%s\\t%s' "$key" "$o" "$(sed -n 3p -- "$r")")
"
    continue
  fi
  if printf '%s' "$present" | grep -qxF -- "$key" && [ "$adopt" != 1 ]; then
    conflicts="$conflicts$(printf 'conflict\\t%s\\t\\t' "$key")
"
    continue
  fi
  # A record that cannot be written whole (a full disk) fails the claim, taking back this run's.
  tmp=$(mktemp -- "$dir/.claim.XXXXXX") || unwritten "$key"
  printf '%s\\n%s\\n%s\\n' "$key" "$me" "$role" > "$tmp" || unwritten "$key"
  ln -- "$tmp" "$r" || unwritten "$key"
  # Nothing is printed while a temporary file exists: with the client gone, a write to stdout
  # ends the script (SIGPIPE), which must leave no temporary file behind.
  rm -f -- "$tmp"; made="$made $r"; printf 'claimed\\t%s\\n' "$key"
done
if [ -n "$conflicts" ]; then
  for r in $made; do rm -f -- "$r"; done
  printf '%s' "$conflicts"
  exit ${EXIT_CONFLICT}
fi
exit 0
`;

/**
 * $1 owner, then keys. Removes the records of these keys that name this owner; another owner's
 * record is never touched. Prints `released<TAB>key` for each.
 */
export const RELEASE = `set -u
${RECORD_FUNCTIONS}me=$1; shift
[ -d "$dir" ] || exit 0
exec 9>"$dir/.lock"
flock -w 120 9 || { echo "cannot lock $dir" >&2; exit 1; }
for key in "$@"; do
  r=$(rec "$key")
  [ -f "$r" ] && [ "$(sed -n 2p -- "$r")" = "$me" ] && rm -f -- "$r" && printf 'released\\t%s\\n' "$key"
done
exit 0
`;

/**
 * $1 owner, then the keys of what the resource places now. Removes this owner's other records
 * whose artifact does not exist: what an earlier create of the resource claimed and never made
 * (the vTPM UUID it generated then, before its dom0 went away). A record whose artifact exists (an
 * archived or retained key image) is kept. Prints `released<TAB>key` for each record removed.
 */
export const RELEASE_STALE = `set -u
${RECORD_FUNCTIONS}me=$1; shift
[ -d "$dir" ] || exit 0
exec 9>"$dir/.lock"
flock -w 120 9 || { echo "cannot lock $dir" >&2; exit 1; }
for r in "$dir"/*; do
  [ -f "$r" ] && [ "$(sed -n 2p -- "$r")" = "$me" ] || continue
  key=$(sed -n 1p -- "$r"); current=0
  for k in "$@"; do [ "$k" = "$key" ] && current=1; done
  [ "$current" = 0 ] && ! exists "$key" && rm -f -- "$r" && printf 'released\\t%s\\n' "$key"
done
exit 0
`;

/**
 * Keys as arguments. Prints `owner<TAB>key<TAB>owner<TAB>role<TAB>exists` for each: the owner
 * and role empty without a record, exists 1 or 0. Read only.
 */
export const OWNERS = `set -u
${RECORD_FUNCTIONS}for key in "$@"; do
  e=0; exists "$key" && e=1
  printf 'owner\\t%s\\t%s\\t%s\\t%s\\n' "$key" "$(owner_of "$key")" "$(role_of "$key")" "$e"
done
`;

/** What CLAIM found in the way. */
export interface Conflict {
  readonly key: string;
  /** The other owner, or undefined when the artifact exists without any record. */
  readonly owner?: string;
  readonly role?: string;
}

/** Parses CLAIM's conflict lines. Pure. */
export function parseConflicts(stdout: string): Conflict[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("conflict\t"))
    .map((l) => {
      const [, key, owner, role] = l.split("\t");
      return { key, owner: owner || undefined, role: role || undefined };
    });
}

/** Parses the keys a CLAIM or RELEASE run reported (`claimed`/`released` lines). Pure. */
export function parseKeys(stdout: string, tag: "claimed" | "released"): string[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith(`${tag}\t`))
    .map((l) => l.slice(tag.length + 1));
}

/** One artifact's record as OWNERS reports it. */
export interface OwnerRecord {
  readonly key: string;
  readonly owner?: string;
  readonly role?: string;
  readonly exists: boolean;
}

export function parseOwners(stdout: string): Map<string, OwnerRecord> {
  const out = new Map<string, OwnerRecord>();
  for (const l of stdout.split("\n")) {
    if (!l.startsWith("owner\t")) continue;
    const [, key, owner, role, exists] = l.split("\t");
    out.set(key, { key, owner: owner || undefined, role: role || undefined, exists: exists === "1" });
  }
  return out;
}

/** A refusal naming what is there, who owns it, and the fix. Pure. */
export class OwnershipConflictError extends Error {
  constructor(
    readonly endpoint: string,
    readonly conflicts: readonly Conflict[],
    artifacts: readonly Artifact[],
  ) {
    const lines = conflicts.map((c) => {
      const a = artifacts.find((x) => artifactKey(x) === c.key);
      const what = a ? `${a.role} ${a.name}` : c.key;
      const whose = c.owner
        ? `owned by ${c.owner}${c.role ? ` (its ${c.role})` : ""}`
        : "not made by pulumi-tvd for this resource (no ownership record)";
      const fix = c.owner
        ? `choose another ${a?.property ?? "name"}, or remove it from ${c.owner} first`
        : `set adopt: true to take it over, or choose another ${a?.property ?? "name"}`;
      return `${what} already exists on ${endpoint}, ${whose}; ${fix}`;
    });
    super(`refusing to touch what this resource does not own:\n  - ${lines.join("\n  - ")}`);
    this.name = "OwnershipConflictError";
  }
}

/**
 * Keys, each held by one owner, with each owner's keys indexed: a resource checked again forgets
 * its own keys in time proportional to them, not to the whole program's (a scan of every key for
 * every check made checking a program quadratic: 77 ms of the provider's CPU at 201 resources).
 */
export class OwnedKeys {
  private readonly byKey = new Map<string, { owner: string; role: string }>();
  private readonly keysOf = new Map<string, Set<string>>();

  get(key: string): { owner: string; role: string } | undefined {
    return this.byKey.get(key);
  }

  set(key: string, value: { owner: string; role: string }): void {
    this.byKey.set(key, value);
    let keys = this.keysOf.get(value.owner);
    if (!keys) this.keysOf.set(value.owner, (keys = new Set()));
    keys.add(key);
  }

  /** Forgets the keys `owner` holds (a key another owner took over since stays with it). */
  forget(owner: string): void {
    for (const k of this.keysOf.get(owner) ?? [])
      if (this.byKey.get(k)?.owner === owner) this.byKey.delete(k);
    this.keysOf.delete(owner);
  }

  clear(): void {
    this.byKey.clear();
    this.keysOf.clear();
  }
}

/**
 * Artifacts declared by the resources of one program, seen by `check` (every resource of a
 * program is checked in the one provider process), so that two resources on one domain name,
 * path, UUID or bridge are refused before any host is touched.
 */
const declared = new OwnedKeys();
const used = new OwnedKeys();

/**
 * Records that `owner` declares `keys` on `host` and returns a failure for each key another
 * resource of this program already declared. A resource checked again (preview, then up)
 * re-declares its own keys without conflict; keys it no longer declares are forgotten.
 */
export function declareInProgram(
  host: string,
  owner: string,
  items: ReadonlyArray<{ key: string; role: string; property: string; use?: boolean }>,
): Array<{ property: string; reason: string }> {
  declared.forget(owner);
  used.forget(owner);
  const failures: Array<{ property: string; reason: string }> = [];
  const name = (key: string) => key.replace(/^\w+:/, "");
  for (const item of items) {
    // One program is one stack: resources of other stacks (a test driving two) meet on the host.
    const k = `${owner.split(" ")[0]} ${host} ${item.key}`;
    const other = declared.get(k);
    if (item.use) {
      // Using what another resource owns is normal (a seed attached to its guest), but never a key image.
      if (other && other.owner !== owner && other.role.includes("key image"))
        failures.push({
          property: item.property,
          reason: `${name(item.key)} on ${host} is the ${other.role} of ${other.owner}; a key image is never a guest's disk`,
        });
      else used.set(k, { owner, role: item.role });
      continue;
    }
    const user = used.get(k);
    if (other && other.owner !== owner) {
      failures.push({
        property: item.property,
        reason: `${name(item.key)} on ${host} is also declared by ${other.owner} (its ${other.role}); give each resource its own`,
      });
    } else if (user && user.owner !== owner && item.role.includes("key image")) {
      failures.push({
        property: item.property,
        reason: `${name(item.key)} on ${host} is also declared by ${user.owner} as a disk; a key image is never a guest's disk`,
      });
    } else {
      declared.set(k, { owner, role: item.role });
    }
  }
  return failures;
}

/** For tests: forget every declaration. */
export function resetProgramDeclarations(): void {
  declared.clear();
  used.clear();
}
