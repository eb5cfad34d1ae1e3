#!/bin/bash
# tests/redis/run.sh BINARY - the Redis store (DESIGN.md §4b, issue 5)
# against a real redis-server that this script starts on a free loopback
# port in its own temp dir and stops by PID. Prints TAP.
#
#   tests/redis/run.sh src/warden           # build/libwarden.a
#   tests/redis/run.sh build/san/warden     # ASan/UBSan: build/san
#
# Parts:
#   store   tests/redis/test_store_redis.c, built here against the
#           libwarden.a next to BINARY: the GCRA case table on memory and
#           Redis, round trips, TTLs, key_secret, NOSCRIPT, 8 threads;
#           issue 5: the rules record across reconnects, a record write
#           Redis refuses (DEL renamed) with exact verdicts after it, a
#           first connect refused by maxclients (EVALSHA after, not EVAL),
#           SCRIPT LOAD tried again 5 minutes after a close, a sentinel's
#           master address logged escaped;
#           then SIGSTOP / SIGTERM / restart under a live store, a store
#           made while nothing listens, and Sentinel (master, replica,
#           sentinel; the master stopped, the store follows; the
#           sentinel wants AUTH), then nutcracker over two servers: the
#           case table, exact limits, keys on both, what the proxy
#           refused (SCRIPT LOAD only).
#   e2e     two warden daemons (A over TCP, B over the unix socket) on one
#           redis, driven with miltertest: a shared 3/1m limit, then Redis
#           stopped and paused: on_error accept / tempfail / memory, each
#           transaction within a bound, recovery without a restart;
#           then reloads of A: the fingerprint record in Redis, `warden
#           check` against it, which counters restart (and the same with
#           a memory-store warden C); warden D through rtproxy.py: one
#           round trip per stage with three limits.
# WARDEN_KEEP=1 keeps the temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
HERE=$ROOT/tests/redis
. "$ROOT/tests/lib/servers.sh"

