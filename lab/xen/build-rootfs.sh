#!/usr/bin/env bash
# Builds (or reuses) the root filesystem of a lab Xen 4.17 dom0, only from Debian packages.
#
#   bash lab/xen/build-rootfs.sh            # prints the build dir on stdout (last line)
#
# Output, in ${PULUMI_TVD_CACHE:-~/.cache/pulumi-tvd}/xen-lab/<recipe-hash>/:
#   xen          the hypervisor ELF (gunzipped /boot/xen-4.17-amd64.gz)
#   vmlinuz      dom0 kernel; initrd.img  its initramfs
#   base.raw     ext4 root disk (sparse), made with mkfs.ext4 -d (no loop mounts)
#   recipe       what the hash covers; done  the stamp of a finished build
# Two stages, each cached: the debootstrap tree (keyed by the package list and suite, under
# xen-lab/bootstrap/<hash>/) and the configured build (keyed by this script, packages.txt, the
# debootstrap key and the bytes of agent/bin/tvd-agent, which the guests' base image carries). A finished build is reused as is; a recipe change builds a new one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PULUMI_TVD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tvd}/xen-lab"
suite=bookworm
mirror="${TVD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
disk_size="${TVD_XEN_DISK_SIZE:-3G}"
pkgs="$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages.txt" | tr -d ' ' | sort | paste -sd, -)"

log() { echo "build-rootfs: $*" >&2; }

[[ $EUID -eq 0 ]] || {
  log "must run as root (debootstrap, chroot)"
  exit 1
}

