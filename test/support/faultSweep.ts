/**
 * What issue 12's fault sweep needs besides the lab's knobs: the engine's bookkeeping around a
 * lifecycle (what state it keeps when an operation fails, what a second `pulumi up` or
 * `pulumi destroy` does with it), the steps an operation takes as the transport records them, a
 * fault pattern for each step, and the host's state with the invariants checked after every case.
 */
import { readFileSync } from "node:fs";
import { inHost, type LabHostRecord } from "../../lab/host";
import type { Lifecycle } from "../../provider/core/define";
import { resetProgramDeclarations } from "../../provider/core/ownership";
import { SCRIPTS } from "../../provider/dom0/scriptNames";

type Props = Record<string, unknown>;

/** What the engine holds for one resource: its ID, the inputs check gave, the outputs. */
export interface Held {
  readonly id: string;
  readonly inputs: Props;
  readonly outs: Props;
}

/**
 * One resource of one stack as the engine drives it: `up` and `destroy` are the engine's steps for
 * a `pulumi up` and a `pulumi destroy` of a program holding only it, and `held` is what the
 * state file holds afterwards, whether the step succeeded or not (a failed create leaves nothing,
 * a failed update or delete leaves the old state, a replace whose create failed nothing).
 */
export class EngineResource {
  held: Held | undefined;

  constructor(
    private readonly lc: Lifecycle,
    /** `<project>/<stack> <Kind> <resource name>`, as the resource classes pass it. */
    readonly owner: string,
  ) {}

  private async checked(inputs: Props): Promise<Props> {
    const r = await this.lc.check(this.held?.inputs ?? {}, { owner: this.owner, ...inputs });
    if (r.failures?.length) throw new Error(r.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    return r.inputs as Props;
  }

  /** A `pulumi up` of a program declaring the resource with `inputs` (a new program run). */
  async up(inputs: Props): Promise<"created" | "updated" | "replaced" | "same"> {
    resetProgramDeclarations();
    const news = await this.checked(inputs);
    const held = this.held;
    if (!held) {
      const r = await this.lc.create(news);
      this.held = { id: r.id, inputs: news, outs: r.outs as Props };
      return "created";
    }
    const d = await this.lc.diff(held.id, held.outs, news);
    if (!d.changes) return "same";
    if (d.replaces?.length) {
      await this.lc.delete(held.id, held.outs);
      this.held = undefined;
      const r = await this.lc.create(news);
      this.held = { id: r.id, inputs: news, outs: r.outs as Props };
      return "replaced";
    }
    const r = await this.lc.update(held.id, held.outs, news);
    this.held = { id: held.id, inputs: news, outs: r.outs as Props };
    return "updated";
  }

  /** A `pulumi destroy`. */
  async destroy(): Promise<void> {
    if (!this.held) return;
    await this.lc.delete(this.held.id, this.held.outs);
    this.held = undefined;
  }

  /** A `pulumi refresh`: the host's view becomes the state; a resource gone from the host drops out. */
  async refresh(): Promise<void> {
    if (!this.held) return;
    const r = await this.lc.read(this.held.id, this.held.outs);
    this.held = r.id
      ? { id: r.id, inputs: (r.inputs ?? this.held.inputs) as Props, outs: (r.props ?? {}) as Props }
      : undefined;
  }

  /**
   * What `pulumi preview --refresh` would still do for `inputs` (nothing when converged): the
   * refreshed state's diff, or "create" when the resource is gone.
   */
  async pending(inputs: Props): Promise<string | undefined> {
    await this.refresh();
    if (!this.held) return "create (gone from the host)";
    resetProgramDeclarations();
    const d = await this.lc.diff(this.held.id, this.held.outs, await this.checked(inputs));
    if (!d.changes) return undefined;
    const changed = Object.keys(inputs).filter(
      (k) => JSON.stringify(this.held!.outs[k]) !== JSON.stringify(this.held!.inputs[k]),
    );
    return `changes (replaces: ${(d.replaces ?? []).join(", ") || "none"}; differing outputs: ${changed.join(", ")})`;
  }
}

/** The steps (round trips) recorded in $PULUMI_TVD_STATS from byte `from` on. */
export function recordedSteps(statsFile: string, from: number): string[] {
  return readFileSync(statsFile)
    .subarray(from)
    .toString("utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; step?: string })
    .filter((e) => e.event === "exec")
    .map((e) => e.step ?? "?");
}

/** Each character awk's extended regexes give a meaning, as a bracket that matches only itself. */
function awkLiteral(text: string): string {
  return text.replace(/[.$()*+?{}|[\]]/g, (c) => `[${c}]`);
}

/**
 * The fewest consecutive lines of each constant script that no other one holds, without a quote
 * or backslash (which the transport's quoting and awk change), as an awk regex (`.` stands for
 * each newline): what a fault pattern matches the script's command line by.
 */
const SCRIPT_MARKS: Record<string, string> = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, text]) => {
    const others = Object.entries(SCRIPTS)
      .filter(([n]) => n !== name)
      .map(([, t]) => t);
    const lines = text.split("\n");
    for (let size = 1; size <= 4; size++)
      for (let i = 0; i + size <= lines.length; i++) {
        const window = lines.slice(i, i + size);
        const joined = window.join("\n");
        if (joined.trim().length < 12 || /['\\^]/.test(joined) || others.some((t) => t.includes(joined)))
          continue;
        return [name, window.map(awkLiteral).join(".")];
      }
    throw new Error(`script ${name} has no lines of its own to match it by`);
  }),
);

