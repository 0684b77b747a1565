/**
 * The shell scripts pulumi-tvd runs on a dom0. Each is a constant: user values (paths, sizes)
 * arrive only as positional arguments ($1, $2...) through the quoting transport, and content
 * arrives on stdin. Each script is one SSH round trip.
 */
import { HEADER_READ_BYTES } from "./qcow2";

/** Exit code of a script that refused to overwrite something that exists (EEXIST). */
export const EXIT_EXISTS = 17;
/** Exit code of a script whose input file is missing (ENOENT). */
export const EXIT_MISSING = 2;

/**
 * The second line of every script that makes a temporary file. With its client gone (a cut
 * connection) a script must not die of SIGPIPE at its next output, before its EXIT trap has
 * removed the temporary file: its writes fail instead, and it ends as it would have.
 */
export const IGNORE_SIGPIPE = "trap '' PIPE";

/**
 * $1 path, $2 size in MiB. Writes the image under a temporary name, then hard-links it into
 * place: `ln` never replaces an existing file, and a dd cut short (disk full, dropped
 * connection) leaves no half-written image at the final path, which `dd conv=excl` alone would.
 */
export const CREATE_RAW_IMAGE = `set -eu
${IGNORE_SIGPIPE}
p=$1; n=$2
mkdir -p -- "$(dirname -- "$p")"
if [ -e "$p" ]; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
tmp=$(mktemp -- "$p.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
dd if=/dev/zero of="$tmp" bs=1M count="$n" conv=fsync status=none
if ! ln -- "$tmp" "$p" 2>/dev/null; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
`;

/** Exit code of a script whose input arrived incomplete or altered (a cut connection). */
export const EXIT_INCOMPLETE = 74;

/**
 * $1 path, $2 octal mode, $3 the content's size in bytes, $4 its sha256; content on stdin.
 * Replaces the file atomically (rename), and only with exactly the content sent: stdin cut short
 * by a dropped connection ends like a complete one for `cat`, so the temporary file is checked
 * against the size and hash first, and otherwise removed with the old file left as it was.
 */
export const WRITE_FILE_ATOMIC = `set -eu
${IGNORE_SIGPIPE}
p=$1; mode=$2; size=$3; sum=$4
mkdir -p -- "$(dirname -- "$p")"
tmp=$(mktemp -- "$p.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
got=$(stat -c %s -- "$tmp")
if [ "$got" != "$size" ] || [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != "$sum" ]; then
  echo "refusing to replace $p: received $got of $size bytes, or other bytes than sent (connection cut?); the old file is kept" >&2
  exit ${EXIT_INCOMPLETE}
fi
chmod -- "$mode" "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$p"
trap - EXIT
`;

/** $1 base image, $2 its format, $3 overlay. Never replaces an existing overlay. */
export const CREATE_OVERLAY = `set -eu
${IGNORE_SIGPIPE}
base=$1; fmt=$2; p=$3
if [ ! -f "$base" ]; then echo "base image $base does not exist" >&2; exit ${EXIT_MISSING}; fi
if [ -e "$p" ]; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
mkdir -p -- "$(dirname -- "$p")"
tmp=$(mktemp -- "$p.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
qemu-img create -q -f qcow2 -F "$fmt" -b "$base" "$tmp"
if ! ln -- "$tmp" "$p" 2>/dev/null; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
`;

/** Per-artifact locks, on the dom0 itself, so two stacks or two runs cannot interleave. */
export const LOCK_DIR = "/var/lib/xen/pulumi-tvd/locks";

