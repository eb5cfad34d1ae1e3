#!/bin/bash
# tests/load/run.sh [BINARY] - 1,000 concurrent milter sessions held open
# and completed (issue #8 "Load", issue #4 memory target). Prints TAP.
#
# Starts, each on a free loopback port in one temp dir: warden (BINARY,
# default src/warden; the shipped rules/*.rules on the memory store) and
# the null milter (tests/bench/nullmilter.c: libmilter answering
# continue). For each, build/bench/miltergen --hold opens LOAD_SESSIONS
# (1,000) sessions, runs each through connect + helo and holds them all;
# then releases them and every one sends a message and quits. VmRSS,
# Threads (/proc/PID/status) and open fds (/proc/PID/fd) are read idle,
# with all sessions open, and after they closed. Four cycles: held after
# helo, the same again (a leak would grow RSS), held after the last RCPT
# (a transaction open in every session), and held after RCPT then
# dropped by the client without QUIT (the MTA going away mid-session).
#
# Asserts generous bounds only: every session completed with its eom
# reply (none starved), fds back to idle after close (no leak), RSS per
# session below LOAD_MAX_KB (64) and the second cycle not growing RSS by
# more than that per session again. The figures issue #4 is about
# (warden's per-session RSS against the null milter's, the difference)
# are printed as "# " lines, never asserted: they depend on the machine.
# Then miltergen meets a hostile fake milter (tests/load/hostile_milter.py).
# Everything is stopped by PID on exit, also when a test fails.
# LOAD_KEEP=1 keeps the temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BIN=${1:-src/warden}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
NS=${LOAD_SESSIONS:-1000}
MAX_KB=${LOAD_MAX_KB:-64}
GEN=$ROOT/build/bench/miltergen
NULLM=$ROOT/build/bench/nullmilter

. tests/lib/servers.sh
. tests/lib/tap.sh

if [ ! -x "$BIN" ]; then
	tap_fail "warden binary $BIN is executable"
	finish
fi
if ! make --no-print-directory -s build/bench/miltergen \
    build/bench/nullmilter >/dev/null 2>&1 || [ ! -x "$GEN" ] ||
    [ ! -x "$NULLM" ]; then
	tap_fail "build miltergen and nullmilter" \
	    "$(make --no-print-directory build/bench/miltergen build/bench/nullmilter 2>&1 | tail -5)"
	finish
