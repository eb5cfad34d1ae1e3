#!/bin/bash
# run.sh - runs every build/bench/bench_* that `make bench` built, one
# after the other (they time themselves, so never in parallel), each
# under a header line, and tees everything to build/bench/results.txt.
# Builds nothing. Timing never fails the run: the benches print PASS or
# BELOW next to their targets and exit 0. Exits non-zero only when a
# bench crashes or exits non-zero (a load failure or a wrong answer).
set -u
cd "$(dirname "$0")/../.."
OUT=build/bench/results.txt
mkdir -p build/bench
failed=0
found=0

{
	echo "# warden bench $(date -u '+%Y-%m-%dT%H:%M:%SZ')" \
	    "nproc=$(nproc)" \
	    "cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
	    head -1)\"" \
	    "rev=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
} | tee "$OUT"

for b in build/bench/bench_*; do
	[ -x "$b" ] && [ -f "$b" ] || continue
	found=$((found + 1))
	echo "=== $(basename "$b")" | tee -a "$OUT"
	# PIPESTATUS[0]: the bench's own status, not tee's.
	"$b" 2>&1 | tee -a "$OUT"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		if [ "$rc" -gt 128 ]; then
			msg="killed by signal $((rc - 128))"
		else
			msg="exited $rc"
		fi
		echo "!!! $(basename "$b") $msg" | tee -a "$OUT"
		failed=$((failed + 1))
	fi
done

if [ "$found" -eq 0 ]; then
	echo "!!! no build/bench/bench_* (run make bench)" | tee -a "$OUT"
	exit 1
fi
echo "# $found benches, $failed failed; results in $OUT" | tee -a "$OUT"
[ "$failed" -eq 0 ]
