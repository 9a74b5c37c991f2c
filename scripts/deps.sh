#!/usr/bin/env bash
# Installs the Debian packages memvisor builds and tests with, if any is missing.
# Runs apt-get as root, or through sudo; otherwise says exactly what to run.
set -euo pipefail

# libncurses-dev: run --live and top; libmicrohttpd-dev: run --metrics;
# tmux: tests/test_live.c drives the live screen in a detached session;
# qemu-system-x86, cpio: the real test guest (scripts/guest-*.sh, tools/qemu.c)
pkgs=(build-essential pkg-config clang liblz4-dev libzstd-dev libxxhash-dev
      libinih-dev libcjson-dev libcmocka-dev libncurses-dev libmicrohttpd-dev
      tmux qemu-system-x86 cpio)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "memvisor: installing missing packages: ${missing[*]}"
if ((EUID == 0)); then
	sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=(sudo)
else
	echo "memvisor: need root to install: ${missing[*]}" >&2
	echo "  run: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
