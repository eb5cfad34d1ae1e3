#!/bin/bash
# runner.sh SUITE... - runs test suites that speak TAP ("ok N - name",
# "not ok N - name", "ok N # SKIP why") and ends with one summary line:
# "N passed, N failed, N skipped". A program that exits non-zero without
# reporting a failure counts as one failure, so a crash is never a pass.
# Suites: unit san golden man milter valgrind load redis mta faults sendmail
# probe install fuzz all.
set -u
cd "$(dirname "$0")/../.."
LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
pass=0 fail=0 skip=0

# run_tap NAME CMD...: runs CMD, logs it, counts its TAP lines.
run_tap() {
	local name=$1; shift
	local log="$LOGDIR/$name.log" rc p=0 f=0 s=0
	mkdir -p "$(dirname "$log")"
	"$@" >"$log" 2>&1
	rc=$?
	# cmocka prints a skipped test as "not ok N # SKIP name".
	s=$(grep -E -ci '^(not )?ok .*# ?skip' "$log")
	p=$(grep -E '^ok ' "$log" | grep -E -vic '# ?skip')
	# TAP: a "not ok ... # TODO" is a known failure, not a new one.
	f=$(grep -E '^not ok ' "$log" | grep -E -vic '# ?(skip|todo)')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited $rc without a failed test" >>"$log"
	fi
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name: $p passed, $f failed, $s skipped (log: $log)"
		grep -E -A12 '^not ok |^# *(ERROR|FAIL)|ERROR:|runtime error|Sanitizer' "$log" | head -60 | sed 's/^/    /'
	else
		if [ "$s" -gt 0 ]; then echo "ok   $name: $p passed, $s skipped"; else echo "ok   $name: $p passed"; fi
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

suite_unit() {	# $1: build dir, $2: label
	local t
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		CMOCKA_MESSAGE_OUTPUT=TAP WARDEN_TESTDATA=tests/unit/data \
		    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		    LSAN_OPTIONS=suppressions=$PWD/tests/lib/lsan.supp \
		    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		    run_tap "$2/$(basename "$t")" "$t"
	done
}

suite() {
	case $1 in
	unit)	suite_unit build unit ;;
	san)	suite_unit build/san san
		run_tap san/milter tests/milter/run.sh build/san/warden
		run_tap san/redis tests/redis/run.sh build/san/warden ;;
	valgrind) WARDEN_VALGRIND=1 run_tap valgrind/milter \
		    tests/milter/run.sh src/warden ;;
	golden)	run_tap golden tests/golden/run.sh src/warden ;;
	man)	run_tap man tests/man/run.sh ;;
	milter)	run_tap milter tests/milter/run.sh src/warden ;;
	load)	run_tap load tests/load/run.sh src/warden ;;
	mta)	run_tap mta tests/mta/run.sh src/warden ;;
	faults)	run_tap faults tests/faults/run.sh src/warden ;;
	sendmail) run_tap sendmail tests/mta/sendmail.sh src/warden ;;
	probe)	run_tap probe tests/probe/run.sh src/warden ;;
	install) run_tap install tests/install/run.sh src/warden ;;
	redis)	run_tap redis tests/redis/run.sh src/warden ;;
	fuzz)	run_tap fuzz tests/fuzz/run.sh "${FUZZ_SECONDS:-10}" build/fuzz/fuzz_* ;;
	all)	for s in unit san golden man milter valgrind load redis mta faults sendmail probe install fuzz; do
			suite $s
		done ;;
	*)	echo "runner.sh: unknown suite $1" >&2; fail=$((fail + 1)) ;;
	esac
	return 0
}

for s in "${@:-all}"; do suite "$s"; done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