/**
 * Everything `read` needs about one domain's devices and its artifacts, in one round trip (or a
 * part of one); the domain itself, with its vtpm devices and who uses it as a backend, is found in
 * the host's `xl list -l`, which Dom0.inspect reads once for every inspection of a batch. $1
 * domain name (shown in the dom0's process list, not read), then role=path arguments:
 * config=<xl.cfg>, image=<raw image>, overlay=<qcow2>, checksum=<any file>. Prints one
 * `key<TAB>value` line per value (see parseInspection).
 *
 * A refresh runs this once per resource, and each process costs the dom0 a fork and an exec, so
 * it starts no `xl` (each one initialises libxl and, on the lab, waits for the host's one
 * emulator lock), one `stat` for every file's size, and for each other value the one process of
 * the tool that makes it. A config's text, which may hold anything, goes as base64, and so do an
 * overlay's first bytes, whose qcow2 header parseQcow2Header reads (`head` and `base64` start in
 * a few milliseconds where `qemu-img info` took 30 ms of the dom0's CPU). sha256sum reads stdin
 * so that a path with a backslash or newline cannot change its output's shape.
 */
export const INSPECT = `set -u
${IGNORE_SIGPIPE}
shift; n=$#
for a in "$@"; do
  role=\${a%%=*}; p=\${a#*=}
  if [ ! -e "$p" ]; then printf 'missing:%s\\t\\n' "$p"; continue; fi
  set -- "$@" "$p"
  case $role in
    config) printf 'content:%s\\t' "$p"; base64 -w0 < "$p"; echo ;;
    overlay) printf 'qcow2:%s\\t' "$p"; head -c ${HEADER_READ_BYTES} -- "$p" 2>/dev/null | base64 -w0; echo ;;
    checksum) v=$(sha256sum < "$p" 2>/dev/null); printf 'sha256:%s\\t%s\\n' "$p" "\${v%% *}" ;;
  esac
done
shift "$n"
[ "$#" -eq 0 ] || stat --printf 'size:%n\\t%s\\n' -- "$@" 2>/dev/null
exit 0
`;

/** Exit code of WAIT_FOR_CONSOLE when the text did not appear in time (as timeout(1)). */
export const EXIT_TIMEOUT = 124;

/**
 * $1 console log, $2 text, $3 seconds. Waits on the dom0 for a domain's console to print the
 * text (a manager's "Waiting for commands") in its current boot: console logs are appended
 * across restarts, so only lines after the last mini-os boot banner count. On timeout prints
 * the log's last lines.
 */
export const WAIT_FOR_CONSOLE = `set -u
log=$1; text=$2; end=$(( $(date +%s) + $3 ))
printed() { awk -v t="$text" '/Xen Minimal OS/ { seen = 0 } index($0, t) { seen = 1 } END { exit !seen }' "$log"; }
while :; do
  if [ -f "$log" ] && printed; then exit 0; fi
  if [ "$(date +%s)" -ge "$end" ]; then tail -n 5 -- "$log" >&2 2>/dev/null; exit ${EXIT_TIMEOUT}; fi
  sleep 0.2
done
`;

/**
 * $1 a console log. Makes it a 0600 file before its domain starts, keeping what it holds:
 * xenconsoled appends to an existing log but creates a missing one 0644, and a vTPM manager's
 * console carries its owner_auth= and srk_auth= (Mini-OS prints its command line at boot).
 */
export const PRIVATE_CONSOLE_LOG = `set -eu
mkdir -p -- "$(dirname -- "$1")"
(umask 077 && : >> "$1")
chmod 0600 -- "$1"
`;

/** Where xenconsoled logs each domain's console (xenconsoled --log=guest). */
export function consoleLogPath(domain: string): string {
  return `/var/log/xen/console/guest-${domain}.log`;
}

/** Where deleted vTPM images go under the archive deletion policy. */
export const ARCHIVE_DIR = "/var/lib/xen/pulumi-tvd/archive";

/**
 * $1 image, $2 archive dir, $3 timestamp. Moves the image into the archive as
 * <name>.<timestamp>, never over an existing file; prints the archived path. A missing image
 * is not an error (delete is idempotent): nothing is printed.
 *
 * A hard link is the move when the archive is on the image's filesystem. When it is not (`ln`
 * fails with EXDEV), the image is copied into a temporary file in the archive, synced and
 * compared with the source, then linked to its final name (again never over a file); the source
 * goes only once its archived copy is known good and on disk.
 */
