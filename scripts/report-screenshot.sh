#!/usr/bin/env bash
# Makes the HTML report of a run (`memvisor report`) and a PNG of it taken
# with headless Chromium, to check how the page looks and for the README.
#
#   scripts/report-screenshot.sh [RUN.json | SCENARIO.ini] [-o OUT.png]
#            [--duration S] [--width PX] [--height PX] [--scale F]
#
# RUN.json: a report of `memvisor run --json`; SCENARIO.ini: run it first
# (--duration S shortens it), its JSON kept as OUT.json; neither: run the
# embedded default scenario.  The page goes beside the picture (OUT.html).
# The window is PX wide (1200); --height crops the picture to its top PX
# pixels (default: the whole page); --scale draws it F times as large
# (0.75: a smaller file, for the README).  Debian's chromium package
# is installed if missing (as root, or through sudo), as scripts/deps.sh
# does for the build; it is not needed by `make test`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MEMVISOR:-$root/build/memvisor}
input= out=report.png duration= height= width=1200 scale=1

usage() {
	sed -n '5,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}
while (($#)); do
	case $1 in
	-o | --output) out=${2:?-o needs a file}; shift 2 ;;
	--duration) duration=${2:?--duration needs seconds}; shift 2 ;;
	--height) height=${2:?--height needs pixels}; shift 2 ;;
	--width) width=${2:?--width needs pixels}; shift 2 ;;
	--scale) scale=${2:?--scale needs a factor}; shift 2 ;;
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
	json=${out%.png}.json
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
	# the whole page: the heading, each plot (1000x300, scaled to the
	# page's width of at most 1180 px, and its margins), the table (a row
	# per VM) and the footer
	plots=$(grep -c '<svg ' "$html")
	rows=$(grep -c '<tr><td class="name">' "$html")
	body=$((width - 20 < 1180 ? width - 20 : 1180))
	height=$((240 + plots * (300 * body / 1000 + 24) + 60 + rows * 24 + 120))
fi

# root cannot use Chromium's sandbox; the page is our own file, no scripts
sandbox=()
((EUID == 0)) && sandbox=(--no-sandbox)
if ! timeout 120 "$chromium" --headless "${sandbox[@]}" --disable-gpu \
	--hide-scrollbars --force-device-scale-factor="$scale" \
	--window-size="$width,$height" --screenshot="$work/shot.png" \
	"file://$(realpath "$html")" >"$work/chromium.log" 2>&1 || [[ ! -s $work/shot.png ]]; then
	cat "$work/chromium.log" >&2
	echo "report-screenshot: chromium took no screenshot" >&2
	exit 1
fi
mv "$work/shot.png" "$out"
echo "report-screenshot: wrote $out ($(($(stat -c %s "$out") / 1024)) KB, window ${width}x$height at scale $scale) and $html"
