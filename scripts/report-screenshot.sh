#!/usr/bin/env bash
# Makes the HTML report of a run (`memvisor report`) and a PNG of it taken
# with headless Chromium, to check how the page looks and for the README.
#
#   scripts/report-screenshot.sh [RUN.json | SCENARIO.ini] [-o OUT.png]
#                                [--duration S] [--height PX] [--width PX]
#
# RUN.json: a report of `memvisor run --json`; SCENARIO.ini: run it first
# (--duration S shortens it); neither: run the embedded default scenario.
# The page goes beside the picture (OUT.html).  --height crops the picture
# to its top PX pixels (default: the whole page).  Debian's chromium package
# is installed if missing (as root, or through sudo), as scripts/deps.sh
# does for the build; it is not needed by `make test`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MEMVISOR:-$root/build/memvisor}
input= out=report.png duration= height= width=1100

usage() {
	sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}
while (($#)); do
	case $1 in
	-o | --output) out=${2:?-o needs a file}; shift 2 ;;
	--duration) duration=${2:?--duration needs seconds}; shift 2 ;;
	--height) height=${2:?--height needs pixels}; shift 2 ;;
	--width) width=${2:?--width needs pixels}; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "report-screenshot: unknown option $1" >&2; usage ;;
	*) [[ -z $input ]] || { echo "report-screenshot: one input at a time" >&2; exit 2; }
		input=$1; shift ;;
	esac
done
[[ $out == *.png ]] || { echo "report-screenshot: -o must name a .png file" >&2; exit 2; }
html=${out%.png}.html

if [[ ! -x $bin ]]; then
	make -C "$root" -j2 "${bin#"$root"/}"
fi

work=$(mktemp -d /tmp/memvisor-shot-XXXXXX)
trap 'rm -rf "$work"' EXIT

json=$input
if [[ $input != *.json ]]; then
	json=$work/run.json
	args=(run)
	[[ -n $input ]] && args+=("$input")
	[[ -n $duration ]] && args+=(--duration "$duration")
	echo "report-screenshot: memvisor ${args[*]} (the run, then the verification of every page)"
	# a run that failed still writes its JSON; the report says how it ended
	"$bin" "${args[@]}" --json "$json" --quiet || echo "report-screenshot: the run exited $?; making its report anyway"
fi
"$bin" report "$json" -o "$html"

chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
	echo "report-screenshot: installing Debian's chromium (for the screenshot only)"
	if ((EUID == 0)); then
		sudo=()
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo=(sudo)
	else
		echo "report-screenshot: need root to install chromium; run: sudo apt-get install -y chromium" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
	chromium=$(command -v chromium)
fi

if [[ -z $height ]]; then
	# the whole page: the heading, each plot (300 px and its margins), the
	# table (a row per VM) and the footer
	plots=$(grep -c '<svg ' "$html")
	rows=$(grep -c '<tr><td class="name">' "$html")
	height=$((240 + plots * 322 + 60 + rows * 26 + 120))
fi

# root cannot use Chromium's sandbox; the page is our own file, no scripts
sandbox=()
((EUID == 0)) && sandbox=(--no-sandbox)
if ! timeout 120 "$chromium" --headless "${sandbox[@]}" --disable-gpu \
	--hide-scrollbars --force-device-scale-factor=1 \
	--window-size="$width,$height" --screenshot="$work/shot.png" \
	"file://$(realpath "$html")" >"$work/chromium.log" 2>&1 || [[ ! -s $work/shot.png ]]; then
	cat "$work/chromium.log" >&2
	echo "report-screenshot: chromium took no screenshot" >&2
	exit 1
fi
mv "$work/shot.png" "$out"
echo "report-screenshot: wrote $out ($(($(stat -c %s "$out") / 1024)) KB, ${width}x$height) and $html"