export const ARCHIVE_FILE = `set -eu
${IGNORE_SIGPIPE}
p=$1; dir=$2; ts=$3
[ -e "$p" ] || exit 0
mkdir -p -- "$dir"
dest="$dir/$(basename -- "$p").$ts"
refuse() { echo "refusing to overwrite $dest: it exists" >&2; exit ${EXIT_EXISTS}; }
[ ! -e "$dest" ] || refuse
if ! ln -- "$p" "$dest" 2>/dev/null; then
  [ ! -e "$dest" ] || refuse
  tmp=$(mktemp -- "$dest.partial.XXXXXX")
  trap 'rm -f -- "$tmp"' EXIT
  cp --sparse=always -- "$p" "$tmp"
  sync -- "$tmp"
  if ! cmp -s -- "$p" "$tmp"; then echo "the copy of $p in $dir differs from it; $p is kept" >&2; exit 1; fi
  ln -- "$tmp" "$dest" 2>/dev/null || refuse
  sync -- "$dir"
fi
rm -f -- "$p"
printf '%s\\n' "$dest"
`;

/** Exit code of a script that refused because something still uses what it would remove (EBUSY). */
export const EXIT_BUSY = 16;

/**
 * $1 domain. Destroys it unless a domain uses it as its vtpm backend (a manager's vTPMs, a
 * vTPM's guest): then it exits EXIT_BUSY and prints `xl list -l`, having destroyed nothing. Run
 * under the domain's lock, which every `xl create` of a domain with this backend holds too, so that no
 * user starts between the check and the destroy. A domain already gone is fine.
 */
export const DESTROY_UNLESS_USED = `set -u
d=$1
list=$(xl list -l) || exit 1
re=$(printf '"backend_domname":[[:space:]]*"%s"' "$d" | sed 's/[.]/[.]/g')
if printf '%s\\n' "$list" | grep -q -E -e "$re"; then printf '%s\\n' "$list"; exit ${EXIT_BUSY}; fi
out=$(xl destroy "$d" 2>&1) && exit 0
case $out in *"is an invalid domain identifier"*) exit 0 ;; esac
printf '%s\\n' "$out" >&2
exit 1
`;

/**
 * Shell functions of TVD_NET_CREATE. `sync_peers <vxlan> <peer>...` makes the
 * vxlan's head-end replication list (all-zero fdb entries) exactly the given peers; it records
 * what it appended in $added so that a failing create can take it back.
 */
const TVD_NET_FUNCTIONS = `added=""
peers_of() { bridge fdb show dev "$1" 2>/dev/null | awk '$1 == "00:00:00:00:00:00" && $2 == "dst" { print $3 }'; }
sync_peers() {
  vx=$1; shift
  for old in $(peers_of "$vx"); do
    keep=0; for p in "$@"; do [ "$p" = "$old" ] && keep=1; done
    [ "$keep" = 1 ] || bridge fdb del 00:00:00:00:00:00 dev "$vx" dst "$old" || return 1
  done
  have=$(peers_of "$vx")
  for p in "$@"; do
    case " $(echo $have) " in *" $p "*) continue ;; esac
    bridge fdb append 00:00:00:00:00:00 dev "$vx" dst "$p" || return 1
    added="$added $p"
  done
}
`;

/**
 * $1 bridge, $2 vni, $3 local IPv4, $4 UDP port, $5 MTU, then the peers' IPv4s. Makes the TVD's
 * bridge and its VXLAN vx<vni> (head-end replication to every peer, no learning: the peer list
 * is the whole truth), enslaves the VXLAN and brings both up. Idempotent: what exists and
 * matches is kept; a device of that name that does not match is refused, never changed. All or
 * nothing: on failure it removes the devices and fdb entries it made.
 */