/**
 * The fault pattern (lab/faults.ts: failNext, stepRule) that matches the command line of a step
 * with this label and of no step with another: a script by lines only it has (under the dom0-side
 * lock or not), a command by its first words as the transport quotes them (first on the command
 * line, or right after the lock's arguments).
 */
export function stepPattern(label: string): string {
  const script = /^(?:flock )?sh -c (\S+)$/.exec(label);
  if (script) {
    const mark = SCRIPT_MARKS[script[1]];
    if (!mark) throw new Error(`no pattern for the step ${label}: not a script a Dom0 runs`);
    return mark;
  }
  const locked = label.startsWith("flock ");
  const words = (locked ? label.slice("flock ".length) : label)
    .split(" ")
    .map((w) => awkLiteral(`'${w}'`))
    .join(" ");
  // Under the lock the command follows the lock script's arguments: `'lock' '<lock file>'`.
  return locked ? `'lock' '[^']*' ${words}` : `^${words}`;
}

/** What is on a lab host, as far as the invariants go. */
export interface HostState {
  /** Running domains, Domain-0 left out. */
  readonly domains: string[];
  /** Regular files under /etc/xen, /var/lib/xen/{vtpm,images} and the archive: inode and size. */
  readonly files: Map<string, { inode: string; size: number }>;
  /** sha256 of each file under /var/lib/xen/vtpm and in the archive. */
  readonly sha256: Map<string, string>;
  /** Ownership records: key -> owner and role. */
  readonly records: Map<string, { owner: string; role: string }>;
  /** Temporary files of an interrupted write: `*.partial.*`, `.claim.*`. */
  readonly temporary: string[];
  /** Network links by name. */
  readonly links: string[];
  /** Each domain config and the disks it names. */
  readonly configs: Map<string, string[]>;
  /** The UUID each vTPM's config gives it (`vtpm=["backend=<manager>,uuid=<uuid>"]`), by config. */
  readonly vtpmUuids: Map<string, string>;
  /** Each qcow2 overlay under /var/lib/xen/images: its backing file, or null when qemu-img cannot read it. */
  readonly overlays: Map<string, string | null>;
}

export const ARCHIVE = "/var/lib/xen/pulumi-tvd/archive";
const WATCHED = ["/etc/xen", "/var/lib/xen/vtpm", "/var/lib/xen/images", ARCHIVE];

const SNAPSHOT = `set -u
/usr/local/sbin/xl list 2>/dev/null | awk 'NR > 1 && $1 != "Domain-0" { print "domain\\t" $1 }'
for d in ${WATCHED.join(" ")}; do
  [ -d "$d" ] && find "$d" -xdev -type f -printf 'file\\t%p\\t%i\\t%s\\n'
done
for f in /var/lib/xen/vtpm/* ${ARCHIVE}/*; do
  [ -f "$f" ] && printf 'sha\\t%s\\t%s\\n' "$f" "$(sha256sum < "$f" | cut -c1-64)"
done
for r in /var/lib/xen/pulumi-tvd/owners/*; do
  [ -f "$r" ] && printf 'record\\t%s\\t%s\\t%s\\n' "$(sed -n 1p "$r")" "$(sed -n 2p "$r")" "$(sed -n 3p "$r")"
done
find /var/lib/xen /etc/xen -xdev \\( -name '*.partial.*' -o -name '.claim.*' \\) -printf 'temp\\t%p\\n'
ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print "link\\t" $2 }'
for c in /etc/xen/*.cfg; do [ -f "$c" ] && printf 'cfg\\t%s\\t%s\\n' "$c" "$(base64 -w0 < "$c")"; done
for q in /var/lib/xen/images/*.qcow2; do
  [ -f "$q" ] && printf 'qcow\\t%s\\t%s\\n' "$q" "$(qemu-img info --output=json -U -- "$q" 2>/dev/null | base64 -w0)"
done
exit 0
`;

