/**
 * The shell scripts pulumi-tvd runs on a dom0. Each is a constant: user values (paths, sizes)
 * arrive only as positional arguments ($1, $2...) through the quoting transport, and content
 * arrives on stdin. Each script is one SSH round trip.
 */

/** Exit code of a script that refused to overwrite something that exists (EEXIST). */
export const EXIT_EXISTS = 17;
/** Exit code of a script whose input file is missing (ENOENT). */
export const EXIT_MISSING = 2;

/**
 * $1 path, $2 size in MiB. Writes the image under a temporary name, then hard-links it into
 * place: `ln` never replaces an existing file, and a dd cut short (disk full, dropped
 * connection) leaves no half-written image at the final path, which `dd conv=excl` alone would.
 */
export const CREATE_RAW_IMAGE = `set -eu
p=$1; n=$2
mkdir -p -- "$(dirname -- "$p")"
if [ -e "$p" ]; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
tmp=$(mktemp -- "$p.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
dd if=/dev/zero of="$tmp" bs=1M count="$n" conv=fsync status=none
if ! ln -- "$tmp" "$p" 2>/dev/null; then echo "refusing to overwrite $p: it exists" >&2; exit ${EXIT_EXISTS}; fi
`;

/** $1 path, $2 octal mode; content on stdin. Replaces the file atomically (rename). */
export const WRITE_FILE_ATOMIC = `set -eu
p=$1; mode=$2
mkdir -p -- "$(dirname -- "$p")"
tmp=$(mktemp -- "$p.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod -- "$mode" "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$p"
trap - EXIT
`;

/** $1 base image, $2 its format, $3 overlay. Never replaces an existing overlay. */
export const CREATE_OVERLAY = `set -eu
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
 * Everything `read` needs about one domain and its artifacts, in one round trip.
 * $1 domain name, then role=path arguments: config=<xl.cfg>, image=<raw image>,
 * overlay=<qcow2>, checksum=<any file>. Prints `key<TAB>base64(value)` lines (see
 * parseInspection). sha256sum reads stdin so that a path with a backslash or newline cannot
 * change its output's shape.
 */
export const INSPECT = `set -u
emit() { printf '%s\\t%s\\n' "$1" "$(printf '%s' "$2" | base64 -w0)"; }
dom=$1; shift
out=$(xl list -l "$dom" 2>&1); emit xl-list-rc "$?"; emit xl-list "$out"
out=$(xl vtpm-list "$dom" 2>&1); emit vtpm-list "$out"
for a in "$@"; do
  role=\${a%%=*}; p=\${a#*=}
  if [ -e "$p" ]; then emit "size:$p" "$(stat -c %s -- "$p")"; else emit "missing:$p" ""; continue; fi
  case $role in
    config) emit "content:$p" "$(cat -- "$p")" ;;
    overlay) emit "qemu:$p" "$(qemu-img info --output=json -U -- "$p" 2>&1)" ;;
    checksum) emit "sha256:$p" "$(sha256sum < "$p" 2>/dev/null | cut -d' ' -f1)" ;;
  esac
done
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
 */
export const ARCHIVE_FILE = `set -eu
p=$1; dir=$2; ts=$3
[ -e "$p" ] || exit 0
mkdir -p -- "$dir"
dest="$dir/$(basename -- "$p").$ts"
if ! ln -- "$p" "$dest" 2>/dev/null; then echo "refusing to overwrite $dest: it exists" >&2; exit ${EXIT_EXISTS}; fi
rm -f -- "$p"
printf '%s\\n' "$dest"
`;