export const TVD_NET_CREATE = `set -u
br=$1; vni=$2; local=$3; port=$4; mtu=$5; shift 5
vx=vx$vni
${TVD_NET_FUNCTIONS}made=""
fail() {
  echo "$*" >&2
  for p in $added; do bridge fdb del 00:00:00:00:00:00 dev "$vx" dst "$p" 2>/dev/null; done
  for l in $made; do ip link del dev "$l" 2>/dev/null; done
  exit 1
}
[ -n "$(ip -o -4 addr show to "$local/32")" ] || fail "$local is not an address of this host (localIp must be its underlay address)"
if ip link show dev "$br" >/dev/null 2>&1; then
  [ -n "$(ip -o link show dev "$br" type bridge)" ] || fail "$br exists on this host and is not a bridge"
else
  ip link add name "$br" type bridge || fail "cannot create bridge $br"
  made="$br"
fi
if ip link show dev "$vx" >/dev/null 2>&1; then
  d=" $(ip -o -d link show dev "$vx" | tr '\\\\' ' ') "
  case $d in *" vxlan id $vni local $local "*" dstport $port "*) ;; *)
    fail "$vx exists on this host with other settings (another TVD on VNI $vni?):$(echo "$d" | grep -o ' vxlan id .* dstport [0-9]*')" ;;
  esac
  case $d in *" master "*) case $d in *" master $br "*) ;; *) fail "$vx is enslaved to another bridge" ;; esac ;; esac
else
  ip link add "$vx" type vxlan id "$vni" local "$local" dstport "$port" nolearning || fail "cannot create $vx"
  made="$vx $made"
fi
ip link set dev "$vx" mtu "$mtu" || fail "cannot set MTU $mtu on $vx"
ip link set dev "$br" mtu "$mtu" || fail "cannot set MTU $mtu on $br"
sync_peers "$vx" "$@" || fail "cannot set $vx's peers"
ip link set dev "$vx" master "$br" || fail "cannot add $vx to $br"
ip link set dev "$vx" up && ip link set dev "$br" up || fail "cannot bring $br up"
`;

/**
 * $1 bridge, $2 vxlan. Everything read needs: every link (`ip -j -d link show`: the bridge, the
 * VXLAN's id, local address, port and MTU, and which ports the bridge has) and the VXLAN's fdb.
 */
export const TVD_NET_READ = `set -u
emit() { printf '%s\\t%s\\n' "$1" "$(printf '%s' "$2" | base64 -w0)"; }
emit links "$(ip -j -d link show)"
emit fdb "$(bridge -j fdb show dev "$2" 2>/dev/null)"
`;

/**
 * $1 bridge, $2 vxlan, $3 1 to remove the bridge, $4 1 to remove the VXLAN (only what the network
 * owns goes). The bridge is not removed while it has ports other than the VXLAN: then it exits
 * ${EXIT_BUSY} and prints each port, with the domain of a vif<domid>.<devid>, having removed
 * nothing. Devices already gone are fine (delete is idempotent).
 */
export const TVD_NET_DELETE = `set -u
br=$1; vx=$2; del_br=$3; del_vx=$4
busy=0
[ "$del_br" = 1 ] && for l in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
  [ "$l" = "$vx" ] && continue
  busy=1
  case $l in
    vif*.*) id=\${l#vif}; id=\${id%%.*}; printf '%s %s\\n' "$l" "$(xl domname "$id" 2>/dev/null || echo '?')" ;;
    *) printf '%s -\\n' "$l" ;;
  esac
done
[ "$busy" = 0 ] || exit ${EXIT_BUSY}
if [ "$del_vx" = 1 ] && ip link show dev "$vx" >/dev/null 2>&1; then ip link del dev "$vx" || exit 1; fi
if [ "$del_br" = 1 ] && [ -n "$(ip -o link show dev "$br" type bridge 2>/dev/null)" ]; then ip link del dev "$br" || exit 1; fi
exit 0
`;

/** Exit code of AGENT_EXCHANGE when the member's domain is not running. */
export const EXIT_NOT_RUNNING = 3;

