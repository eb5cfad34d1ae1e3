#!/bin/bash
# long.sh RUNS TARGET... - the long fuzz runs of issue #8: each libFuzzer
# target for RUNS executions (10000000 to resolve the issue), one at a
# time under nice 19, from its seed corpus plus build/fuzz/work/NAME
# (kept between runs, never committed). Inputs are cut to FUZZ_MAX_LEN
# bytes (4096, libFuzzer's usual limit, which a corpus holding a longer
# file would raise, and every byte of fuzz_session's input costs time).
# FUZZ_MAX_TIME=SECS stops a target earlier (0: no limit); the TAP line
# then shows the count it reached. Prints TAP with executions and seconds
# per target.
#
# libconfig 1.5 leaks a token on every syntax error (tests/lib/lsan.supp),
# so for the config and rules targets libFuzzer would run a whole-heap
# leak scan after almost every input: 30 times slower. Those two fuzz
# with -detect_leaks=0; then every input of the corpus they built is
# replayed with LeakSanitizer on, so a leak of ours still fails the run.
set -u
runs=$1; shift
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz/artifacts
noleak=" ${FUZZ_NOLEAK-config rules} "
export LSAN_OPTIONS=suppressions=tests/lib/lsan.supp
n=0 rc=0
echo "1..$#"
for bin in "$@"; do
	n=$((n + 1))
	name=$(basename "$bin"); name=${name#fuzz_}
	work=build/fuzz/work/$name
	log=build/fuzz/$name.long.log
	mkdir -p "$work"
	leaks=1
	case $noleak in *" $name "*) leaks=0 ;; esac
	start=$(date +%s)
	nice -n 19 "$bin" -runs="$runs" -detect_leaks=$leaks -timeout=10 \
	    -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-4096}" \
	    -max_total_time="${FUZZ_MAX_TIME:-0}" -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/"$name"- \
	    "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	st=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	what="${execs:-?} executions in ${secs}s"
	if [ "$st" -eq 0 ] && [ "$leaks" -eq 0 ]; then
		# Input files as arguments run once each; LSan checks at exit.
		find "$work" "tests/fuzz/corpus/$name" -type f -print0 |
		    xargs -0 -n 500 nice -n 19 "$bin" >>"$log" 2>&1
		st=$?
		what="$what, corpus of $(find "$work" -type f | wc -l) replayed with leak checks"
	fi
	if [ "$st" -eq 0 ]; then
		echo "ok $n - fuzz $name: $what"
	else
		echo "not ok $n - fuzz $name: exit $st, $what (log: $log)"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 |
		    sed 's/^/# /'
		rc=1
	fi
done
exit $rc