fi
# Every held session is one descriptor here and one in the milter.
ulimit -n $((NS * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((NS + 64)) ]; then
	tap_skip "$NS sessions" "ulimit -n is $(ulimit -n)"
	finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/warden-load.XXXXXX") || exit 1
chmod 755 "$T"		# warden started as root runs as nobody
declare -A PID PORT
GEN_PID=

cleanup() {
	local n
	set +e
	[ -n "$GEN_PID" ] && stop_pid "$GEN_PID" 10
	for n in "${!PID[@]}"; do
		[ -n "${PID[$n]}" ] && stop_pid "${PID[$n]}" 10
	done
	if [ "${LOAD_KEEP:-0}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- servers ----------------------------------------------------------

free_port "PORT[warden]" "PORT[null]"
shipped_conf "$T" "${PORT[warden]}"
# start MILTER: a fresh process, listening and warmed up (the first
# sessions build libmilter's pool and malloc's arenas; "idle" means
# after that, as in production). Logs are appended across restarts.
start() {
	if [ "$1" = warden ]; then
		"$BIN" run -c "$T/warden.conf" 2>>"$T/warden.log" &
	else
		"$NULLM" "${PORT[null]}" 2>>"$T/null.log" &
	fi
	PID[$1]=$!
	wait_listening "${PORT[$1]}" 20 || return 1
	"$GEN" -s "inet:${PORT[$1]}@127.0.0.1" -c 20 -n 200 >"$T/$1-warm.out" 2>&1
}
# stop MILTER: by PID; records a bad exit (a sanitizer's leak report
# makes it non-zero) in STOP_BAD.
STOP_BAD=
stop() {
	stop_pid "${PID[$1]}" 20
	PID[$1]=
	[ "$STOP_RC" = 0 ] || STOP_BAD="$STOP_BAD $1:$STOP_RC"
}
t_begin "warden and the null milter listen on 127.0.0.1"
start warden || t_true "warden does not listen"
start null || t_true "nullmilter does not listen"
t_end "$T/warden.log" "$T/null.log" || finish

# --- measuring --------------------------------------------------------

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# A field of miltergen's "KEY k=v ..." line.
field() { sed -n "s/^$2 .*\\b$3=\\([^ ]*\\).*/\\1/p" "$1" | head -1; }

# wait_fds PID WANT SECS: bounded wait until PID has at most WANT fds.
wait_fds() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(fds "$1")" -le "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# cycle MILTER LABEL HOLD [OPTION]: one hold cycle; sets R_* figures.
cycle() {
	local m=$1 label=$2 hold=$3 pid=${PID[$1]} out=$T/$1-$2.out i rc
	R_IDLE_RSS=$(rss "$pid") R_IDLE_FD=$(fds "$pid") R_IDLE_TH=$(threads "$pid")
	"$GEN" -s "inet:${PORT[$m]}@127.0.0.1" -c "$NS" -m 1 -r 1 \
	    --hold="$hold" --timeout 60 ${4:+"$4"} >"$out" 2>&1 </dev/null &
	GEN_PID=$!
	R_HELD=
	if wait_grep 90 "$out" '^held [0-9]+$'; then
		R_HELD=$(sed -n 's/^held //p' "$out")
		R_OPEN_RSS=$(rss "$pid") R_OPEN_FD=$(fds "$pid")
		R_OPEN_TH=$(threads "$pid")
		kill -USR1 "$GEN_PID" 2>/dev/null
	fi
	for ((i = 0; i < 900; i++)); do
		pid_alive "$GEN_PID" || break
		sleep 0.1
	done
	stop_pid "$GEN_PID" 5
	rc=$STOP_RC
	GEN_PID=
	R_GEN_RC=$rc
	# libmilter closes its side once it has read our QUIT (or EOF).
	wait_fds "$pid" "$R_IDLE_FD" 20
	R_CLOSED_RSS=$(rss "$pid") R_CLOSED_FD=$(fds "$pid")
	R_CLOSED_TH=$(threads "$pid")
	R_OUT=$out
}

# check MILTER LABEL EOMS: the asserts of one cycle, as one TAP line.
check() {
	local m=$1 label=$2 want_eom=$3 completed failed eom what
	completed=$(field "$R_OUT" sessions completed)
	failed=$(field "$R_OUT" sessions failed)
	eom=$(field "$R_OUT" totals eom_replies)
	what="each completed with its eom reply"
	[ "$want_eom" = 0 ] && what="each dropped by the client mid-transaction"
	t_begin "$m $label: $NS sessions held at once, $what, fds back to idle"
	pid_alive "${PID[$m]}" || t_true "$m died"
	t_eq "miltergen exit status" "$R_GEN_RC" 0
	t_eq "sessions held at once" "${R_HELD:-none}" "$NS"
	t_eq "sessions completed" "${completed:-none}" "$NS"
	t_eq "sessions failed" "${failed:-none}" 0
	t_eq "eom replies" "${eom:-none}" "$want_eom"
	# The sessions were open in the milter, not queued in the backlog.
	if [ -n "$R_HELD" ] && [ "${R_OPEN_FD:-0}" -lt $((R_IDLE_FD + NS)) ]; then
		t_true "fds while held: $R_OPEN_FD, want >= $R_IDLE_FD + $NS"
	fi
	t_eq "fds after close (idle $R_IDLE_FD)" "$R_CLOSED_FD" "$R_IDLE_FD"
	t_end "$R_OUT" "$T/$m.log"
}

# per_session_kb IDLE OPEN: (OPEN - IDLE) / N, one decimal.
per_session_kb() { awk -v a="$1" -v b="$2" -v n="$NS" 'BEGIN { printf "%.2f", (b - a) / n }'; }

# ASan keeps freed memory in quarantine: RSS then measures ASan, not us.
RSS_CHECKS=1
case $BIN in */build/san/*) RSS_CHECKS=0 ;; esac

declare -A KB OPEN_TH IDLE_TH CLOSED
for m in null warden; do
	# helo2: again, to see a leak; rcpt: in a fresh process, so what
	# the helo cycles freed does not hide its cost; drop: held after
	# RCPT, then the client goes away without QUIT (the transaction
	# state must be freed: fds here, leaks under ASan/valgrind).
	for label in helo helo2 rcpt drop; do
		case $label in
		helo*) cycle "$m" "$label" helo
			check "$m" "held after $label" "$NS" ;;
		rcpt)	stop "$m"
			start "$m"
			cycle "$m" "$label" rcpt
			check "$m" "held after $label" "$NS" ;;
		drop) cycle "$m" "$label" rcpt --drop
			check "$m" "held after rcpt, dropped" 0 ;;
		esac
		KB[$m-$label]=$(per_session_kb "$R_IDLE_RSS" "${R_OPEN_RSS:-$R_IDLE_RSS}")
		IDLE_TH[$m-$label]=$R_IDLE_TH OPEN_TH[$m-$label]=${R_OPEN_TH:-?}
		echo "# $m $label: RSS idle $R_IDLE_RSS kB, $NS open ${R_OPEN_RSS:-?} kB, closed $R_CLOSED_RSS kB = ${KB[$m-$label]} kB/session; threads $R_IDLE_TH -> ${R_OPEN_TH:-?} -> $R_CLOSED_TH; fds $R_IDLE_FD -> ${R_OPEN_FD:-?} -> $R_CLOSED_FD"
		CLOSED[$m-$label]=$R_CLOSED_RSS
		[ "$label" = helo ] && OPEN1=${R_OPEN_RSS:-0}
		if [ "$label" = helo2 ] && [ $RSS_CHECKS = 0 ]; then
			tap_skip "$m: RSS of a second cycle" "sanitizer build"
		elif [ "$label" = helo2 ]; then
			# A second cycle reuses what the first one freed: more
			# than MAX_KB a session again is a leak.
			t_begin "$m: a second $NS-session cycle does not grow RSS by more than $MAX_KB kB a session"
			[ "$R_CLOSED_RSS" -le $((OPEN1 + NS * MAX_KB)) ] ||
			    t_true "closed after cycle 2: $R_CLOSED_RSS kB, open in cycle 1: $OPEN1 kB"
			t_end
		fi
	done
	if [ $RSS_CHECKS = 0 ]; then
		tap_skip "$m: RSS per held session" "sanitizer build"
		continue
	fi
	t_begin "$m: RSS per held session below $MAX_KB kB (after helo, and in a transaction)"
	for label in helo helo2 rcpt drop; do
		awk -v k="${KB[$m-$label]}" -v max="$MAX_KB" 'BEGIN { exit !(k < max) }' ||
		    t_true "$label: ${KB[$m-$label]} kB/session"
	done
	t_end
done

d() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", a - b }'; }
echo "# per-session RSS (kB), $NS sessions held after helo: warden ${KB[warden-helo]}, null milter ${KB[null-helo]}, difference $(d "${KB[warden-helo]}" "${KB[null-helo]}") (issue #4: idle + 2 kB a session)"
echo "# second cycle: warden ${KB[warden-helo2]}, null ${KB[null-helo2]}, difference $(d "${KB[warden-helo2]}" "${KB[null-helo2]}")"
echo "# held after the last RCPT (a transaction open): warden ${KB[warden-rcpt]}, null ${KB[null-rcpt]}, difference $(d "${KB[warden-rcpt]}" "${KB[null-rcpt]}")"
echo "# threads idle -> $NS open: warden ${IDLE_TH[warden-helo]} -> ${OPEN_TH[warden-helo]}, null ${IDLE_TH[null-helo]} -> ${OPEN_TH[null-helo]} (libmilter's worker pool, not a thread per session)"
# warden's signal work runs in libmilter's signal thread (daemon.c,
# sigwait): no thread of its own, so idle it has exactly the null
# milter's (listener, signal thread, worker pool).
t_begin "threads: warden idle has as many as the null milter (no thread of its own)"
t_eq "idle threads, warden vs null" "${IDLE_TH[warden-helo]}" "${IDLE_TH[null-helo]}"
t_end
# Held sessions wait for the client: none is busy.
echo "# issue #4 threads target, 2 x $(nproc) cores + 0 busy = $((2 * $(nproc))): warden ${OPEN_TH[warden-helo]}, null milter ${OPEN_TH[null-helo]}"

# miltergen itself: malformed answers (lengths, OPTNEG, symlists, reply
# codes, replies out of place, a stall, a close inside a packet) each
# fail one session; none crashes it or hangs the run.
free_port "PORT[hostile]"
python3 tests/load/hostile_milter.py "${PORT[hostile]}" 2>"$T/hostile.log" &
PID[hostile]=$!
t_begin "miltergen: 13 malformed milter answers fail 13 sessions, no crash, no hang"
if wait_listening "${PORT[hostile]}" 20; then
	timeout 60 "$GEN" -s "inet:${PORT[hostile]}@127.0.0.1" -c 1 -n 13 \
	    --timeout 2 >"$T/hostile.out" 2>&1 </dev/null
	t_eq "exit status" $? 1
	t_eq "sessions failed" "$(field "$T/hostile.out" sessions failed)" 13
	t_eq "sessions completed" "$(field "$T/hostile.out" sessions completed)" 0
	t_eq "decisions" "$(field "$T/hostile.out" totals decisions)" 0
	t_re "$T/hostile.out" '^errors connect=0 timeout=1 closed=1 protocol=7 write=0 negotiate=4$'
else
	t_true "hostile_milter.py does not listen"
fi
t_end "$T/hostile.out" "$T/hostile.log"
stop_pid "${PID[hostile]}" 5
PID[hostile]=

t_begin "both milters logged no error, still serve, then stop cleanly on TERM"
pid_alive "${PID[warden]}" || t_true "warden died"
pid_alive "${PID[null]}" || t_true "nullmilter died"
# By PID; a sanitizer build writes its leak report at exit.
stop warden
stop null
t_eq "bad exits" "${STOP_BAD:-none}" none
t_nore "$T/warden.log" 'ERROR|error|Sanitizer|runtime error'
t_end "$T/warden.log"
finish