/** The host's state, read inside its namespaces (not over SSH: the transport is what is faulted). */
export async function hostState(h: LabHostRecord): Promise<HostState> {
  const r = await inHost(h, ["sh", "-c", SNAPSHOT]);
  if (r.code !== 0) throw new Error(`reading ${h.name}'s state: ${r.stderr}`);
  const s = {
    domains: [] as string[],
    files: new Map<string, { inode: string; size: number }>(),
    sha256: new Map<string, string>(),
    records: new Map<string, { owner: string; role: string }>(),
    temporary: [] as string[],
    links: [] as string[],
    configs: new Map<string, string[]>(),
    vtpmUuids: new Map<string, string>(),
    overlays: new Map<string, string | null>(),
  };
  for (const line of r.stdout.split("\n").filter(Boolean)) {
    const [tag, a, b, c] = line.split("\t");
    if (tag === "domain") s.domains.push(a);
    else if (tag === "file") s.files.set(a, { inode: b, size: Number(c) });
    else if (tag === "sha") s.sha256.set(a, b);
    else if (tag === "record") s.records.set(a, { owner: b, role: c });
    else if (tag === "temp") s.temporary.push(a);
    else if (tag === "link") s.links.push(a);
    else if (tag === "cfg") {
      const text = Buffer.from(b ?? "", "base64").toString("utf8");
      s.configs.set(a, disksOf(text));
      const uuid = /^\s*vtpm\s*=\s*\[[^\]]*\buuid=([0-9a-fA-F-]+)/m.exec(text)?.[1];
      if (uuid) s.vtpmUuids.set(a, uuid.toLowerCase());
    } else if (tag === "qcow") {
      const info = Buffer.from(b ?? "", "base64").toString("utf8");
      let backing: string | null = null;
      try {
        backing = (JSON.parse(info) as { "backing-filename"?: string })["backing-filename"] ?? "";
      } catch {
        backing = null;
      }
      s.overlays.set(a, backing);
    }
  }
  s.domains.sort();
  s.links.sort();
  return s;
}

