#!/usr/bin/env bash
# Runs cmocka test binaries one after another and sums their results into one
# closing line, "N passed, N failed".  Exit status is non-zero on any failure,
# including a binary that crashed before cmocka could report.
set -u
build=$1
shift
passed=0 failed=0
for t in "$@"; do
	name=$(basename "$t")
	log="$build/tests/$name.log"
	start=$(date +%s)
	"$t" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	p=${p:-0} f=${f:-0}
	if ((rc != 0 && f == 0)); then
		f=1 # crashed or a sanitizer aborted it
	fi
	passed=$((passed + p)) failed=$((failed + f))
	printf '%-28s %3d passed %3d failed  %3ds\n' "$name" "$p" "$f" $(($(date +%s) - start))
	if ((f > 0)); then
		grep -E '^\[  (FAILED|ERROR)|ERROR|error|Sanitizer|FAIL' "$log" | head -n 40
		echo "  (full log: $log)"
	fi
done
echo "$passed passed, $failed failed"
((failed == 0))