/**
 * $1 domain, $2 node to write, $3 node to wait for, $4 token the answer must carry, $5 seconds;
 * the value to write on stdin. One exchange with a member's agent (agent/PROTOCOL.md) through
 * the member's own xenstore data path: writes /local/domain/<domid>/data/tvd/$2, then waits on
 * the dom0 (one round trip however long the agent takes) until .../$3 holds the token as a JSON
 * string, and prints it. On timeout prints what the node held, if anything.
 */
export const AGENT_EXCHANGE = `set -u
id=$(xl domid "$1" 2>/dev/null) || { echo "domain $1 is not running" >&2; exit ${EXIT_NOT_RUNNING}; }
base=/local/domain/$id/data/tvd
value=$(cat)
xenstore-write "$base/$2" "$value" || exit 1
end=$(( $(date +%s) + $5 ))
while :; do
  got=$(xenstore-read "$base/$3" 2>/dev/null) || got=
  case $got in *"\\"$4\\""*) printf '%s\\n' "$got"; exit 0 ;; esac
  if [ "$(date +%s)" -ge "$end" ]; then printf '%s' "$got" >&2; exit ${EXIT_TIMEOUT}; fi
  sleep 0.2
done
`;

/**
 * The reads one host was asked for at once, as one round trip (see readBatch.ts). $1 how many
 * reads run at once. Stdin's first line is the batch's frame mark (random, made for this batch
 * and nowhere else: not in any argv a process list shows); then one `read_one <index> <argv>`
 * line per read, each argv quoted by the transport's one quoting function exactly as a lone
 * command's line would be, run by this shell as sshd runs a lone command.
 *
 * Each read writes its own two files, nothing interleaved: its frame's head and its stdout, then
 * the mark, its stderr and its exit code. The read's command is the background job itself (one
 * process a read: `wait <pid>` gives its exit code), and one `cat` prints every frame in order at
 * the end. Outputs go out as they are, trailing newlines kept: only the mark frames them.
 *
 * A read that is a script (`sh -c <script> <name> <args>`, every INSPECT) runs in a forked copy of
 * this shell instead of a new `sh`: the same script, arguments and exit code, none of the batch's
 * variables or functions and the options a fresh shell has, and no exec of a shell per read (it
 * was a refresh's most frequent process). Only `$0` and `$$` are the batch's; no read uses them.
 */
export const READ_BATCH = `set -u
${IGNORE_SIGPIPE}
d=$(mktemp -d) || exit 1
trap 'rm -rf -- "$d"' EXIT
max=$1; n=0; running=""
IFS= read -r mark || exit 1
reap() {
  for job in $running; do
    wait "\${job#*:}"
    printf '\\n%s\\t%s\\trc\\t%s\\n' "$mark" "\${job%:*}" "$?" >>"$d/\${job%:*}.err"
  done
  running=""
}
read_one() {
  i=$1; shift
  printf '%s\\t%s\\tout\\n' "$mark" "$i" >"$d/$i.out"
  printf '\\n%s\\t%s\\terr\\n' "$mark" "$i" >"$d/$i.err"
  if [ "$#" -ge 4 ] && [ "$1" = sh ] && [ "$2" = -c ]; then
    (script=$3; shift 4; unset d max n running mark i job; unset -f reap read_one; set +u
      eval "unset script; $script") >>"$d/$i.out" 2>>"$d/$i.err" </dev/null &
  else
    "$@" >>"$d/$i.out" 2>>"$d/$i.err" </dev/null &
  fi
  running="$running $i:$!"
  n=$((n + 1))
  [ $((n % max)) -ne 0 ] || reap
}
eval "$(cat)"
reap
i=0; set --
while [ "$i" -lt "$n" ]; do set -- "$@" "$d/$i.out" "$d/$i.err"; i=$((i + 1)); done
[ "$#" -eq 0 ] || cat -- "$@"
`;
