#!/usr/bin/env bash
# Runs cmocka test binaries one after another and sums their results into one
# closing line, "N passed, N failed".  Exit status is non-zero on any failure,
# including a binary that crashed before cmocka could report, and one that
# ran longer than its limit: each binary gets MV_TEST_TIMEOUT seconds
# (default 600, far above any binary's run even under sanitizers on a busy
# machine), then SIGTERM, and SIGKILL 10 s later; it is reported as
# "TIMEOUT" with its name and counted as a failure.
set -u
build=$1
shift
limit=${MV_TEST_TIMEOUT:-600}
passed=0 failed=0
for t in "$@"; do
	name=$(basename "$t")
	log="$build/tests/$name.log"
	start=$(date +%s)
	timeout --kill-after=10 "$limit" "$t" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	p=${p:-0} f=${f:-0}
	timedout=
	if ((rc == 124 || rc == 137)); then
		timedout=1
		f=$((f + 1)) # what it had not finished counts as one failure
		echo "TIMEOUT: $name ran longer than ${limit}s and was killed" >>"$log"
	elif ((rc != 0 && f == 0)); then
		f=1 # crashed or a sanitizer aborted it
	fi
	passed=$((passed + p)) failed=$((failed + f))
	printf '%-28s %3d passed %3d failed  %3ds%s\n' "$name" "$p" "$f" \
		$(($(date +%s) - start)) "${timedout:+  TIMEOUT (limit ${limit}s)}"
	if ((f > 0)); then
		grep -E '^\[  (FAILED|ERROR)|ERROR|error|Sanitizer|FAIL|TIMEOUT' "$log" | head -n 40
		if [[ $timedout ]]; then
			echo "  last test started: $(grep '^\[ RUN' "$log" | tail -n 1)"
		fi
		echo "  (full log: $log)"
	fi
done
echo "$passed passed, $failed failed"
((failed == 0))
