#!/bin/bash
# run.sh SECONDS TARGET... - runs each libFuzzer target for SECONDS from
# its seed corpus (tests/fuzz/corpus/NAME, never written to: new inputs
# go to build/fuzz/work/NAME). Prints TAP with executions per target;
# a crash, leak or timeout is "not ok" and leaves its input in
# build/fuzz/artifacts/.
set -u
secs=$1; shift
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz/artifacts
n=0 rc=0
echo "1..$#"
for bin in "$@"; do
	n=$((n + 1))
	name=$(basename "$bin"); name=${name#fuzz_}
	work=build/fuzz/work/$name
	mkdir -p "$work"
	log=build/fuzz/$name.log
	LSAN_OPTIONS=suppressions=tests/lib/lsan.supp "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=4096 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/"$name"- \
	    "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	st=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$st" -eq 0 ]; then
		echo "ok $n - fuzz $name: ${execs:-?} executions in ${secs}s"
	else
		echo "not ok $n - fuzz $name: exit $st after ${execs:-?} executions (log: $log)"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/# /'
		rc=1
	fi
done
exit $rc