# Host tools, from Debian, only when missing.
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v cpio >/dev/null || need+=(cpio)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if ((${#need[@]})); then
  log "installing host tools: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

# The member agent that every guest's base image runs (agent/build makes it; scripts/setup runs
# that). Its bytes are part of the recipe: a rebuilt agent makes a new image.
agent_bin="${TVD_AGENT_BIN:-$here/../../agent/bin/tvd-agent}"
[[ -f "$agent_bin" ]] || {
  log "no member agent at $agent_bin: run bash agent/build (scripts/setup does)"
  exit 1
}
agent_sha="$(sha256sum <"$agent_bin" | cut -c1-64)"

boot_key="$(printf '%s\n' "$suite" "$mirror" "$pkgs" "variant=minbase" | sha256sum | cut -c1-16)"
recipe_key="$(cat "$here/build-rootfs.sh" "$here/packages.txt" <(echo "$boot_key $disk_size agent=$agent_sha") | sha256sum | cut -c1-16)"
boot_dir="$cache/bootstrap/$boot_key"
out="$cache/$recipe_key"

if [[ -f "$out/done" ]]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ -f "$out/done" ]]; then
  echo "$out"
  exit 0
fi

# ---- stage 1: debootstrap ----------------------------------------------------------------
if [[ ! -f "$boot_dir/done" ]]; then
  log "debootstrap $suite ($pkgs) -> $boot_dir"
  rm -rf "$boot_dir"
  mkdir -p "$boot_dir"
  t0=$SECONDS
  debootstrap --variant=minbase --include="$pkgs" "$suite" "$boot_dir/rootfs" "$mirror" >"$boot_dir/debootstrap.log" 2>&1 || {
    tail -n 30 "$boot_dir/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$boot_dir/rootfs/var/cache/apt/archives/"*.deb
  echo "$((SECONDS - t0))" >"$boot_dir/seconds"
  touch "$boot_dir/done"
fi

# ---- stage 2: configure a copy -------------------------------------------------------------
log "configuring -> $out"
rm -rf "$out"
mkdir -p "$out"
t0=$SECONDS
cp -a "$boot_dir/rootfs" "$out/rootfs"
r="$out/rootfs"

# No baked-in secrets: per-host keys come from the seed disk at boot (see tvd-seed below).
rm -f "$r"/etc/ssh/ssh_host_*
echo "tvd-dom0" >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
printf '/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' >"$r/etc/fstab"
sed -i "s|^root:[^:]*:|root:*:|" "$r/etc/shadow" # locked: key-only login

cat >"$r/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

# QEMU user networking: 10.0.2.15 by DHCP; the host's loopback port is forwarded to :22.
auto eth0
iface eth0 inet dhcp
EOF

mkdir -p "$r/etc/ssh/sshd_config.d"
cat >"$r/etc/ssh/sshd_config.d/tvd-lab.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 10
MaxStartups 100:30:200
EOF

# Per-host seed: a small ext4 disk (/dev/vdb, label tvd-seed) with the host key, root's
# authorized_keys and the hostname, made on the lab machine with mkfs.ext4 -d.
cat >"$r/usr/local/sbin/tvd-seed" <<'EOF'
#!/bin/sh
set -e
dev=/dev/vdb
for i in $(seq 1 50); do [ -b "$dev" ] && break; sleep 0.2; done
mkdir -p /run/tvd-seed
mount -o ro "$dev" /run/tvd-seed
install -m 600 /run/tvd-seed/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 /run/tvd-seed/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
install -d -m 700 /root/.ssh
install -m 600 /run/tvd-seed/authorized_keys /root/.ssh/authorized_keys
if [ -s /run/tvd-seed/hostname ]; then
  h="$(cat /run/tvd-seed/hostname)"
  echo "$h" >/etc/hostname
  hostname "$h"
  printf '127.0.1.1\t%s\n' "$h" >>/etc/hosts
fi
umount /run/tvd-seed
EOF
chmod 755 "$r/usr/local/sbin/tvd-seed"
cat >"$r/etc/systemd/system/tvd-seed.service" <<'EOF'
[Unit]
Description=pulumi-tvd lab: per-host SSH keys and hostname from the seed disk
DefaultDependencies=no
After=local-fs.target systemd-udevd.service
Before=ssh.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/tvd-seed

[Install]
WantedBy=multi-user.target
EOF

# No vtpm backend driver exists in Debian: answer libxl's xenbus handshake for the vtpm devices
# of stub-domain stand-ins by moving each backend from Initialising (1) to InitWait (2), and from Closing (5) to Closed (6)
# and then away, when libxl removes the device (xl destroy, vtpm-detach), as a backend would.
cat >"$r/usr/local/sbin/tvd-vtpm-backend" <<'EOF'
#!/bin/bash
# /local/domain/<be>/backend/vtpm/<fe>/<dev>/state: 1 -> 2 (InitWait), 5 -> 6 (Closed), then the
# directory goes, for backends that are stand-in stub domains.
# Event-driven: one xenstore-watch for the whole run, each burst of changes drained, then one
# scan; a change during a scan is still queued in the pipe, so none is missed. libxl waits only
# 10 s for a backend, and a TCG dom0 under load is slow, so a scan costs one process per domain.
declare -A stub closing

# Only a vTPM stub domain runs a vtpm backend: any other domain named as backend= stays silent,
# as a real one would, and libxl gives up after 10 s. Cached per domid while the domain lives,
# once libxl has written the domain's kernel (a domain being built has none yet).
is_stub() {
  local kernel
  if [[ -z ${stub[$1]+x} ]]; then
    kernel=$(xenstore-read "$(xenstore-read "/local/domain/$1/vm" 2>/dev/null)/image/kernel" 2>/dev/null)
    case $kernel in
    */vtpmmgr-stubdom.gz | */vtpm-stubdom.gz) stub[$1]=1 ;;
    "") return 1 ;;
    *) stub[$1]=0 ;;
    esac
  fi
  [[ ${stub[$1]} == 1 ]]
}

scan() {
  local be line path value dev live=" "
  for be in $(xenstore-list /local/domain 2>/dev/null); do
    live+="$be "
    is_stub "$be" || continue
    local -A online=() state=()
    while IFS= read -r line; do
      path=${line%% = *} value=${line#* = \"}
      value=${value%\"}
      case $path in
      */backend/vtpm/*/*/online) online[${path%/online}]=$value ;;
      */backend/vtpm/*/*/state) state[${path%/state}]=$value ;;
      esac
    done < <(xenstore-ls -f "/local/domain/$be/backend/vtpm" 2>/dev/null)
    for dev in "${!state[@]}"; do
      case ${state[$dev]} in
      1) xenstore-write "$dev/state" 2 && echo "$dev: state 1 -> 2" ;;
      5) xenstore-write "$dev/state" 6 && echo "$dev: state 5 -> 6" && closing[$dev]=$SECONDS ;;
      6)
        # A backend in a domain other than dom0 removes its own directory once closed; libxl
        # waits for that, after it has seen state 6 (so not at once: a second or two later).
        [[ ${online[$dev]} == 0 ]] || continue
        [[ -n ${closing[$dev]} ]] || closing[$dev]=$SECONDS
        if ((SECONDS - closing[$dev] >= 2)); then
          xenstore-rm "$dev" && echo "$dev: removed"
          [[ -n $(xenstore-list "${dev%/*}" 2>/dev/null) ]] || xenstore-rm "${dev%/*}" 2>/dev/null
          unset "closing[$dev]"
        fi
        ;;
      esac
    done
  done
  for be in "${!stub[@]}"; do [[ $live == *" $be "* ]] || unset "stub[$be]"; done
  for dev in "${!closing[@]}"; do [[ -n $(xenstore-read "$dev/state" 2>/dev/null) ]] || unset "closing[$dev]"; done
}