/** The disks an xl config names: `file:<path>,...` (stub domains) and `target=<path>` (guests). */
function disksOf(config: string): string[] {
  const disk = /^\s*disk\s*=\s*\[([^\]]*)\]/m.exec(config)?.[1] ?? "";
  return [...disk.matchAll(/(?:file:|target=)([^,"]+)/g)].map((m) => m[1].trim());
}

/**
 * Writes 32 random bytes near the end of each key image not marked yet (past what swtpm keeps at
 * its start), standing for the keys it holds: a recreated image (zeros there) then differs in its
 * content hash, not only in its inode.
 */
export async function markImages(h: LabHostRecord, marked: Set<string>): Promise<void> {
  const script = `for p in /var/lib/xen/vtpm/*; do
  [ -f "$p" ] || continue
  case " $* " in *" $p "*) continue ;; esac
  head -c 32 /dev/urandom | dd of="$p" bs=1 seek=$(( $(stat -c %s -- "$p") - 65536 )) conv=notrunc status=none || exit 1
  echo "$p"
done`;
  const r = await inHost(h, ["sh", "-c", script, "mark", ...marked]);
  if (r.code !== 0) throw new Error(`marking images on ${h.name}: ${r.stderr}`);
  for (const p of r.stdout.split("\n").filter(Boolean)) marked.add(p);
}

/** One broken invariant, by figure. */
export interface Violation {
  readonly figure:
    "imagesLost" | "uuidsChanged" | "orphans" | "halfWrittenFiles" | "configsOnMissingDisks" | "staleRecords";
  readonly what: string;
}

export interface Expectations {
  /** Files and links that were there before any resource (the base image, lo, eth0). */
  readonly baseline: HostState;
  /** The declared size of each key image and seed, by path. */
  readonly sizes: ReadonlyMap<string, number>;
  /** The base image overlays are made on. */
  readonly baseImage: string;
}

/**
 * The invariants after a case, with `before` the state before its faulted operation and `between`
 * the state the fault left: every key image that was there is still there or in the archive, with
 * its inode and content; a vTPM config that was there (before, or written by the faulted
 * operation, its domain perhaps started with it) still gives the same UUID, the one its keys are
 * bound to; nothing exists that no record owns; no config names a missing disk; nothing is
 * half-written.
 */
export function violations(
  before: HostState,
  between: HostState,
  after: HostState,
  x: Expectations,
): Violation[] {
  const out: Violation[] = [];
  for (const earlier of [before, between])
    for (const [cfg, uuid] of earlier.vtpmUuids) {
      const now = after.vtpmUuids.get(cfg);
      if (now && now !== uuid)
        out.push({
          figure: "uuidsChanged",
          what: `${cfg} gave ${earlier === before ? "before the operation" : "after the fault"} uuid ${uuid}, now ${now}`,
        });
    }
  const recorded = (type: string, name: string) => after.records.has(`${type}:${name}`);
  for (const [p, f] of before.files) {
    if (!p.startsWith("/var/lib/xen/vtpm/")) continue;
    const same = (q: string) =>
      after.files.get(q)?.inode === f.inode && after.sha256.get(q) === before.sha256.get(p);
    const now = after.files.get(p);
    const archived = [...after.files.keys()].some((q) => q.startsWith(`${ARCHIVE}/`) && same(q));
    if (now && !same(p))
      out.push({
        figure: "imagesLost",
        what: `${p} replaced or altered (inode ${f.inode} -> ${now.inode}, size ${f.size} -> ${now.size})`,
      });
    else if (!now && !archived)
      out.push({ figure: "imagesLost", what: `${p} is gone and not in the archive` });
  }
  for (const d of after.domains)
    if (!recorded("domain", d)) out.push({ figure: "orphans", what: `domain ${d} has no owner` });
  for (const p of after.files.keys()) {
    if (x.baseline.files.has(p) || after.temporary.includes(p) || p.startsWith(`${ARCHIVE}/`)) continue;
    if (!recorded("file", p)) out.push({ figure: "orphans", what: `file ${p} has no owner` });
  }
  for (const l of after.links) {
    if (x.baseline.links.includes(l) || /^vif\d+\./.test(l)) continue;
    if (!recorded("bridge", l) && !recorded("link", l))
      out.push({ figure: "orphans", what: `link ${l} has no owner` });
  }
  for (const [cfg, disks] of after.configs)
    for (const d of disks)
      if (!after.files.has(d) && !x.baseline.files.has(d))
        out.push({ figure: "configsOnMissingDisks", what: `${cfg} names ${d}, which does not exist` });
  for (const t of after.temporary) out.push({ figure: "halfWrittenFiles", what: `${t} left behind` });
  for (const [p, f] of after.files) {
    const size = x.sizes.get(p);
    if (size !== undefined && f.size !== size)
      out.push({ figure: "halfWrittenFiles", what: `${p} has ${f.size} bytes, not ${size}` });
  }
  for (const [q, backing] of after.overlays)
    if (backing !== x.baseImage)
      out.push({ figure: "halfWrittenFiles", what: `${q} is no overlay on ${x.baseImage} (${backing})` });
  return out;
}

/**
 * What a case left once its resources were destroyed: anything beyond the baseline plus
 * `kept` (the fixtures), other than the archive and its records, is left over.
 */
export function leftovers(now: HostState, kept: HostState): Violation[] {
  const out: Violation[] = [];
  for (const d of now.domains)
    if (!kept.domains.includes(d)) out.push({ figure: "orphans", what: `domain ${d} left after destroy` });
  for (const p of now.files.keys())
    if (!kept.files.has(p) && !p.startsWith(`${ARCHIVE}/`) && !now.temporary.includes(p))
      out.push({ figure: "orphans", what: `file ${p} left after destroy` });
  for (const l of now.links)
    if (!kept.links.includes(l)) out.push({ figure: "orphans", what: `link ${l} left after destroy` });
  for (const [k, r] of now.records)
    if (!kept.records.has(k) && !r.role.startsWith("archived "))
      out.push({ figure: "staleRecords", what: `record ${k} (${r.owner}, ${r.role}) left after destroy` });
  return out;
}

/** Removes what a failed case left (so that the next starts from a known state): domains, files, links, records. */
export async function forceClean(h: LabHostRecord, now: HostState, kept: HostState): Promise<void> {
  const domains = now.domains.filter((d) => !kept.domains.includes(d));
  const files = [...now.files.keys()].filter((p) => !kept.files.has(p) && !p.startsWith(`${ARCHIVE}/`));
  const links = now.links.filter((l) => !kept.links.includes(l));
  const records = [...now.records.keys()].filter((k) => !kept.records.has(k));
  const script = `
for d in $DOMAINS; do /usr/local/sbin/xl destroy "$d" >/dev/null 2>&1; done
for l in $LINKS; do ip link del dev "$l" 2>/dev/null; done
for k in "$@"; do rm -f -- "/var/lib/xen/pulumi-tvd/owners/$(printf '%s' "$k" | sha256sum | cut -c1-40)"; done
rm -f -- $FILES
find /var/lib/xen /etc/xen -xdev \\( -name '*.partial.*' -o -name '.claim.*' \\) -delete
exit 0`;
  const env = `DOMAINS='${domains.join(" ")}' LINKS='${links.join(" ")}' FILES='${files.join(" ")}'`;
  const r = await inHost(h, ["sh", "-c", `${env}; ${script}`, "clean", ...records]);
  if (r.code !== 0) throw new Error(`cleaning ${h.name}: ${r.stderr}`);
}
