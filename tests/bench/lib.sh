# lib.sh - what the milter-protocol benches share (miltergen_bench.sh,
# redis_bench.sh): messages, the binaries they need, miltergen's
# all-continue check, the cleanup of their servers and awk medians over
# rounds. Source it with BENCH_NAME, BIN, GEN and NULLM set, after
# tests/lib/servers.sh.

say() { printf '%s\n' "$*"; }
die() { say "$BENCH_NAME: $*" >&2; exit 1; }

# Dies unless warden, miltergen and the null milter are built.
bench_need_bins() {
	[ -x "$BIN" ] || die "no warden binary $BIN (run make)"
	[ -x "$GEN" ] && [ -x "$NULLM" ] ||
	    die "no $GEN or $NULLM (make build/bench/miltergen build/bench/nullmilter)"
}

# bench_cleanup KEEPVAR: stops every server in PID (by PID), then removes
# the temp dir $T unless the variable named KEEPVAR is 1. For the EXIT
# trap, after whatever else the bench has to stop first.
bench_cleanup() {
	local n
	for n in "${!PID[@]}"; do
		[ -n "${PID[$n]}" ] && stop_pid "${PID[$n]}" 10
	done
	if [ "${!1:-0}" = 1 ]; then say "# kept $T"; else rm -rf "$T"; fi
}

# miltergen's reply line when every reply was continue: any other reply
# means the milters did different work and the figures do not compare.
MG_CONT_RE='^replies continue=[0-9]+ accept=0 reject=0 tempfail=0 discard=0 replycode_4xx=0 replycode_5xx=0 replycode_421=0 '

# awk functions, put before a program: add(key, v) collects v under key,
# median(key) is the median of what key collected.
MEDIAN_AWK='
function median(key,  n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { if (key in vals) vals[key] = vals[key] " " v; else vals[key] = v }
'