if [ $# -ne 1 ]; then
	echo "usage: tests/redis/run.sh BINARY" >&2
	exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
B=build
MAKEFLAGS_SAN=()
case $BIN in
*/build/san/*)
	B=build/san
	MAKEFLAGS_SAN=(CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined") ;;
esac
if [ ! -x "$BIN" ]; then
	echo "Bail out! $BIN is not an executable"
	exit 1
fi
for tool in redis-server redis-cli miltertest; do
	if ! command -v $tool >/dev/null; then
		echo "Bail out! $tool is not installed (tests/lib/deps.sh)"
		exit 1
	fi
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lib/lsan.supp}
SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Sanitizer:DEADLYSIGNAL'

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-redis.XXXXXX") || exit 1
# warden started as root drops to nobody, which must read its rules.
chmod 755 "$TMP"
RUNAS=""
[ "$(id -u)" -eq 0 ] && RUNAS=nobody
REDIS_PORTS=()
declare -A PID PORT

cleanup() {
	local n p
	for n in "${!PID[@]}"; do
		[ -n "${PID[$n]}" ] && stop_pid "${PID[$n]}" 10
	done
	for p in "${REDIS_PORTS[@]}"; do
		"$HERE/redisctl.sh" stop "$TMP" "$p"
	done
	if [ "${WARDEN_KEEP:-0}" = 1 ]; then
		echo "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

redis_start() {	# redis_start PORT [options]
	REDIS_PORTS+=("$1")
	"$HERE/redisctl.sh" start "$TMP" "$@"
}
redis_pid() { cat "$TMP/$1.pid"; }

# --- TAP ------------------------------------------------------------------

N=0 FAILED=0
DETAILS=$TMP/details
tap() {	# tap OK NAME
	N=$((N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $N - $2"
	else
		FAILED=$((FAILED + 1))
		echo "not ok $N - $2"
		[ -s "$DETAILS" ] && sed 's/^/#   /' "$DETAILS"
	fi
	: >"$DETAILS"
}
detail() { printf '%s\n' "$*" >>"$DETAILS"; }

# sub LABEL CMD...: runs a TAP program, renumbers its lines into ours;
# it fails once more when it exits non-zero without a failed line or
# when a sanitizer wrote to its stderr (kept in $TMP/LABEL.err).
sub() {
	local label=$1 out=$TMP/$1.out err=$TMP/$1.err rc line f0=$FAILED
	shift
	"$@" >"$out" 2>"$err"
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "*) N=$((N + 1)); echo "ok $N - $label: ${line#* - }" ;;
		"not ok "*) N=$((N + 1)); FAILED=$((FAILED + 1))
			echo "not ok $N - $label: ${line#* - }" ;;
		"#"*) echo "$line" ;;
		"Bail out!"*) detail "$line" ;;
		esac
	done <"$out"
	if grep -E -q "$SAN_RE" "$err"; then
		grep -E -A12 "$SAN_RE" "$err" | head -40 >>"$DETAILS"
		tap 1 "$label: no sanitizer report"
	elif [ "$rc" -ne 0 ] && [ "$FAILED" -eq "$f0" ]; then
		detail "exit $rc; stderr:"
		tail -10 "$err" >>"$DETAILS"
		tap 1 "$label: exits 0"
	fi
}

# --- the store, in C ------------------------------------------------------

T_BIN=$ROOT/$B/redis/test_store_redis
build_test() {
	mkdir -p "$ROOT/$B/redis"
	make --no-print-directory -s B="$B" "${MAKEFLAGS_SAN[@]}" \
	    "$B/libwarden.a" >"$TMP/make.out" 2>&1 || return 1
	local cflags="-O2 -g"
	[ "$B" = build/san ] && cflags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	# shellcheck disable=SC2046,SC2086
	gcc -std=c11 -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	    -Wstrict-prototypes -Wold-style-definition -Wvla $cflags \
	    -D_GNU_SOURCE -pthread -Isrc $(pkg-config --cflags hiredis) \
	    -o "$T_BIN" "$HERE/test_store_redis.c" "$ROOT/$B/libwarden.a" \
	    $(pkg-config --libs libconfig libpcre2-8 hiredis openssl) \
	    -pthread >>"$TMP/make.out" 2>&1
}
if ! build_test; then
	echo "Bail out! cannot build test_store_redis:"
	sed 's/^/# /' "$TMP/make.out" | head -30
	exit 1
fi

free_port RP || { echo "Bail out! no free port"; exit 1; }
if ! redis_start "$RP" --unixsocketperm 777; then
	echo "Bail out! redis-server did not start on $RP"
	exit 1
fi
echo "# redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$RP, pid $(redis_pid "$RP")"

sub store "$T_BIN" gcra "$RP"
sub figures "$T_BIN" bench "$RP"
# Sizing (README): what one counter costs in Redis, plain and HMAC'd.
for pat in 'wb:{t-bench0|*' 'ws*'; do
	k=$(redis-cli -p "$RP" --scan --pattern "$pat" | head -1)
	[ -n "$k" ] && echo "# MEMORY USAGE $k: $(redis-cli -p "$RP" memory usage "$k") bytes (key ${#k} bytes)"
done

# Issue 5: the rules record of two stores across a reconnect; a close
# before any reply is retried with SCRIPT LOAD 5 minutes later.
sub record "$T_BIN" record "$RP"
sub probe "$T_BIN" probe "$RP"
# Two closes at SCRIPT LOAD, each ended by a load that works: a line each.
got=$(grep -c "SCRIPT LOAD answered again" "$TMP/probe.err")
[ "$got" -eq 2 ] || { detail "want 2 \"SCRIPT LOAD answered again\" lines, got $got:"; grep 'store:' "$TMP/probe.err" >>"$DETAILS"; }
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "probe: one log line each time SCRIPT LOAD works again"

# Issue 5: a record write Redis refuses (DEL renamed away) must not
# leave a reply unread on the pooled connection.
free_port DP || { echo "Bail out! no free port"; exit 1; }
if redis_start "$DP" --rename-command DEL '""'; then
	sub desync "$T_BIN" desync "$DP"
else
	tap 1 "desync: redis-server with DEL renamed starts"
fi
"$HERE/redisctl.sh" stop "$TMP" "$DP"

# Issue 5: a first connection refused (maxclients) is not a proxy that
# refuses SCRIPT LOAD. redisctl.sh's PING needs the password too.
free_port DP || { echo "Bail out! no free port"; exit 1; }
if REDISCLI_AUTH=noloadpw redis_start "$DP" --requirepass noloadpw --maxclients 1; then
	sub noload "$T_BIN" noload "$DP" noloadpw
	got=$(grep -c "closed at SCRIPT LOAD" "$TMP/noload.err")
	[ "$got" -eq 0 ] || { detail "want no \"closed at SCRIPT LOAD\" line, got $got:"; grep 'store:' "$TMP/noload.err" >>"$DETAILS"; }
	tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "noload: no log line blaming a proxy"
else
	tap 1 "noload: redis-server with maxclients 1 starts"
fi
"$HERE/redisctl.sh" stop "$TMP" "$DP"

# A second server for the failure part: it gets stopped and restarted.
free_port FP || { echo "Bail out! no free port"; exit 1; }
redis_start "$FP" || { echo "Bail out! redis-server did not start on $FP"; exit 1; }
sub fail "$T_BIN" fail "$FP" "$TMP/$FP.pid" "$HERE/redisctl.sh start $TMP $FP"
# One line per state change, not per error: three outages.
for w in "store: redis down: 3" "store: redis up: 3" "no answer within 100 ms: 2" "Connection refused (3 failures: 1"; do
	got=$(grep -c -F -- "${w%: *}" "$TMP/fail.err")
	[ "$got" -eq "${w##*: }" ] || detail "$got lines with \"${w%: *}\", want ${w##*: }"
done
[ -s "$DETAILS" ] && grep -F 'store:' "$TMP/fail.err" >>"$DETAILS"
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "fail: one log line per state change (3x down, 3x up), not per error"
"$HERE/redisctl.sh" stop "$TMP" "$FP"

sub down "$T_BIN" down "$FP"
got=$(grep -c -F "store: redis down: 127.0.0.1:$FP: connect: Connection refused (starting without it; on_error applies until it answers)" "$TMP/down.err")
[ "$got" -eq 1 ] || { detail "want 1 start-up down line, got $got:"; cat "$TMP/down.err" >>"$DETAILS"; }
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "down: one line at start, none for the failed probe"

# Issue 5: a sentinel's answer is remote text: escaped in the log.
sub sentesc "$T_BIN" sentesc 0
esc='master warden is at 127.0.0.1\x1b[31mX:6399'
got=$(grep -c -F -- "$esc" "$TMP/sentesc.err")
[ "$got" -eq 1 ] || { detail "want 1 line with \"$esc\", got $got:"; grep 'store:' "$TMP/sentesc.err" | cat -v >>"$DETAILS"; }
! grep -q $'\x1b' "$TMP/sentesc.err" || detail "a raw ESC byte in the log"
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "sentesc: the master address a sentinel names is logged escaped"

# --- Sentinel: master, replica, one sentinel; the master is stopped -------

free_port MP RP2 SP ||
    { echo "Bail out! no free port"; exit 1; }
if redis_start "$MP" && redis_start "$RP2" --replicaof 127.0.0.1 "$MP" &&
    { REDIS_PORTS+=("$SP"); "$HERE/redisctl.sh" sentinel "$TMP" "$SP" "$MP" sentpw; }; then
	for ((i = 0; i < 50; i++)); do
		redis-cli -p "$RP2" info replication | grep -q 'master_link_status:up' && break
		sleep 0.1
	done
	sub sentinel "$T_BIN" sentinel "$SP" "$MP" "$RP2" "$TMP/$MP.pid" sentpw
	grep -q "store: redis down: master warden via 1 sentinel: sentinel 127.0.0.1:$SP: no address for master warden: NOAUTH" "$TMP/sentinel.err" ||
	    { detail "no down line naming NOAUTH for the store without sentinel_password:"; grep 'store:' "$TMP/sentinel.err" >>"$DETAILS"; }
	grep -q "sentinel 127.0.0.1:$SP: AUTH: WRONGPASS" "$TMP/sentinel.err" ||
	    { detail "no down line naming WRONGPASS for the wrong sentinel_password:"; grep 'store:' "$TMP/sentinel.err" >>"$DETAILS"; }
	tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "sentinel: requirepass: the down lines say NOAUTH / WRONGPASS"
	got=$(grep -c "store: redis sentinel 127.0.0.1:$SP: master warden is at" "$TMP/sentinel.err")
	[ "$got" -eq 2 ] || { detail "want 2 \"master warden is at\" lines, got $got:"; grep 'store:' "$TMP/sentinel.err" >>"$DETAILS"; }
	grep -q "master warden is at 127.0.0.1:$RP2" "$TMP/sentinel.err" || detail "no line naming the new master 127.0.0.1:$RP2"
	tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "sentinel: one log line per master change (initial, after failover)"
else
	detail "master/replica/sentinel did not start:"
	tail -5 "$TMP/$SP.log" "$TMP/$MP.log" >>"$DETAILS" 2>/dev/null
	tap 1 "sentinel: servers start"
fi
for p in "$SP" "$RP2" "$MP"; do "$HERE/redisctl.sh" stop "$TMP" "$p"; done

# --- sharding: nutcracker (twemproxy) over two redis-servers --------------

if command -v nutcracker >/dev/null; then
	free_port S1 S2 NP NS ||
	    { echo "Bail out! no free port"; exit 1; }
	# The servers want a password, which the proxy's clients give it
	# (redis_auth): AUTH goes to the proxy, pipelined with the rest.
	export REDISCLI_AUTH=sharepw
	redis_start "$S1" --requirepass sharepw && redis_start "$S2" --requirepass sharepw ||
	    { echo "Bail out! redis-server did not start on $S1/$S2"; exit 1; }
	# Listen and stats address on loopback; hash tag "{}" as the store
	# writes it, so each counter goes whole to one server.
	cat >"$TMP/nutcracker.yml" <<-EOF
	warden:
	  listen: 127.0.0.1:$NP
	  hash: fnv1a_64
	  hash_tag: "{}"
	  distribution: ketama
	  redis: true
	  redis_auth: sharepw
	  auto_eject_hosts: false
	  timeout: 400
	  servers:
	   - 127.0.0.1:$S1:1 s1
	   - 127.0.0.1:$S2:1 s2
	EOF
	setsid nutcracker -c "$TMP/nutcracker.yml" -o "$TMP/nutcracker.log" \
	    -a 127.0.0.1 -s "$NS" </dev/null >/dev/null 2>&1 &
	PID[nutcracker]=$!
	for ((i = 0; i < 50; i++)); do
		redis-cli -p "$NP" exists 'warden-probe{x}' 2>/dev/null | grep -q '^0$' && break
		sleep 0.1
	done
	# redisctl.sh pinged the servers: count from here on.
	for p in "$S1" "$S2"; do redis-cli -p "$p" config resetstat >/dev/null; done
	sub shard "$T_BIN" shard "$NP" "$S1" "$S2" sharepw
	# What the proxy refused: SCRIPT LOAD once, then nothing (no SELECT
	# with db 0, no PING, TIME only inside the script).
	got=$(grep -c "parsed unsupported command" "$TMP/nutcracker.log")
	other=$(grep "parsed unsupported command" "$TMP/nutcracker.log" | grep -v -i -c "command 'script'")
	[ "$got" -ge 1 ] && [ "$other" -eq 0 ] ||
	    { detail "nutcracker refused $got commands, $other of them not SCRIPT:"; grep "unsupported" "$TMP/nutcracker.log" | head -5 >>"$DETAILS"; }
	got=$(grep -c "the connection closed at SCRIPT LOAD" "$TMP/shard.err")
	[ "$got" -eq 1 ] || { detail "want 1 \"closed at SCRIPT LOAD\" line, got $got:"; grep 'store:' "$TMP/shard.err" >>"$DETAILS"; }
	for p in "$S1" "$S2"; do
		for c in evalsha script select ping; do
			n=$(redis-cli -p "$p" info commandstats | grep -c "^cmdstat_$c:")
			[ "$n" -eq 0 ] || detail "server :$p saw $c"
		done
		n=$(redis-cli -p "$p" info commandstats | sed -n 's/^cmdstat_eval:calls=\([0-9]*\).*/\1/p')
		[ "${n:-0}" -gt 0 ] || detail "server :$p saw no EVAL"
	done
	tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "shard: with AUTH pipelined to the proxy, it refused only SCRIPT LOAD (one log line); the servers saw EVAL, no SELECT, PING or SCRIPT"
	stop_pid "${PID[nutcracker]}" 10
	PID[nutcracker]=
	for p in "$S1" "$S2"; do "$HERE/redisctl.sh" stop "$TMP" "$p"; done
	unset REDISCLI_AUTH
else
	echo "ok $((N + 1)) # SKIP shard: nutcracker is not installed (tests/lib/deps.sh)"
	N=$((N + 1))
fi

# --- end to end: two warden daemons on one redis --------------------------

read -r pa pb < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
PORT[A]=$pa PORT[B]=$pb
cat >"$TMP/t-redis.rules" <<'EOF'
rules = (
  { name = "t-shared"; stage = "envrcpt"; match = { auth_user = ["shared", "shared2"]; };
    limit = { key = ["auth_user"]; rate = "3/1m"; };
    action = "tempfail";
    reply = "450 4.7.1 Too many recipients from %{auth_user}, retry in %{retry_after}s"; },
  { name = "t-onerr-accept"; stage = "envrcpt"; match = { auth_user = ["acc", "acc2", "probe"]; };
    limit = { key = ["auth_user"]; rate = "1/1m"; on_error = "accept"; };
    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; },
  { name = "t-onerr-tempfail"; stage = "envrcpt"; match = { auth_user = ["tf", "tf2"]; };
    limit = { key = ["auth_user"]; rate = "100/1m"; on_error = "tempfail"; };
    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; },
  { name = "t-onerr-memory"; stage = "envrcpt"; match = { auth_user = ["mem", "mem2"]; };
    limit = { key = ["auth_user"]; rate = "2/1m"; on_error = "memory"; };
    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; }
);
EOF
for n in A B; do
	if [ $n = A ]; then
		# A also sets the breaker: its down line shows the settings.
		where="host = \"127.0.0.1\"; port = $RP; breaker_failures = 2;
		    breaker_backoff_ms = 300; breaker_backoff_max_ms = 600;"
	else
		where="socket = \"$TMP/$RP.sock\";"
	fi
	mkdir -p "$TMP/$n"
	cat >"$TMP/$n/warden.conf" <<-EOF
	milter = { socket = "inet:${PORT[$n]}@127.0.0.1"; };
	daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$RUNAS"; };
	rules = { files = [ "$TMP/t-redis.rules" ]; mode = "enforce"; };
	store = {
	  backend = "redis"; on_error = "accept";
	  redis = { $where prefix = "warden-e2e:"; pool = 4;
	            connect_timeout_ms = 200; command_timeout_ms = 100; };
	};
	EOF
	: >"$TMP/$n/log"
	"$BIN" run -c "$TMP/$n/warden.conf" >"$TMP/$n/stdout" 2>>"$TMP/$n/log" &
	PID[$n]=$!
done

# mt INSTANCE USER WANT QID: one transaction; its wall time in MT_MS.
mt() {
	local t0 t1 out=$TMP/mt.out
	t0=$(date +%s%N)
	miltertest -s "$HERE/e2e.lua" -D lib="$ROOT/tests/milter/common.lua" \
	    -D sock="inet:${PORT[$1]}@127.0.0.1" -D case=rcpts -D user="$2" \
	    -D want="$3" -D qid="$4" -D ip="192.0.2.${5:-30}" >"$out" 2>&1
	local rc=$?
	t1=$(date +%s%N)
	MT_MS=$(((t1 - t0) / 1000000))
	if [ $rc -ne 0 ] && [ -z "${QUIET:-}" ]; then
		detail "miltertest on $1 as $2 (want $3) failed:"
		sed 's/^/  /' "$out" >>"$DETAILS"
	fi
	return $rc
}
# within MS INSTANCE USER WANT QID: the same, and it took under MS ms.
within() {
	local max=$1
	shift
	mt "$@" || return 1
	[ "$MT_MS" -lt "$max" ] || detail "$2 on $1: transaction took $MT_MS ms, want < $max"
}
logline() {	# logline INSTANCE ERE: a line of its log matches
	grep -E -q -- "$2" "$TMP/$1/log" && return 0
	detail "log $1: no line matching: $2"
	tail -5 "$TMP/$1/log" | sed 's/^/    /' >>"$DETAILS"
	return 1
}
count() {	# count INSTANCE FIXED WANT
	local got
	got=$(grep -c -F -- "$2" "$TMP/$1/log")
	[ "$got" -eq "$3" ] || detail "log $1: $got lines with \"$2\", want $3"
}
alive() {
	local n
	for n in A B; do
		pid_alive "${PID[$n]}" || detail "warden $n died; log: $(tail -3 "$TMP/$n/log")"
	done
	if grep -E -q "$SAN_RE" "$TMP/A/log" "$TMP/B/log"; then
		detail "sanitizer report:"
		grep -E -h -A10 "$SAN_RE" "$TMP/A/log" "$TMP/B/log" | head -30 >>"$DETAILS"
	fi
}
result() { alive; tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "$1"; }

for n in A B; do
	wait_grep 20 "$TMP/$n/log" "start: warden listening on inet:${PORT[$n]}@127.0.0.1, files=1 rules=4 store=redis" ||
	    detail "warden $n did not start: $(tail -3 "$TMP/$n/log")"
done
logline A "store: redis 127.0.0.1:$RP: connected, pool of 4"
logline B "store: redis unix:$TMP/$RP.sock: connected, pool of 4"
result "e2e: two wardens start with store.backend redis (A over TCP, B over the unix socket)"
if ! pid_alive "${PID[A]}" || ! pid_alive "${PID[B]}"; then
	echo "Bail out! warden did not start"
	exit 1
fi

ev0=$(redis-cli -p "$RP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
mt A shared cc QSH1
mt B shared cy QSH2
mt A shared y QSH3
logline B "^warden\[${PID[B]}\]: QSH2: tempfail rule=t-shared stage=envrcpt client=\[192\.0\.2\.30\]:[0-9]+ port=25 helo=<client\.example\.net> from=<shared@example\.com> to=<r2@example\.net> user=shared reply=\"450 4\.7\.1 Too many recipients from shared, retry in (19|20)s\"$"
logline A "QSH3: tempfail rule=t-shared .* reply=\"450 4\.7\.1 Too many recipients from shared, retry in (19|20)s\"$"
ev1=$(redis-cli -p "$RP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
# 4 charged RCPTs reach Redis; A's refused 5th too (A never saw a refusal).
[ $((ev1 - ev0)) -eq 5 ] || detail "EVALSHA calls: $((ev1 - ev0)), want 5 (one per RCPT)"
key=$(redis-cli -p "$RP" --scan --pattern 'warden-e2e:{t-shared|shared}:*')
ttl=$(redis-cli -p "$RP" pttl "$key")
[ "${ttl:-0}" -gt 0 ] && [ "$ttl" -le 60000 ] || detail "PTTL $key = $ttl, want 1..60000"
result "e2e: 3/1m shared by two wardens: RCPTs 1-2 on A, 3 on B pass, 4 on B and 5 on A get 450 4.7.1 (one EVALSHA per RCPT, key has a TTL)"

# outage MODE: TERM (stopped) or STOP (paused)
outage_checks() {	# outage_checks TAG: on_error accept, tempfail, memory
	local tag=$1 acc=acc tf=tf mem=mem
	[ "$tag" = paused ] && acc=acc2 tf=tf2 mem=mem2
	within 2000 A "$acc" ccc "Q${tag}ACC" 31
	within 2000 A "$tf" y "Q${tag}TF" 32
	within 2000 A "$mem" ccy "Q${tag}MEM" 33
	# store-error lines: one a minute (daemon.c), so the first outage only
	[ "$tag" = stopped ] &&
	    logline A "Q${tag}ACC: store-error on_error=accept rule=t-onerr-accept stage=envrcpt"
	logline A "Q${tag}TF: tempfail rule=t-onerr-tempfail stage=envrcpt .* reply=\"451 4\.3\.0 Temporary policy failure, try again later\"$"
	logline A "Q${tag}MEM: tempfail rule=t-onerr-memory stage=envrcpt .* to=<r3@example\.net> user=$mem reply=\"450 4\.7\.1 Slow down, $mem\"$"
}
# wait_up INSTANCE N: traffic until the Nth "store: redis up" (bounded).
wait_up() {
	local i
	for ((i = 0; i < 80; i++)); do
		[ "$(grep -c 'store: redis up' "$TMP/$1/log")" -ge "$2" ] && return 0
		QUIET=1 mt "$1" probe c QPROBE 34
		sleep 0.5
	done
	detail "warden $1: no \"store: redis up\" #$2 within 40 s"
	return 1
}

"$HERE/redisctl.sh" stop "$TMP" "$RP"
outage_checks stopped
count A "store: redis down:" 1
logline A "store: redis down: 127\.0\.0\.1:$RP: .* \(2 failures in a row; on_error applies, next try in 300 ms\)"
result "e2e: redis stopped: on_error accept -> continue, tempfail -> 451 4.3.0, memory -> local 2/1m; each transaction < 2 s; one down line, after breaker_failures=2, back-off 300 ms"

redis_start "$RP" --unixsocketperm 777 || detail "redis-server did not restart"
wait_up A 1
mt A shared2 ccc QSH4
mt B shared2 y QSH5
count A "store: redis up" 1
result "e2e: redis restarted: A recovers without a restart (one up line), counters shared again (4th RCPT on B refused)"

kill -STOP "$(redis_pid "$RP")"
outage_checks paused
count A "store: redis down:" 2
kill -CONT "$(redis_pid "$RP")"
result "e2e: redis paused (SIGSTOP): the same on_error answers, each transaction < 2 s"
wait_up A 2
mt A shared2 y QSH6
result "e2e: SIGCONT: A recovers, shared counter still there (5th RCPT refused)"

# --- reload: which counters restart (rulefp.c) ----------------------------

# rules_v2 SHARED-USERS ACC-USERS ACC-RATE TEMPFAIL(1/0) NEW(1/0): A's own
# rules file; only what a reload test needs changes from t-redis.rules.
rules_v2() {
	{
	echo 'rules = ('
	echo "  { name = \"t-shared\"; stage = \"envrcpt\"; match = { auth_user = [$1]; };"
	echo '    limit = { key = ["auth_user"]; rate = "3/1m"; };'
	echo '    action = "tempfail"; reply = "450 4.7.1 Too many recipients from %{auth_user}, retry in %{retry_after}s"; },'
	echo "  { name = \"t-onerr-accept\"; stage = \"envrcpt\"; match = { auth_user = [$2]; };"
	echo "    limit = { key = [\"auth_user\"]; rate = \"$3\"; on_error = \"accept\"; };"
	echo '    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; },'
	if [ "$4" = 1 ]; then
		echo '  { name = "t-onerr-tempfail"; stage = "envrcpt"; match = { auth_user = ["tf", "tf2"]; };'
		echo '    limit = { key = ["auth_user"]; rate = "100/1m"; on_error = "tempfail"; };'
		echo '    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; },'
	fi
	if [ "$5" = 1 ]; then
		echo '  { name = "t-new"; stage = "envrcpt"; match = { auth_user = ["new"]; };'
		echo '    limit = { key = ["client_net", "auth_user"]; rate = "5/1h"; };'
		echo '    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; },'
	fi
	echo '  { name = "t-onerr-memory"; stage = "envrcpt"; match = { auth_user = ["mem", "mem2"]; };'
	echo '    limit = { key = ["auth_user"]; rate = "2/1m"; on_error = "memory"; };'
	echo '    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; }'
	echo ');'
	} >"$TMP/A/t-redis.rules"
}
# reload_a N: SIGHUP to A, bounded wait for its Nth "reload: ok" line.
reload_a() {
	local i
	kill -HUP "${PID[A]}"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c 'reload: ok' "$TMP/A/log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	detail "A: no reload line #$1: $(tail -3 "$TMP/A/log")"
	return 1
}
# check_kept TAG: `warden check` on A's config says every counter stays.
check_kept() {
	"$BIN" check -c "$TMP/A/warden.conf" >"$TMP/check-$1.out" 2>&1
	grep -q -x "counters on reload: all $2 kept (compared with the running daemon's record in Redis)" "$TMP/check-$1.out" && return 0
	detail "warden check ($1): want \"all $2 kept\", got:"
	grep counters "$TMP/check-$1.out" >>"$DETAILS"
}
KEPT_WANT="t-shared key=auth_user rate=3/60s burst=3 t-onerr-accept key=auth_user rate=1/60s burst=1 t-onerr-tempfail key=auth_user rate=100/60s burst=100 t-onerr-memory key=auth_user rate=2/60s burst=2"
fps=$(redis-cli -p "$RP" hgetall warden-e2e:rules | paste -sd' ')
[ "$fps" = "$KEPT_WANT" ] || detail "HGETALL warden-e2e:rules: got \"$fps\", want \"$KEPT_WANT\""
check_kept same 4
result "reload: the daemon records its rules' fingerprints (prefix + rules); check with the same rules: all 4 kept"

# v1: only who matches changes (shared3, acc3 added): every counter kept.
sed -i "s|\"$TMP/t-redis.rules\"|\"$TMP/A/t-redis.rules\"|" "$TMP/A/warden.conf"
rules_v2 '"shared", "shared2", "shared3"' '"acc", "acc2", "probe", "acc3"' 1/1m 1 0
check_kept matches 4
reload_a 1
count A "reload: counters restart" 0
mt A shared3 cc QRL1
mt A acc3 cy QRL2
result "reload: matches changed, limits not: check says all kept, no restart line"

# v2: t-onerr-accept 1/1m -> 2/1m, t-onerr-tempfail gone, t-new new.
rules_v2 '"shared", "shared2", "shared3"' '"acc", "acc2", "probe", "acc3"' 2/1m 0 1
"$BIN" check -c "$TMP/A/warden.conf" >"$TMP/check-v2.out" 2>&1
rc=$?
[ $rc -eq 0 ] || detail "warden check exited $rc"
grep counters "$TMP/check-v2.out" >"$TMP/check-v2.got"
{
	echo "counters restart on reload: rule=t-onerr-accept (rate 1/60s -> 2/60s, burst 1 -> 2)"
	echo "counters start (new rule) on reload: rule=t-new (key=client_net,auth_user rate=5/3600s burst=5 ipv4_prefix=24 ipv6_prefix=64)"
	echo "counters end (rule gone) on reload: rule=t-onerr-tempfail (key=auth_user rate=100/60s burst=100)"
} >"$TMP/check-v2.want"
diff "$TMP/check-v2.want" "$TMP/check-v2.got" >>"$DETAILS" || detail "(warden check against the running daemon: -want +got)"
result "reload: warden check lists the counters that would restart, start and end; exit 0"

reload_a 2
count A "reload: counters restart" 1
logline A "reload: counters restart for rule=t-onerr-accept \(rate 1/60s -> 2/60s, burst 1 -> 2\)$"
# shared3 kept its counter (2 of 3 used); acc3's restarts under 2/1m: a
# kept one (1 charge at T=60s) would refuse at once under T=30s, B=2.
mt A shared3 cy QRL3
mt A acc3 ccy QRL4
fps=$(redis-cli -p "$RP" hget warden-e2e:rules t-onerr-accept)
[ "$fps" = "key=auth_user rate=2/60s burst=2" ] || detail "the record after the reload: t-onerr-accept \"$fps\""
check_kept after 4
result "reload: one line names the restarted rule; its counter starts afresh (2 pass), the unchanged rule's goes on (3rd passes, 4th refused); the record follows"

# --- reload with the memory store: the log line is the record -------------

free_port "PORT[C]" || { echo "Bail out! no free port"; exit 1; }
mkdir -p "$TMP/C"
mem_rules() {	# mem_rules USERS RATE
	cat >"$TMP/C/t.rules" <<-EOF
	rules = (
	  { name = "t-mem"; stage = "envrcpt"; match = { auth_user = [$1]; };
	    limit = { key = ["auth_user"]; rate = "$2"; };
	    action = "tempfail"; reply = "450 4.7.1 Slow down, %{auth_user}"; }
	);
	EOF
}
mem_rules '"m1"' 2/1m
cat >"$TMP/C/warden.conf" <<-EOF
milter = { socket = "inet:${PORT[C]}@127.0.0.1"; };
daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$RUNAS"; };
rules = { files = [ "$TMP/C/t.rules" ]; };
store = { backend = "memory"; };
EOF
: >"$TMP/C/log"
"$BIN" run -c "$TMP/C/warden.conf" >"$TMP/C/stdout" 2>>"$TMP/C/log" &
PID[C]=$!
wait_grep 20 "$TMP/C/log" "start: warden listening on inet:${PORT[C]}@127.0.0.1" ||
    detail "warden C did not start: $(tail -3 "$TMP/C/log")"
# reload_c N: SIGHUP to C, bounded wait for its Nth "reload: ok" line.
reload_c() {
	local i
	kill -HUP "${PID[C]}"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c 'reload: ok' "$TMP/C/log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	detail "C: no reload line #$1: $(tail -3 "$TMP/C/log")"
}
mt C m1 cc QMR1
mem_rules '"m1", "m2"' 2/1m
reload_c 1
mt C m1 y QMR2
count C "reload: counters restart" 0
mem_rules '"m1", "m2"' 3/1m
reload_c 2
mt C m1 cccy QMR3
count C "reload: counters restart" 1
logline C "reload: counters restart for rule=t-mem \(rate 2/60s -> 3/60s, burst 2 -> 3\)$"
pid_alive "${PID[C]}" || detail "warden C died: $(tail -3 "$TMP/C/log")"
stop_pid "${PID[C]}" 10
PID[C]=
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "reload, memory store: matches changed -> counter kept (3rd refused); rate 2/1m -> 3/1m -> one restart line, a fresh counter (3 pass)"

# --- one round trip per stage, through the daemon --------------------------

# warden D reaches redis through rtproxy.py, which counts exchanges; one
# RCPT stage charges three limits.
python3 "$HERE/rtproxy.py" "$TMP/rt.port" "$TMP/rt.count" "$RP" </dev/null >"$TMP/rt.log" 2>&1 &
PID[rtproxy]=$!
for ((i = 0; i < 50; i++)); do [ -s "$TMP/rt.port" ] && break; sleep 0.1; done
free_port "PORT[D]" || { echo "Bail out! no free port"; exit 1; }
mkdir -p "$TMP/D"
cat >"$TMP/D/t.rules" <<-'EOF'
rules = (
  { name = "rt-user"; stage = "envrcpt"; match = { auth_user = "rt"; };
    limit = { key = ["auth_user"]; rate = "100/1m"; }; action = "tempfail"; },
  { name = "rt-ip"; stage = "envrcpt"; match = { auth_user = "rt"; };
    limit = { key = ["client_ip"]; rate = "200/1h"; }; action = "tempfail"; },
  { name = "rt-domain"; stage = "envrcpt"; match = { auth_user = "rt"; };
    limit = { key = ["rcpt_domain"]; rate = "50/1m"; }; action = "tempfail"; }
);
EOF
cat >"$TMP/D/warden.conf" <<-EOF
milter = { socket = "inet:${PORT[D]}@127.0.0.1"; };
daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$RUNAS"; };
rules = { files = [ "$TMP/D/t.rules" ]; };
store = { backend = "redis";
  redis = { host = "127.0.0.1"; port = $(cat "$TMP/rt.port"); prefix = "warden-rt:"; pool = 1; }; };
EOF
: >"$TMP/D/log"
"$BIN" run -c "$TMP/D/warden.conf" >"$TMP/D/stdout" 2>>"$TMP/D/log" &
PID[D]=$!
wait_grep 20 "$TMP/D/log" "start: warden listening on inet:${PORT[D]}@127.0.0.1" ||
    detail "warden D did not start: $(tail -3 "$TMP/D/log")"
evalsha() { redis-cli -p "$RP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p'; }
t0=$(cat "$TMP/rt.count") ev0=$(evalsha)
mt D rt ccc QRT1
t1=$(cat "$TMP/rt.count") ev1=$(evalsha)
[ $((t1 - t0)) -eq 3 ] || detail "round trips through the proxy: $((t1 - t0)), want 3 (one per RCPT stage)"
[ $((ev1 - ev0)) -eq 9 ] || detail "EVALSHA calls: $((ev1 - ev0)), want 9 (3 limits x 3 RCPTs)"
pid_alive "${PID[D]}" || detail "warden D died: $(tail -3 "$TMP/D/log")"
stop_pid "${PID[D]}" 10
PID[D]=
stop_pid "${PID[rtproxy]}" 5
PID[rtproxy]=
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "round trips: 3 RCPT stages with 3 limits each: 3 round trips on the wire, 9 EVALSHA"

from=$(stat -c %s "$TMP/A/log")
kill -USR1 "${PID[A]}"
for ((i = 0; i < 50; i++)); do
	tail -c +"$((from + 1))" "$TMP/A/log" | grep -q 'stats: rule=t-onerr-memory' && break
	sleep 0.1
done
line=$(tail -c +"$((from + 1))" "$TMP/A/log" | grep 'stats: uptime=')
echo "# A: ${line#*stats: }"
[[ $line =~ store_errors=[1-9][0-9]*\  ]] || detail "no store_errors > 0: $line"
# mem: 3 RCPTs, mem2: 3 RCPTs, each charged to the fallback store
[[ $line =~ store_fallbacks=6\  ]] || detail "want store_fallbacks=6: $line"
result "e2e: stats line: store_errors > 0, store_fallbacks = 6 (on_error=memory charges)"

for n in A B; do
	stop_pid "${PID[$n]}" 10
	[ "$STOP_RC" -eq 0 ] || detail "warden $n exited $STOP_RC"
	PID[$n]=
	grep -q 'stop: warden exiting' "$TMP/$n/log" || detail "log $n: no stop line"
done
if grep -E -q "$SAN_RE" "$TMP/A/log" "$TMP/B/log"; then
	detail "sanitizer report:"
	grep -E -h -A10 "$SAN_RE" "$TMP/A/log" "$TMP/B/log" | head -30 >>"$DETAILS"
fi
tap $([ -s "$DETAILS" ] && echo 1 || echo 0) "e2e: SIGTERM: both stop cleanly (exit 0, no sanitizer report)"

echo "1..$N"
[ $FAILED -eq 0 ]
