#!/usr/bin/env bash
# guest-initramfs.sh - the initramfs of memvisor's real test guest.
#
#   scripts/guest-initramfs.sh OUT INIT KERNELDIR
#
# Writes OUT, an uncompressed cpio (newc) archive holding only what the
# guest needs: INIT (the static guest program, guest/linux/mvguest.c) as
# /init, the modules of KERNELDIR/modules (scripts/guest-kernel.sh; their
# names give the load order) in /lib/modules, and the empty /dev and /proc
# the program mounts on.  Owners are root and times fixed, so the same
# inputs give the same archive.  Written beside OUT first, then renamed: an
# interrupted run never leaves a partial OUT.
set -euo pipefail

(($# == 3)) || {
	echo "usage: $0 OUT INIT KERNELDIR" >&2
	exit 1
}
out=$1 init=$2 kdir=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mv-initramfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/lib/modules" "$tmp/root/dev" "$tmp/root/proc"
install -m 0755 "$init" "$tmp/root/init"
cp "$kdir"/modules/*.ko "$tmp/root/lib/modules/"
find "$tmp/root" -exec touch -h -d @0 {} +
(cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc --owner 0:0 --reproducible) >"$out.tmp"
mv "$out.tmp" "$out"
