#!/usr/bin/env bash
# Checks the engine's layers from its object files' symbols (nm): every call
# goes to the same layer or a lower one, and no files call each other in a
# circle.  docs/ARCHITECTURE.md draws the layers; this table is the rule.
#
#   scripts/layers.sh [--table FILE] OBJDIR|LIB.a
#
# OBJDIR holds the engine's objects, or LIB.a is the engine's library
# (build/libmemvisor.a: made afresh from the current sources, so an object
# left behind by a deleted source cannot count).  FILE, if given, replaces
# the table below: lines "LAYER FILE..." (tests use it).  Exits 0 when the
# layers hold, 1 with one line per broken rule, 2 on bad usage or a missing
# tool.  An object the table does not name is an error too: a new file
# must say where it belongs.
set -euo pipefail

# 0 platform, 1 budget, 2 mechanisms, 3 policy, 4 API
read -r -d '' TABLE <<'EOF' || true
0 inject system util msg move error trace proto
1 budget
2 affinity cold fault zero_open reclaim sample balloon zcache zpool zip swap share_table share_merge share_cow lpage attach readahead
3 sched sched_policy share_scan
4 host vm maps settings daemon agent
EOF
NAMES=(platform budget mechanisms policy API)

usage() {
	echo "usage: $0 [--table FILE] OBJDIR|LIB.a" >&2
	exit 2
}

table=$TABLE
if [[ ${1:-} == --table ]]; then
	[[ $# -ge 2 ]] || usage
	table=$(cat "$2")
	shift 2
fi
[[ $# -eq 1 && (-d $1 || $1 == *.a && -f $1) ]] || usage
dir=$1
command -v nm >/dev/null || { echo "layers: nm not found (binutils)" >&2; exit 2; }
command -v tsort >/dev/null || { echo "layers: tsort not found (coreutils)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -f $dir ]]; then
	lib=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
	mkdir "$work/objs"
	(cd "$work/objs" && ar x "$lib") || { echo "layers: cannot read $dir" >&2; exit 2; }
	dir=$work/objs
fi

declare -A layer
while read -r l files; do
	[[ -n ${l:-} ]] || continue
	for f in $files; do layer[$f]=$l; done
done <<<"$table"

shopt -s nullglob
objs=("$dir"/*.o)
((${#objs[@]})) || { echo "layers: no objects in $dir" >&2; exit 2; }

bad=0
for o in "${objs[@]}"; do
	f=$(basename "$o" .o)
	if [[ -z ${layer[$f]:-} ]]; then
		echo "layers: $f.o is in no layer: add it to the table in $0 and to docs/ARCHITECTURE.md"
		bad=1
	fi
done
for o in "${objs[@]}"; do
	f=$(basename "$o" .o)
	[[ -n ${layer[$f]:-} ]] || continue
	nm --defined-only "$o" | awk -v f="$f" '$2 ~ /^[TDBR]$/ { print $3, f }'
done | sort -k1,1 >"$work/defs"
for o in "${objs[@]}"; do
	f=$(basename "$o" .o)
	[[ -n ${layer[$f]:-} ]] || continue
	nm --undefined-only "$o" | awk -v f="$f" '{ print $2, f }'
done | sort -k1,1 >"$work/uses"

# caller callee symbol, one line per call between two files
join "$work/uses" "$work/defs" | awk '$2 != $3 { print $2, $3, $1 }' |
	sort -u >"$work/calls"

while read -r from to sym; do
	if ((layer[$from] < layer[$to])); then
		echo "layers: $from (${NAMES[${layer[$from]}]}) calls up into $to (${NAMES[${layer[$to]}]}): $sym"
		bad=1
	fi
done <"$work/calls"

awk '{ print $1, $2 }' "$work/calls" | sort -u >"$work/edges"
if ! tsort "$work/edges" >/dev/null 2>"$work/loops"; then
	echo "layers: files call each other in a circle:"
	sed -n 's/^tsort: //p' "$work/loops" | grep -v 'input contains a loop' |
		sed 's/^/  /'
	bad=1
fi

if [[ $bad == 0 ]]; then
	echo "layers: $(wc -l <"$work/edges") calls between ${#objs[@]} files, all downwards, no circle"
fi
exit $bad
