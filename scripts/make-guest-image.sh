#!/usr/bin/env bash
# make-guest-image.sh - real Linux guest RAM images for memvisor's benchmarks.
#
#   scripts/make-guest-image.sh [--force] [--rebuild] [OUTDIR]
#
# Builds a minimal Debian 12 (bookworm) guest with debootstrap, boots it under
# qemu-system-x86_64 with software emulation (TCG: no KVM needed) with its RAM
# backed by a file, and copies that file, with the VM paused, twice:
#
#   OUTDIR/guest-boot.raw   systemd has finished booting, the guest is idle
#   OUTDIR/guest-work.raw   after a workload: every file of the root file
#                           system read (page cache), text written to a tmpfs,
#                           sorted and compressed, and a perl process holding
#                           an index of every word of it (anonymous memory)
#
# Each image is exactly the guest's RAM size; byte N of the file is guest
# physical byte N (below 3 GiB; qemu's pc machine maps RAM beyond that
# above 4 GiB, the file staying contiguous).  Use one with memvisor as "image = PATH" in a [vm] section
# (see scenarios/image/debian.ini and docs/IMAGES.md).
#
# Default OUTDIR: /var/tmp/memvisor-images (outside the repository: the
# images are large and never committed).  Also kept there, so that a re-run
# is fast: the debootstrapped root file system as a tarball, the disk image,
# the guest kernel and initramfs.  A re-run with the RAM images present only
# prints what is there; --force boots the guest again, --rebuild also
# debootstraps again.  Needs root (debootstrap, chroot, file ownership in
# the disk image): run it as root or with sudo, or it re-runs itself with
# sudo if that works without a password.
#
# Settings (environment):
#   MEMVISOR_GUEST_RAM      guest RAM, qemu syntax (default 256M)
#   MEMVISOR_GUEST_DISK     root disk size (default 2G)
#   MEMVISOR_MIRROR         Debian mirror (default: the one apt uses here)
#   MEMVISOR_BOOT_TIMEOUT   seconds to wait for the boot (default 1200)
#   MEMVISOR_WORK_TIMEOUT   seconds to wait for the workload (default 1800)
set -euo pipefail

prog=make-guest-image
SUITE=bookworm
# minbase is apt + the Essential packages; the rest makes a bootable system
# that looks like a real small server: systemd as init, udev, a kernel with
# its initramfs (initramfs-tools named so that debootstrap, which takes the
# first alternative of a dependency, cannot pick another), procps for ps.
INCLUDE=systemd-sysv,udev,kmod,procps,zstd,initramfs-tools,linux-image-amd64

say() { printf '%s: %s\n' "$prog" "$*"; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

args=("$@")
force=0
rebuild=0
outdir=
while (($#)); do
	case $1 in
	-h | --help) usage 0 ;;
	--force) force=1 ;;
	--rebuild) force=1 rebuild=1 ;;
	-*) die "unknown option $1 (expected --force, --rebuild or -h)" ;;
	*)
		[[ -z $outdir ]] || die "one OUTDIR only (got $outdir and $1)"
		outdir=$1
		;;
	esac
	shift
done
outdir=${outdir:-/var/tmp/memvisor-images}
# Mount points in /proc/mounts escape blanks; refusing them keeps the
# cleanup's unmounting exact.
[[ $outdir != *[[:space:]]* ]] || die "OUTDIR must not contain blanks: '$outdir'"

# --- root ---------------------------------------------------------------
if ((EUID != 0)); then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		say "not root: running again with sudo"
		# sudo drops the environment: pass the settings on by hand.
		mapfile -t settings < <(env | grep '^MEMVISOR_' || true)
		exec sudo -- env "${settings[@]}" "$0" "${args[@]}"
	fi
	die "needs root (debootstrap, chroot, ownership of files in the disk image).
  run: sudo $0 $outdir"
fi

RAM=${MEMVISOR_GUEST_RAM:-256M}
DISK_SIZE=${MEMVISOR_GUEST_DISK:-2G}
BOOT_TIMEOUT=${MEMVISOR_BOOT_TIMEOUT:-1200}
WORK_TIMEOUT=${MEMVISOR_WORK_TIMEOUT:-1800}
ram_bytes=$(numfmt --from=iec "${RAM%B}") || die "bad MEMVISOR_GUEST_RAM '$RAM' (expected e.g. 256M or 1G)"
((ram_bytes % 4096 == 0 && ram_bytes >= 128 << 20)) ||
	die "MEMVISOR_GUEST_RAM '$RAM' must be whole 4 KiB pages and at least 128M (Debian boots in no less)"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd -P)