exec {watch}< <(xenstore-watch /local/domain 2>/dev/null)
while :; do
  # Idle, wait for a change; with a closed device pending removal, look again every second.
  timeout=3600
  ((${#closing[@]})) && timeout=1
  if read -r -t "$timeout" -u "$watch" _; then
    while read -r -t 0.05 -u "$watch" _; do :; done
  elif (($? <= 128)); then
    exit 1 # the watch ended; systemd starts the service again
  fi
  scan
done
EOF
chmod 755 "$r/usr/local/sbin/tvd-vtpm-backend"
cat >"$r/etc/systemd/system/tvd-vtpm-backend.service" <<'EOF'
[Unit]
Description=pulumi-tvd lab: stand-in vtpm backend handshake (xenstore state 1 -> 2, 5 -> 6)
After=xen.service
Wants=xen.service

[Service]
ExecStart=/usr/local/sbin/tvd-vtpm-backend
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
EOF

# Debian's "xencommons" is the sysv script /etc/init.d/xen (xenstored, xenconsoled, xenfs),
# run by systemd as xen.service. Guest consoles go to /var/log/xen/console/guest-<name>.log.
grep -q '^XENCONSOLED_ARGS=' "$r/etc/default/xen" 2>/dev/null ||
  echo 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"' >>"$r/etc/default/xen"
mkdir -p "$r/var/log/xen/console"
[[ -x "$r/etc/init.d/xen" ]] || {
  log "no /etc/init.d/xen in the rootfs"
  exit 1
}

chroot "$r" systemctl enable ssh.service tvd-seed.service tvd-vtpm-backend.service >&2
# Nothing waits for a network that never comes (ifupdown-wait-online would hold boot).
chroot "$r" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >&2 2>/dev/null || true

# ---- stand-in vTPM stub domains ------------------------------------------------------------
# Debian ships no vtpmmgr/vtpm stub domains. The stand-ins are Debian's own kernel plus a tiny
# busybox initramfs whose init prints what the real stub domain prints, then idles (state b).
# xl needs kernel= <stand-in>.gz and ramdisk= <stand-in>-initrd.gz, and memory >= 96.
kver="$(basename "$(ls -1 "$r"/boot/vmlinuz-* | sort -V | tail -n1)" | sed 's/^vmlinuz-//')"
stub="$r/usr/lib/xen/boot"
mkdir -p "$stub"
# A busybox initramfs: <dir with /init and whatever else> -> <file>.
pack_initrd() { # <dir> <file>
  mkdir -p "$1"/{bin,dev,proc,sys}
  cp "$r/bin/busybox" "$1/bin/busybox"
  mknod -m 600 "$1/dev/console" c 5 1
  mknod -m 666 "$1/dev/null" c 1 3
  chmod 755 "$1/init"
  (cd "$1" && find . | cpio -o -H newc --quiet | gzip -9) >"$2"
  rm -rf "$1"
}
mkinitrd_stub() { # <role> <file>
  local role="$1" file="$2" d
  d="$(mktemp -d)"
  {
    echo '#!/bin/busybox sh'
    echo '/bin/busybox mount -t proc proc /proc'
    echo '/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null'
    echo 'echo 1 >/proc/sys/kernel/printk'
    # mini-os's boot banner first, as the real stub domains print it: console logs are appended
    # across restarts, and the provider counts only what follows the last banner.
    echo 'echo "Xen Minimal OS (pv)!"'
    if [[ $role == mgr ]]; then
      echo 'echo "INFO[VTPM]: Starting vTPM manager domain (pulumi-tvd lab stand-in: Linux + busybox)"'
      echo 'echo "INFO[VTPM]: Waiting for commands from vTPM'"'"'s:"'
    else
      echo 'echo "Info: pulumi-tvd lab stand-in vTPM (Linux + busybox)"'
      echo 'echo "Info: Waiting for frontend domain to connect.."'
    fi
    echo 'while :; do /bin/busybox sleep 3600; done'
  } >"$d/init"
  pack_initrd "$d" "$file"
}
cp "$r/boot/vmlinuz-$kver" "$stub/vtpmmgr-stubdom.gz"
cp "$r/boot/vmlinuz-$kver" "$stub/vtpm-stubdom.gz"
mkinitrd_stub mgr "$stub/vtpmmgr-stubdom-initrd.gz"
mkinitrd_stub vtpm "$stub/vtpm-stubdom-initrd.gz"

# ---- guests: a real PV Linux whose root is the guest's qcow2 overlay -----------------------
# At the paths examples/single-host names: the kernel line boots Debian's kernel from dom0
# (/usr/lib/xen/boot/vmlinuz) with a small initramfs (/usr/lib/xen/boot/initrd.img) that loads
# xen-blkfront and ext4, mounts root= (the overlay, xvda, served by dom0's qdisk backend) and
# switch_roots into it. The base image the overlays are backed by,
# /var/lib/xen/images/debian-base.raw, is a 32 MiB ext4 holding busybox (from Debian's
# busybox-static) and an init that remounts / read-write, counts its boots on the disk, starts the
# member agent (tvd-agent, agent/PROTOCOL.md) on the guest's own xenbus, and idles.
guest_modules=(lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4 drivers/block/xen-blkfront)
d="$(mktemp -d)"
mkdir -p "$d/newroot" "$d/lib/modules"
for m in "${guest_modules[@]}"; do cp "$r/lib/modules/$kver/kernel/$m.ko" "$d/lib/modules/"; done
cat >"$d/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
echo 1 >/proc/sys/kernel/printk
for m in crc16 mbcache jbd2 crc32c_generic ext4 xen-blkfront; do /bin/busybox insmod /lib/modules/$m.ko; done
root=/dev/xvda
for a in $(/bin/busybox cat /proc/cmdline); do case "$a" in root=*) root="${a#root=}" ;; esac; done
i=0
while [ ! -b "$root" ] && [ $i -lt 60 ]; do /bin/busybox sleep 0.5; i=$((i + 1)); done
if /bin/busybox mount -t ext4 -o ro "$root" /newroot; then
  /bin/busybox umount /sys /proc
  /bin/busybox mount --move /dev /newroot/dev
  exec /bin/busybox switch_root /newroot /sbin/init
fi
echo "tvd-guest: cannot mount root $root"
while :; do /bin/busybox sleep 3600; done
INIT
pack_initrd "$d" "$stub/initrd.img"
cp "$r/boot/vmlinuz-$kver" "$stub/vmlinuz"
t="$(mktemp -d)"
mkdir -p "$t"/{bin,sbin,dev,proc,sys,tmp,etc/tvd,usr/local/sbin,var/lib/tvd-guest}
cp "$r/bin/busybox" "$t/bin/busybox"
install -m 755 "$agent_bin" "$t/usr/local/sbin/tvd-agent"
# The agent's seed config, as cloud-init writes it from a member's seed (agent/PROTOCOL.md). No
# TPM stands behind the lab's stand-in vTPM (the guest loads no xen-tpmfront, and the stand-in
# stub domain speaks no TPM), so these auth values are never used: placeholders, not secrets.
# The agent's reports here carry an `error` and no `tpm`; what it shows on real Xen is the
# xenstore half of the protocol. The TPM half is tested on the local lab (swtpm behind its vTPMs).
umask 077
printf '{"version":1,"ownerAuth":"%s","srkAuth":"%s"}\n' \
  "$(printf '0%.0s' $(seq 64))" "$(printf '1%.0s' $(seq 64))" >"$t/etc/tvd/agent.json"
umask 022
chmod 600 "$t/etc/tvd/agent.json"
cat >"$t/sbin/init" <<'INIT'
#!/bin/busybox sh
# /dev is the initramfs's devtmpfs, moved here: /dev/xen/xenbus is the guest's xenstore connection.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -o remount,rw /
n=$(( $(/bin/busybox cat /var/lib/tvd-guest/boots 2>/dev/null || echo 0) + 1 ))
echo "$n" >/var/lib/tvd-guest/boots
/bin/busybox sync
# The member agent on the guest's own xenstore path /local/domain/<domid>/data/tvd, its output on
# this console. No TPM is reachable here, so each report has `error` and no `tpm`; it keeps
# answering dom0's requests.
[ -c /dev/xen/xenbus ] || echo "tvd-guest: no /dev/xen/xenbus"
/usr/local/sbin/tvd-agent run --tpm /dev/tpm0 --xenbus /dev/xen/xenbus \
  --config /etc/tvd/agent.json --state /var/lib/tvd-agent &
echo "tvd-guest: up, root /dev/xvda read-write, boot $n of this disk"
# What real xenstored lets this guest write, by hand (busybox has no xenstore client): one
# request in the wire format (xs_wire.h: type, req_id, tx_id, len, little-endian uint32, then
# the payload) on /dev/xen/xenbus, and the reply's payload (OK, or an errno name).
xs() { # <type> <path> [<value>]
  if [ $# -eq 3 ]; then l=$((${#2} + 1 + ${#3})); else l=$((${#2} + 1)); fi
  {
    printf "\\$(printf %03o "$1")"'\000\000\000\001\000\000\000\000\000\000\000'"\\$(printf %03o $l)"'\000\000\000'
    if [ $# -eq 3 ]; then printf '%s\000%s' "$2" "$3"; else printf '%s\000' "$2"; fi
  } >&3
  r=$(/bin/busybox timeout 10 /bin/busybox dd bs=4096 count=1 <&3 2>/dev/null | /bin/busybox tail -c +17 | /bin/busybox tr -d '\000')
  echo "${r:-no reply}"
}
if exec 3<>/dev/xen/xenbus; then
  # XS_WRITE (11) in its own data/, then XS_RM (13) of it; XS_WRITE of its own name (dom0's node)
  # and in dom0's data/.
  own=$(xs 11 data/tvd-probe x)
  xs 13 data/tvd-probe >/dev/null
  echo "tvd-guest: xenstore writes: data/tvd-probe $own, name $(xs 11 name x), /local/domain/0/data/tvd-probe $(xs 11 /local/domain/0/data/tvd-probe x)"
  exec 3<&-
fi
while :; do /bin/busybox sleep 3600; done
INIT
chmod 755 "$t/sbin/init"
mkdir -p "$r/var/lib/xen/images"
mkfs.ext4 -q -F -L tvd-guest -d "$t" "$r/var/lib/xen/images/debian-base.raw" 32M >&2
rm -rf "$t"

# ---- boot files and the root disk ----------------------------------------------------------
xen_gz="$(ls -1 "$r"/boot/xen-4.17-amd64.gz 2>/dev/null || ls -1 "$r"/boot/xen-4.17*.gz | head -n1)"
gunzip -c "$xen_gz" >"$out/xen"
cp "$r/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$r/boot/initrd.img-$kver" "$out/initrd.img"
rm -rf "$r"/proc/* "$r"/sys/* "$r"/run/* "$r"/tmp/* 2>/dev/null || true
mkfs.ext4 -q -F -L tvd-root -d "$r" "$out/base.raw" "$disk_size" >&2
{
  echo "suite=$suite mirror=$mirror"
  echo "packages=$pkgs"
  echo "kernel=$kver xen=$(basename "$xen_gz")"
  echo "bootstrap=$boot_key bootstrap_seconds=$(cat "$boot_dir/seconds")"
  echo "configure_seconds=$((SECONDS - t0))"
} >"$out/recipe"
# The tree itself is not needed once base.raw exists.
rm -rf "$r"
touch "$out/done"
# Older recipes' builds and debootstrap trees go (about 0.9 GB each). A host still running on
# an old base keeps its open file; the next `up` moves it to the new build.
for d in "$cache"/*/ "$cache"/bootstrap/*/; do
  d="${d%/}"
  [[ "$d" == "$out" || "$d" == "$boot_dir" || "$d" == "$cache/bootstrap" ]] || rm -rf "$d"
done
log "built: $out ($(du -sh --apparent-size "$out/base.raw" | cut -f1) apparent, $(du -sh "$out/base.raw" | cut -f1) used)"
echo "$out"
