#!/bin/bash
# run.sh - runs every build/bench/bench_* that `make bench` built, one
# after the other (they time themselves, so never in parallel), each
# under a header line, then tests/bench/miltergen_bench.sh (warden vs the
# null milter over the milter protocol), tests/bench/redis_bench.sh
# (warden-redis over a bare EVALSHA, and under a Redis stall), then (as root)
# tests/bench/postfix_bench.sh, and tees everything to
# build/bench/results.txt.
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

# sub NAME VAR SCRIPT: tests/bench/SCRIPT against src/warden, unless
# $VAR is 0; its exit status counts as a bench's.
sub() {
	local name=$1 var=$2 script=$3 rc
	if [ "${!var:-1}" = 0 ]; then
		echo "=== $name: skipped ($var=0)" | tee -a "$OUT"
		return
	fi
	echo "=== $name" | tee -a "$OUT"
	"tests/bench/$script" src/warden 2>&1 | tee -a "$OUT"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		echo "!!! ${script%.sh} exited $rc" | tee -a "$OUT"
		failed=$((failed + 1))
	fi
}

# warden against the null milter over the milter protocol, no MTA.
sub miltergen WARDEN_BENCH_MILTERGEN miltergen_bench.sh
# warden-redis: stage time over a bare EVALSHA, and a Redis stall with
# the breaker open (issue #5; ~1.5 min, no root).
sub redis WARDEN_BENCH_REDIS redis_bench.sh

# The Postfix-level bench (tests/bench/postfix_bench.sh: Postfix alone,
# null milters, warden, rspamd, postfwd) starts a private Postfix, so it
# needs root; WARDEN_BENCH_POSTFIX=0 leaves it out, =quick runs its
# --quick smoke test (~1 min) instead of the full run (~15 min).
if [ "${WARDEN_BENCH_POSTFIX:-1}" = 0 ]; then
	echo "=== postfix_bench: skipped (WARDEN_BENCH_POSTFIX=0)" | tee -a "$OUT"
elif [ "$(id -u)" -ne 0 ]; then
	echo "=== postfix_bench: skipped (needs root: private Postfix," \
	    "smtp-sink -u)" | tee -a "$OUT"
else
	echo "=== postfix_bench" | tee -a "$OUT"
	q=
	[ "${WARDEN_BENCH_POSTFIX:-1}" = quick ] && q=--quick
	tests/bench/postfix_bench.sh $q src/warden 2>&1 | tee -a "$OUT"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		echo "!!! postfix_bench exited $rc" | tee -a "$OUT"
		failed=$((failed + 1))
	fi
fi

if [ "$found" -eq 0 ]; then
	echo "!!! no build/bench/bench_* (run make bench)" | tee -a "$OUT"
	exit 1
fi
echo "# $found benches, $failed failed; results in $OUT" | tee -a "$OUT"
[ "$failed" -eq 0 ]