# --- timing -----------------------------------------------------------
# One line per step in the final summary: name, seconds, and a note
# ("cached" when the step found its output already made).
steps=()
t_step=
step_begin() {
	t_step=$EPOCHREALTIME
	say "== $1"
}
step_end() { # name [note]
	local dt
	dt=$(awk -v a="$t_step" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	steps+=("$(printf '  %-28s %8s s  %s' "$1" "$dt" "${2:-}")")
	say "   $1: ${dt} s${2:+ ($2)}"
}
t_start=$EPOCHREALTIME

# --- cleanup ----------------------------------------------------------
# Whatever fails, leave no qemu running, nothing mounted, no temp dirs and no
# half-written output behind: outputs are written as *.tmp and renamed.
work=
qemu_pid=
ramfile=$outdir/guest-ram.raw

unmount_below() { # dir: everything mounted at or below it, deepest first
	local m
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts |
		sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	if [[ -n $work && -d $work ]]; then
		unmount_below "$work"
		# --one-file-system: should an unmount have failed, rm leaves what
		# is mounted there (e.g. the host's /dev) alone.
		rm -rf --one-file-system "$work"
	fi
	rm -f "$ramfile" "$outdir"/*.tmp
	if ((rc != 0)); then
		printf '%s: failed (exit %d); cleaned up (no qemu, mounts or temp files left)\n' "$prog" "$rc" >&2
		[[ -s $outdir/console.log ]] &&
			printf '%s: the guest console is in %s\n' "$prog" "$outdir/console.log" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two runs on one OUTDIR would overwrite each other's files.
exec 9>"$outdir/.lock"
flock -n 9 || die "another $prog is running on $outdir (it holds $outdir/.lock)"

# --- host packages ----------------------------------------------------
step_begin "host packages"
declare -A need=(
	[debootstrap]=debootstrap
	[qemu-system-x86_64]=qemu-system-x86
	[mkfs.ext4]=e2fsprogs
	[zstd]=zstd
	[python3]=python3
	[flock]=util-linux
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null || missing+=("${need[$cmd]}")
done
# debootstrap checks Release signatures with it.
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Try first with the package lists there are: apt-get update is slow and
	# often not needed; if the install fails, update and try once more.
	apt_log=$outdir/apt.log
	{ apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } >"$apt_log" 2>&1 ||
		{
			tail -n 20 "$apt_log" >&2
			die "could not install ${missing[*]} (log: $apt_log); install them (apt-get install ${missing[*]}) and run again"
		}
	step_end "host packages" "installed ${missing[*]}"
else
	step_end "host packages" "all present"
fi

# --- mirror -----------------------------------------------------------
# The Debian mirror apt is configured with, for the suite itself (not
# -updates or -security): deb822 files (*.sources) and one-line files
# (*.list), the only two kinds apt reads.
find_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		awk -v suite="$SUITE" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = uris = suites = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					line = $i
					if (line ~ /^#/) continue
					split(line, kv, ":[ \t]*")
					key = tolower(kv[1]); val = substr(line, length(kv[1]) + 2)
					sub(/^[ \t]+/, "", val)
					if (key == "types") types = val
					else if (key == "uris") uris = val
					else if (key == "suites") suites = val
					else if (key == "enabled") enabled = tolower(val)
				}
				if (enabled == "no" || (" " types " ") !~ / deb /) next
				if ((" " suites " ") !~ (" " suite " ")) next
				split(uris, u, /[ \t]+/)
				if (u[1] ~ /^(https?|file):/) { print u[1]; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		awk -v suite="$SUITE" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite && $i ~ /^(https?|file):/) { print $i; exit }
			}' "$f"
	done
}
mirror=${MEMVISOR_MIRROR:-$(find_mirror | head -n1)}
if [[ -z $mirror ]]; then
	mirror=http://deb.debian.org/debian
	say "no $SUITE mirror found in /etc/apt/sources.list*; using $mirror"
fi
say "mirror: $mirror"

# --- root file system (debootstrap), cached as a tarball ---------------
# The tarball is keyed by what went into it, so that a change of mirror or
# package list makes a new one rather than reusing a stale one.
tarball=$outdir/rootfs-$SUITE.tar.zst
key="suite=$SUITE variant=minbase include=$INCLUDE mirror=$mirror"
step_begin "root file system"
if ((!rebuild)) && [[ -s $tarball && -s $tarball.key && $(<"$tarball.key") == "$key" ]]; then
	step_end "root file system" "cached: $tarball"
else
	work=$(mktemp -d "$outdir/.work.XXXXXX")
	say "debootstrap $SUITE from $mirror (a few minutes; log: $outdir/debootstrap.log)"
	if ! debootstrap --variant=minbase --include="$INCLUDE" --components=main \
		"$SUITE" "$work/root" "$mirror" >"$outdir/debootstrap.log" 2>&1; then
		tail -n 20 "$outdir/debootstrap.log" >&2
		# debootstrap keeps its own diagnostics inside the target.
		[[ -f $work/root/debootstrap/debootstrap.log ]] &&
			cp "$work/root/debootstrap/debootstrap.log" "$outdir/debootstrap-target.log"
		die "debootstrap failed (see $outdir/debootstrap.log)"
	fi
	# debootstrap unmounts what it mounted when it succeeds; make sure.
	unmount_below "$work/root"
	ls "$work/root"/boot/vmlinuz-* >/dev/null 2>&1 || die "no kernel in the root file system"
	ls "$work/root"/boot/initrd.img-* >/dev/null 2>&1 || die "no initramfs in the root file system"
	# Downloaded .debs are 100+ MB that the guest never needs.
	rm -f "$work/root"/var/cache/apt/archives/*.deb
	say "packing $tarball"
	tar --numeric-owner --xattrs -C "$work/root" -cf - . | zstd -q -T0 -o "$tarball.tmp"
	mv "$tarball.tmp" "$tarball"
	printf '%s\n' "$key" >"$tarball.key"
	rm -rf --one-file-system "$work"
	work=
	step_end "root file system" "debootstrap"
fi

# --- disk image, kernel, initramfs --------------------------------------
# Made from the tarball plus the guest configuration below, with
# mkfs.ext4 -d (no loop device or mount needed).  Keyed by the tarball and
# this script, which holds the configuration.
disk=$outdir/guest-disk.img
disk_key="$(stat -c '%s %Y' "$tarball") $(sha256sum <"$0" | cut -d' ' -f1) size=$DISK_SIZE"
step_begin "disk image"
if ((!rebuild)) && [[ -s $disk && -s $disk.key && $(<"$disk.key") == "$disk_key" &&
	-s $outdir/vmlinuz && -s $outdir/initrd.img ]]; then
	step_end "disk image" "cached: $disk"
else
	force=1 # a new disk means new RAM images
	work=$(mktemp -d "$outdir/.work.XXXXXX")
	r=$work/root
	mkdir "$r"
	zstd -q -d -c "$tarball" | tar --numeric-owner --xattrs -C "$r" -xf -

	echo memvisor-guest >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tmemvisor-guest\n' >"$r/etc/hosts"
	# Root is mounted rw by the kernel; pass 0: no fsck, the disk is
	# pristine every boot (qemu runs it with snapshot=on).
	printf '/dev/vda / ext4 rw,relatime 0 0\n' >"$r/etc/fstab"
	# A throwaway VM without network: root logs in on the serial console
	# without a password, for whoever wants to look around.
	sed -i 's/^root:[^:]*:/root::/' "$r/etc/shadow"
	# Timers that would wake up at random times and make images differ.
	for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done

	# The guest side of the protocol.  ttyS0 is the console (qemu writes it
	# to console.log, where the host looks for the markers); ttyS1 is a
	# pipe from the host, which says "go" once it has copied the boot image.
	cat >"$r/usr/local/sbin/memvisor-guest" <<'GUEST'
#!/bin/bash
# Started by memvisor-guest.service: waits for the end of the boot, says so
# on the console, waits for the host's "go" on ttyS1, runs the workload and
# says so again.  The host pauses the VM and copies its RAM at each marker.
set -u
say() { echo "$*" >/dev/console; }

# Open ttyS1 before the marker: what the host sends to a port nobody has
# open is lost when it is opened (the kernel clears the UART's FIFO).
exec 3<>/dev/ttyS1
stty -F /dev/ttyS1 -echo icanon

state=$(systemctl is-system-running --wait 2>/dev/null)
say "memvisor-guest: system $state after $(cut -d' ' -f1 /proc/uptime) s"
say "$(free -k | tr -s ' ')"
say "MEMVISOR-BOOTED"

cmd=
until [[ $cmd == go* ]]; do read -r cmd <&3 || sleep 1; done
say "memvisor-guest: workload starting"
t0=$(cut -d' ' -f1 /proc/uptime)

# Sizes follow the guest's RAM, so that the workload fits at any RAM size:
# about half of what the guest has left after the boot ends up in use.
mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
text_max=$((mem_kb * 1024 / 10))

# 1. Page cache: every file of the root file system, read once.
find / -xdev -type f -print0 2>/dev/null | xargs -0 cat >/dev/null 2>&1

# 2. A tmpfs with text (what dpkg knows, every changelog, a listing of the
#    file system; a tenth of RAM at most), then all of it sorted and
#    compressed.
w=/dev/shm/work
mkdir -p $w
{
	cat /var/lib/dpkg/status /var/lib/dpkg/info/*.list /var/lib/dpkg/info/*.md5sums
	zcat -f /usr/share/doc/*/changelog*
	find / -xdev -ls
} 2>/dev/null | head -c $text_max >$w/text.txt
sort $w/text.txt >$w/sorted.txt
gzip -c $w/sorted.txt >$w/sorted.txt.gz

# 3. Anonymous memory that stays in use: perl holds the text and a count of
#    every word in it, then sleeps (still there when the host copies).
perl -e '
	local $/;
	open(my $fh, "<", $ARGV[0]) or die "$ARGV[0]: $!";
	my $text = <$fh>;
	my %words;
	$words{$1}++ while $text =~ /(\w+)/g;
	open(my $r, ">", "/run/memvisor-perl-ready") or die;
	close $r;
	sleep 1 while 1;' $w/text.txt &
perl=$!
until [[ -e /run/memvisor-perl-ready ]]; do
	if ! kill -0 $perl 2>/dev/null; then
		say "$(free -k | tr -s ' ')"
		say "MEMVISOR-FAILED: the workload's perl died (out of memory?)"
		exit 1
	fi
	sleep 1
done

t1=$(cut -d' ' -f1 /proc/uptime)
say "memvisor-guest: workload took $(awk -v a=$t0 -v b=$t1 'BEGIN { print b - a }') s"
say "$(du -sh $w/* | tr '\t\n' '  ')"
say "$(free -k | tr -s ' ')"
say "MEMVISOR-WORKLOAD-DONE"
wait
GUEST
	chmod 755 "$r/usr/local/sbin/memvisor-guest"
	cat >"$r/etc/systemd/system/memvisor-guest.service" <<'UNIT'
[Unit]
Description=memvisor guest side (boot marker, workload)
# Started once the boot is over, so that it does not slow the boot down.
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/memvisor-guest

[Install]
WantedBy=multi-user.target
UNIT
	ln -sf ../memvisor-guest.service "$r/etc/systemd/system/multi-user.target.wants/memvisor-guest.service"

	# The kernel and initramfs the guest's own packages installed.
	kernel=$(printf '%s\n' "$r"/boot/vmlinuz-* | sort -V | tail -n1)
	initrd=$r/boot/initrd.img-${kernel##*/vmlinuz-}
	[[ -s $initrd ]] || die "no initramfs for $kernel"
	cp "$kernel" "$outdir/vmlinuz.tmp"
	cp "$initrd" "$outdir/initrd.img.tmp"

	rm -f "$disk.tmp"
	truncate -s "$DISK_SIZE" "$disk.tmp"
	mkfs.ext4 -q -F -L memvisor-root -d "$r" "$disk.tmp" ||
		die "mkfs.ext4 -d failed (is $DISK_SIZE enough? set MEMVISOR_GUEST_DISK)"
	mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
	mv "$outdir/initrd.img.tmp" "$outdir/initrd.img"
	mv "$disk.tmp" "$disk"
	printf '%s\n' "$disk_key" >"$disk.key"
	printf '%s\n' "${kernel##*/vmlinuz-}" >"$outdir/kernel-version"
	rm -rf --one-file-system "$work"
	work=
	step_end "disk image" "kernel $(<"$outdir/kernel-version")"
fi

# --- boot, workload, RAM images ---------------------------------------
boot_img=$outdir/guest-boot.raw
work_img=$outdir/guest-work.raw
images_ok() {
	local f
	for f in "$boot_img" "$work_img"; do
		[[ -f $f && $(stat -c %s "$f") -eq $ram_bytes && $f -nt $disk ]] || return 1
	done
}

# QMP, qemu's JSON control protocol, on a unix socket: python3 because bash
# cannot speak to one.  "stop" returns only once the VM is paused, and is
# checked with query-status, so that the copy that follows is consistent.
qmp() { # command...
	python3 - "$work/qmp.sock" "$@" <<'PY'
import json, socket, sys

sock = socket.socket(socket.AF_UNIX)
sock.settimeout(60)
sock.connect(sys.argv[1])
f = sock.makefile("rw")
f.readline()  # greeting

def call(name):
    f.write(json.dumps({"execute": name}) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            if name == "quit":
                return None
            sys.exit(f"qmp: connection closed during {name}")
        msg = json.loads(line)
        if "error" in msg:
            sys.exit(f"qmp: {name}: {msg['error']}")
        if "return" in msg:
            return msg["return"]

call("qmp_capabilities")
for cmd in sys.argv[2:]:
    call(cmd)
    if cmd == "stop" and call("query-status")["running"]:
        sys.exit("qmp: VM still running after stop")
PY
}

wait_marker() { # marker timeout
	local deadline=$((SECONDS + $2))
	until grep -aq "$1" "$outdir/console.log" 2>/dev/null; do
		if grep -aq MEMVISOR-FAILED "$outdir/console.log"; then
			grep -a -m1 MEMVISOR-FAILED "$outdir/console.log" >&2
			die "the guest failed before $1 (see $outdir/console.log)"
		fi
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			tail -n 30 "$outdir/console.log" >&2
			cat "$work/qemu.log" >&2
			die "qemu exited before $1 (its messages and the console's last lines above)"
		fi
		((SECONDS < deadline)) ||
			die "no $1 on the console after $2 s (see $outdir/console.log)"
		sleep 1
	done
}

# Pause, copy the RAM file (holes where pages are zero: same size, less
# disk), resume.
snapshot() { # dest
	qmp stop
	cp --sparse=always "$ramfile" "$1.tmp"
	mv "$1.tmp" "$1"
}

if ((!force)) && images_ok; then
	step_begin "boot + workload"
	step_end "boot + workload" "cached (--force to boot again)"
else
	work=$(mktemp -d "$outdir/.work.XXXXXX")
	# qemu's "pipe" chardev: the host writes cmd.in, the guest's ttyS1
	# writes cmd.out (nothing: it does not echo, and 64 KiB would fit).
	mkfifo "$work/cmd.in" "$work/cmd.out"
	# A stale file would show the last run's bytes where this guest never
	# wrote: start from an empty (all zero) one.
	rm -f "$ramfile" "$outdir/console.log"
	: >"$outdir/console.log"
	qemu=(
		qemu-system-x86_64
		-accel tcg -smp 1 -m "$RAM"
		# The guest's RAM is this file, mapped shared: the file IS the RAM.
		-object "memory-backend-file,id=mem,size=$RAM,mem-path=$ramfile,share=on"
		-machine "pc,memory-backend=mem"
		-kernel "$outdir/vmlinuz" -initrd "$outdir/initrd.img"
		-append "console=ttyS0 root=/dev/vda rw"
		# snapshot=on: writes go to a temp file, the disk stays pristine,
		# so every boot starts from the same state.
		-drive "file=$disk,if=virtio,format=raw,snapshot=on"
		-nic none -nographic -no-reboot
		-serial "file:$outdir/console.log"
		-serial "pipe:$work/cmd"
		-parallel none -monitor none
		-qmp "unix:$work/qmp.sock,server=on,wait=off"
	)
	say "${qemu[*]}"
	step_begin "boot"
	"${qemu[@]}" </dev/null >"$work/qemu.log" 2>&1 &
	qemu_pid=$!
	wait_marker MEMVISOR-BOOTED "$BOOT_TIMEOUT"
	step_end "boot" "to MEMVISOR-BOOTED, $(grep -a -m1 'memvisor-guest: system' "$outdir/console.log" | tr -d '\r' | sed 's/.*: //')"

	step_begin "copy boot image"
	snapshot "$boot_img"
	qmp cont
	echo go >"$work/cmd.in"
	step_end "copy boot image"

	step_begin "workload"
	wait_marker MEMVISOR-WORKLOAD-DONE "$WORK_TIMEOUT"
	step_end "workload" "$(grep -a -m1 'workload took' "$outdir/console.log" | tr -d '\r' | sed 's/.*: //')"

	step_begin "copy work image"
	snapshot "$work_img"
	qmp quit || true
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
	rm -f "$ramfile"
	rm -rf --one-file-system "$work"
	work=
	step_end "copy work image"
fi

# --- what was written ---------------------------------------------------
for f in "$boot_img" "$work_img"; do
	size=$(stat -c %s "$f")
	((size == ram_bytes)) || die "$f is $size bytes, not the guest's $ram_bytes"
done

step_begin "page statistics"
# Identical 4 KiB pages, within each image and across both: what page
# sharing could save at best.  Pages are compared by a 128-bit hash, which
# is as good as bit by bit for counting.
stats=$(python3 - "$boot_img" "$work_img" <<'PY'
import hashlib, sys
from collections import Counter

PAGE = 4096
ZERO = hashlib.blake2b(bytes(PAGE), digest_size=16).digest()

def pages(path):
    with open(path, "rb") as f:
        while True:
            p = f.read(PAGE)
            if not p:
                return
            yield hashlib.blake2b(p, digest_size=16).digest()

def mib(n):
    return f"{n * PAGE / 2**20:.1f} MiB"

images = {p: Counter(pages(p)) for p in sys.argv[1:]}
for path, c in images.items():
    total = sum(c.values())
    zero = c.get(ZERO, 0)
    nonzero = total - zero
    distinct = len(c) - (1 if zero else 0)
    dup = nonzero - distinct
    print(f"{path}: {total} pages ({mib(total)})")
    print(f"  zero pages            {zero:7d} ({100 * zero / total:5.1f}%)")
    print(f"  non-zero pages        {nonzero:7d} ({100 * nonzero / total:5.1f}%), {distinct} distinct")
    print(f"  duplicate non-zero    {dup:7d} ({100 * dup / total:5.1f}%): copies of a page seen before")
    print(f"  sharing saves at best {zero + dup:7d} ({100 * (zero + dup) / total:5.1f}%, {mib(zero + dup)}): every zero page and every copy")

both = Counter()
for c in images.values():
    both.update(c)
total = sum(both.values())
a, b = images.values()
common = sum(1 for h in b if h != ZERO and h in a)
saved = total - len(both) + (1 if ZERO in both else 0)
print(f"both images together: {total} pages ({mib(total)})")
print(f"  distinct non-zero contents of the work image also in the boot image: {common} of {len(b) - (1 if ZERO in b else 0)}")
print(f"  sharing saves at best {saved} ({100 * saved / total:.1f}%, {mib(saved)}) across the two")
PY
)
step_end "page statistics"

summary=$(
	echo "Debian 12 guest RAM images in $outdir (guest RAM $RAM = $ram_bytes bytes, kernel $(cat "$outdir/kernel-version"))"
	for f in "$boot_img" "$work_img" "$disk" "$tarball" "$outdir/vmlinuz" "$outdir/initrd.img" "$outdir/console.log"; do
		[[ -e $f ]] || continue
		printf '  %-44s %12s bytes, %6s on disk, %s\n' "$f" "$(stat -c %s "$f")" \
			"$(du -h "$f" | cut -f1)" "$(date -r "$f" '+%F %T')"
	done
	echo "steps (this run):"
	printf '%s\n' "${steps[@]}"
	awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "  %-28s %8.1f s\n", "total", b - a }'
	echo "$stats"
)
echo
echo "$summary"
# The last summary stays beside the images, for whoever uses them later.
echo "$summary" >"$outdir/summary.txt"
