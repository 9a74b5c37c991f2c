#!/usr/bin/env bash
# guest-kernel.sh - the kernel of memvisor's real test guest.
#
#   scripts/guest-kernel.sh OUTDIR
#
# Takes Debian's linux-image-cloud-amd64 (the metapackage names the
# versioned image package, linux-image-X.Y.Z-N-cloud-amd64, which is what is
# fetched), downloads it with `apt-get download` and unpacks it with
# `dpkg-deb -x` under OUTDIR: it is never installed on the host.  Leaves:
#
#   OUTDIR/vmlinuz          the kernel
#   OUTDIR/modules/NN-X.ko  the modules the test guest loads, in load order
#                           (virtio_balloon over virtio PCI and what they
#                           depend on that the kernel does not build in)
#   OUTDIR/version          the image package's name and version
#
# A re-run with OUTDIR/version naming the candidate version apt knows does
# nothing (no download); MEMVISOR_GUEST_KERNEL_OFFLINE=1 also skips asking
# apt and uses whatever OUTDIR holds.  The dependencies of a module come from
# its .modinfo section (depends=), read with objcopy: the package carries no
# modules.dep (depmod runs when it is installed), and a module the kernel
# builds in (modules.builtin) is never copied.
set -euo pipefail

prog=guest-kernel
say() { printf '%s: %s\n' "$prog" "$*"; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

(($# == 1)) || die "usage: $0 OUTDIR"
out=$1
meta=linux-image-cloud-amd64
# what the guest program needs: the balloon driver behind a PCI device
wanted=(virtio_pci virtio_balloon)

if [[ ${MEMVISOR_GUEST_KERNEL_OFFLINE:-} == 1 && -s $out/version ]]; then
	exit 0
fi
command -v apt-cache >/dev/null || die "needs apt-cache (a Debian system)"
pkg=$(apt-cache depends "$meta" 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
[[ $pkg ]] || die "apt knows no $meta (run apt-get update?)"
ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
[[ $ver && $ver != "(none)" ]] || die "apt has no candidate for $pkg"
want="$pkg $ver"
if [[ -s $out/version && $(cat "$out/version") == "$want" && -s $out/vmlinuz ]]; then
	exit 0
fi

say "fetching $pkg $ver (kernel of the test guest; not installed on the host)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mv-guest-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's _apt user must be able to write where it downloads
chmod 755 "$tmp"
(cd "$tmp" && apt-get download -q "$pkg=$ver" >/dev/null 2>"$tmp/apt.err") || {
	cat "$tmp/apt.err" >&2
	die "apt-get download $pkg=$ver failed"
}
deb=$(ls "$tmp"/*.deb)
dpkg-deb -x "$deb" "$tmp/root"
kver=${pkg#linux-image-}
moddir=$tmp/root/lib/modules/$kver
[[ -s $tmp/root/boot/vmlinuz-$kver && -d $moddir ]] ||
	die "$deb holds no vmlinuz-$kver or modules"

builtin() { grep -q "/$1\.ko\$" "$moddir/modules.builtin"; }
# every module of the package by name (module names use _ and -
# interchangeably: the key has _)
declare -A path_of=()
while read -r p; do
	b=$(basename "$p")
	b=${b%%.ko*}
	path_of[${b//-/_}]=$p
done < <(find "$moddir/kernel" -name '*.ko*')
modpath() {
	local f=${path_of[${1//-/_}]:-}
	[[ $f ]] || die "module $1 is neither built in nor in $deb"
	echo "$f"
}
deps_of() {
	objcopy -O binary --only-section=.modinfo "$1" /dev/stdout 2>/dev/null |
		tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

# depth-first: every module after what it depends on
order=()
declare -A seen=()
visit() {
	local n=${1//-/_} p d
	[[ ${seen[$n]:-} ]] && return 0
	seen[$n]=1
	builtin "$n" && return 0
	p=$(modpath "$n")
	for d in $(deps_of "$p"); do
		visit "$d"
	done
	order+=("$p")
}
for m in "${wanted[@]}"; do
	visit "$m"
done

new=$tmp/out
mkdir -p "$new/modules"
cp "$tmp/root/boot/vmlinuz-$kver" "$new/vmlinuz"
i=0
for p in "${order[@]}"; do
	b=$(basename "$p")
	case $b in
	*.ko) cp "$p" "$new/modules/$(printf '%02d' $i)-$b" ;;
	*.ko.xz) xz -dc "$p" >"$new/modules/$(printf '%02d' $i)-${b%.xz}" ;;
	*.ko.zst) zstd -qdc "$p" >"$new/modules/$(printf '%02d' $i)-${b%.zst}" ;;
	*) die "unknown module format: $b" ;;
	esac
	i=$((i + 1))
done
echo "$want" >"$new/version"
mkdir -p "$out"
rm -rf "$out/modules" "$out/vmlinuz" "$out/version"
mv "$new/modules" "$new/vmlinuz" "$out/"
mv "$new/version" "$out/version" # last: it marks the directory complete
say "$kver: vmlinuz and ${#order[@]} modules in $out"
