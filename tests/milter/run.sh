#!/bin/bash
# tests/milter/run.sh BINARY - protocol-level tests of warden (DESIGN.md
# §4, §4a, §5, §6), driven with miltertest (Lua scripts in this
# directory) and milter_raw.py (what miltertest cannot: reply text before
# EOM, values over ~1 KB, the requested macro lists). Prints TAP.
#
#   tests/milter/run.sh src/warden
#   tests/milter/run.sh build/san/warden        # ASan/UBSan build
#   WARDEN_VALGRIND=1 tests/milter/run.sh src/warden
#
# Two warden instances run on free loopback ports, each in this run's
# temp dir with its own config and log (daemon.log = "stderr"):
#   A: the shipped rules/*.rules + A/t-main.rules (test rules, small rates)
#   B: rules/submission.rules + B/t-reload.rules (negotiation, reload)
# They are stopped by PID (TERM, bounded wait, KILL) on exit, also when
# a test fails. Every scenario also fails when a sanitizer or valgrind
# reported something in the meantime, or when an instance died.
# WARDEN_KEEP=1 keeps the temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
HERE=$ROOT/tests/milter

if [ $# -ne 1 ]; then
	echo "usage: tests/milter/run.sh BINARY" >&2
	exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
if [ ! -x "$BIN" ]; then
	echo "Bail out! $BIN is not an executable"
	exit 1
fi
for tool in miltertest python3; do
	if ! command -v $tool >/dev/null; then
		echo "Bail out! $tool is not installed (tests/lib/deps.sh)"
		exit 1
	fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-milter.XXXXXX") || exit 1
# Started as root, warden drops to daemon.user, which must still read
# the rules at reload.
chmod 755 "$TMP"
RUNAS=""
[ "$(id -u)" -eq 0 ] && RUNAS=nobody
declare -A PID PORT STATUS
WRAP=()
START_SECS=10 STOP_SECS=10
if [ "${WARDEN_VALGRIND:-0}" = 1 ]; then
	WRAP=(valgrind --error-exitcode=99 --leak-check=full
	    --errors-for-leak-kinds=definite)
	START_SECS=60 STOP_SECS=60
fi
# Sanitizer reports go to stderr, which is the warden log.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# stop NAME: TERM, wait (bounded), KILL; records the exit status.
stop() {
	local n=$1 p=${PID[$1]:-} i
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	for ((i = 0; i < STOP_SECS * 10; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		echo "# $n (pid $p) still running after ${STOP_SECS}s: KILL"
		kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	STATUS[$n]=$?
	PID[$n]=
}

cleanup() {
	local n
	for n in "${!PID[@]}"; do
		[ -n "${PID[$n]}" ] && kill -TERM "${PID[$n]}" 2>/dev/null
	done
	for n in "${!PID[@]}"; do stop "$n"; done
	if [ "${WARDEN_KEEP:-0}" = 1 ]; then
		echo "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

# Ports for A and B; the instances the scenarios start later (S, O, P
# here, C and D in metrics.sh and matrix.sh) draw theirs the same way.
. "$ROOT/tests/lib/servers.sh"
free_port "PORT[A]" "PORT[B]"

# --- configuration and rules ---------------------------------------------

mkdir -p "$TMP/A" "$TMP/B"
conf() {	# conf NAME FILES...
	local n=$1 f files=""
	shift
	for f in "$@"; do files="$files${files:+, }\"$f\""; done
	cat >"$TMP/$n/warden.conf" <<-EOF
	milter = { socket = "inet:${PORT[$n]}@127.0.0.1"; };
	daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$RUNAS"; };
	rules = { files = [ $files ]; mode = "enforce"; };
	store = { backend = "memory"; on_error = "accept"; };
	EOF
}
conf A "$ROOT/rules/*.rules" "t-*.rules"
conf B "$ROOT/rules/submission.rules" "t-*.rules"

# Test rules next to the shipped ones. Client networks keep scenarios
# apart: counters are per network or per user and live as long as warden.
cat >"$TMP/A/t-main.rules" <<'EOF'
rules = (
  { name = "t-accept-connect"; stage = "connect";
    match = { client = ["10.88.0.0/16"]; }; action = "accept"; },
  { name = "t-harvest-net-connect"; stage = "connect";
    match = { client = ["10.77.0.0/16"]; };
    limit = { key = ["client_net"]; rate = "3/1h"; counter = "t-harvest-net"; charge = false; };
    action = "tempfail"; reply = "421 4.7.0"; },
  { name = "t-idle"; stage = "envfrom"; match = { sender = "never@invalid"; };
    action = "reject"; },
  { name = "t-discard"; stage = "envfrom"; match = { sender = "discard@example.org"; };
    action = "discard"; },
  { name = "t-multiline"; stage = "envfrom"; match = { sender = "multi@example.org"; };
    action = "reject";
    reply = [ "550 5.7.1 first line", "550 5.7.1 second line for %{sender}" ]; },
  { name = "t-percent-mail"; stage = "envfrom"; match = { sender = "pct-mail@example.org"; };
    action = "reject"; reply = "550 5.7.1 100% sure, %{rule} at 50%"; },
  { name = "t-echo-helo"; stage = "envfrom"; match = { sender = "echo@example.org"; };
    action = "reject"; reply = "550 5.7.1 Go away %{helo}"; },
  { name = "t-quarantine-early"; stage = "envfrom";
    match = { sender = "quar-early@example.org"; }; action = "quarantine"; },
  { name = "t-harvest-net-rcpt"; stage = "envrcpt";
    match = { client = ["10.77.0.0/16"]; rcpt_rejected = true; };
    limit = { key = ["client_net"]; rate = "3/1h"; counter = "t-harvest-net"; };
    action = "tempfail";
    reply = "421 4.7.0 Too many invalid recipients from your network, try again in %{retry_after} seconds"; },
  { name = "t-rcpt-rate"; stage = "envrcpt";
    match = { auth = true; auth_user = ["ratetest", "wirerate"]; };
    limit = { key = ["auth_user"]; rate = "3/1m"; };
    action = "tempfail";
    reply = "450 4.7.1 Too many recipients from %{auth_user}, retry in %{retry_after}s"; },
  { name = "t-dryrun"; stage = "envrcpt"; match = { rcpt = "dry@example.org"; };
    action = "reject"; reply = "550 5.7.1 Recipient %{rcpt} refused"; mode = "dry-run"; },
  { name = "t-tag"; stage = "eom"; match = { sender = "tag@example.org"; };
    action = "tag"; add_header = "X-Warden: %{rule} %{queue_id}"; },
  { name = "t-quarantine"; stage = "eom"; match = { sender = "quar@example.org"; };
    action = "quarantine"; },
  { name = "t-percent"; stage = "eom"; match = { sender = "pct@example.org"; };
    action = "reject"; reply = "550 5.7.1 100% sure, %{rule} at 50%"; },
  { name = "t-multiline-eom"; stage = "eom"; match = { sender = "mleom@example.org"; };
    action = "reject";
    reply = ( "550 5.7.1 first line", "second line, rule %{rule}" ); }
);
EOF

# B: version 1 live; v2 and a broken version for the reload scenarios.
# The broken one's error is on line 7 (tempfail with a 5xx reply).
reload_rules() {	# reload_rules TEXT [EXTRA-RULE]
	printf '%s\n' "rules = (" "  {" "    name   = \"t-reload\";" \
	    "    stage  = \"envfrom\";" \
	    "    match  = { sender = \"reload@example.org\"; };" \
	    "    action = \"${3:-reject}\";" "    reply  = \"$1\";" "  }$2" ");"
}
reload_rules "550 5.7.1 Reload version one" "" >"$TMP/B/t-reload.rules"
cp "$TMP/B/t-reload.rules" "$TMP/B/v1.rules"
reload_rules "550 5.7.1 Reload version two" ",
  { name = \"t-reload-unknown\"; stage = \"unknown\"; match = { command = \"EXPN\"; };
    action = \"tempfail\"; reply = \"421 4.7.0 No EXPN here\"; }" \
    >"$TMP/B/v2.rules"
reload_rules "550 5.7.1 Reload version three" "" tempfail >"$TMP/B/broken.rules"

# --- the daemons ----------------------------------------------------------

start() {	# start NAME
	local n=$1 i
	# O_APPEND: whatever else writes there (a sanitizer) is not overwritten.
	: >"$TMP/$n/log"
	if [ ${#WRAP[@]} -gt 0 ]; then
		"${WRAP[@]}" --log-file="$TMP/$n/valgrind.log" \
		    "$BIN" run -c "$TMP/$n/warden.conf" \
		    >"$TMP/$n/stdout" 2>>"$TMP/$n/log" &
	else
		"$BIN" run -c "$TMP/$n/warden.conf" \
		    >"$TMP/$n/stdout" 2>>"$TMP/$n/log" &
	fi
	PID[$n]=$!
}
listening() {	# listening NAME: 0 once the port accepts (bounded)
	local n=$1 i
	for ((i = 0; i < START_SECS * 10; i++)); do
		kill -0 "${PID[$n]}" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$n]}") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- TAP ------------------------------------------------------------------

N=0 FAILED=0
DETAILS=$TMP/details
declare -A SEEN	# bytes of each log already checked for sanitizer reports
SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Sanitizer:DEADLYSIGNAL|Sanitizer has encountered a fatal error'
VG_RE='Invalid (read|write|free)|uninitialised|Mismatched free|Syscall param|Source and destination overlap|definitely lost in'

# detail TEXT...: one line of failure detail for the current scenario.
detail() { printf '%s\n' "$*" >>"$DETAILS"; }

# new_reports: sanitizer/valgrind text that appeared since the last call.
new_reports() {
	local n f size rc=0
	for n in A B; do
		for f in "$TMP/$n/log" "$TMP/$n/valgrind.log"; do
			[ -f "$f" ] || continue
			size=$(stat -c %s "$f")
			if tail -c +"$((${SEEN[$f]:-0} + 1))" "$f" |
			    grep -E -q "$SAN_RE|$VG_RE"; then
				detail "$f: sanitizer/valgrind report:"
				tail -c +"$((${SEEN[$f]:-0} + 1))" "$f" |
				    grep -E -A8 "$SAN_RE|$VG_RE" | head -30 |
				    sed 's/^/  /' >>"$DETAILS"
				rc=1
			fi
			SEEN[$f]=$size
		done
	done
	return $rc
}

# scenario NAME FUNC: runs FUNC (which returns non-zero or calls detail
# on failure) and prints one TAP line.
scenario() {
	local name=$1 fn=$2 rc n
	: >"$DETAILS"
	$fn
	rc=$?
	[ -s "$DETAILS" ] && rc=1
	new_reports || rc=1
	if [ "$fn" != t_shutdown ]; then
		for n in A B; do
			if ! kill -0 "${PID[$n]:-0}" 2>/dev/null; then
				detail "warden $n is not running any more; its log ends:"
				tail -5 "$TMP/$n/log" | sed 's/^/  /' >>"$DETAILS"
				rc=1
			fi
		done
	fi
	N=$((N + 1))
	if [ $rc -eq 0 ]; then
		echo "ok $N - $name"
	else
		FAILED=$((FAILED + 1))
		echo "not ok $N - $name"
		[ -s "$DETAILS" ] || detail "(failed without details)"
		sed 's/^/#   /' "$DETAILS"
	fi
}

# mt SCRIPT CASE INSTANCE [-D ...]: one miltertest run; its output goes
# to the details on failure.
mt() {
	local script=$1 case=$2 n=$3 out=$TMP/mt.out
	shift 3
	if miltertest -s "$HERE/$script" -D lib="$HERE/common.lua" \
	    -D sock="inet:${PORT[$n]}@127.0.0.1" -D case="$case" "$@" \
	    >"$out" 2>&1; then
		return 0
	fi
	detail "miltertest $script $case failed:"
	sed 's/^/  /' "$out" >>"$DETAILS"
	return 1
}

raw() {	# raw INSTANCE SCENARIO: milter_raw.py
	local out=$TMP/raw.out
	if python3 "$HERE/milter_raw.py" "${PORT[$1]}" "$2" >"$out" 2>&1; then
		return 0
	fi
	detail "milter_raw.py $2 failed:"
	sed 's/^/  /' "$out" >>"$DETAILS"
	return 1
}

# line N TEXT: the log of instance N has exactly this decision line.
line() {
	local n=$1 want="warden[${PID[$1]}]: $2"
	grep -F -x -q -- "$want" "$TMP/$n/log" && return 0
	detail "log $n: no line:"
	detail "  $want"
	local key=${2%%:*}
	case $key in NOQUEUE) key=${2#*client=}; key=${key%% *} ;; esac
	if grep -F -q -- "$key" "$TMP/$n/log"; then
		detail "  lines with $key:"
		grep -F -- "$key" "$TMP/$n/log" | head -5 | cut -c1-600 |
		    sed 's/^/    /' >>"$DETAILS"
	fi
	return 1
}

# wait_log N TEXT: like line, waiting up to START_SECS for it.
wait_log() {
	local i
	for ((i = 0; i < START_SECS * 10; i++)); do
		grep -F -x -q -- "warden[${PID[$1]}]: $2" "$TMP/$1/log" && return 0
		kill -0 "${PID[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	line "$@"
}

# nolines N FIXED: no log line of instance N contains FIXED.
nolines() {
	grep -F -q -- "$2" "$TMP/$1/log" || return 0
	detail "log $1: unexpected lines with $2:"
	grep -F -- "$2" "$TMP/$1/log" | head -5 | sed 's/^/    /' >>"$DETAILS"
	return 1
}

# count N FIXED WANT: exactly WANT lines contain FIXED.
count() {
	local got
	got=$(grep -F -c -- "$2" "$TMP/$1/log")
	[ "$got" -eq "$3" ] && return 0
	detail "log $1: $got lines with \"$2\", want $3"
	grep -F -- "$2" "$TMP/$1/log" | head -5 | sed 's/^/    /' >>"$DETAILS"
	return 1
}

# --- scenarios ------------------------------------------------------------

C=client=
t_start() {
	local n
	start A
	start B
	for n in A B; do
		if ! listening $n; then
			detail "warden $n did not accept on port ${PORT[$n]} within ${START_SECS}s; log:"
			sed 's/^/  /' "$TMP/$n/log" | head -20 >>"$DETAILS"
			continue
		fi
	done
	# The port accepts a moment before the line is written.
	wait_log A "start: warden listening on inet:${PORT[A]}@127.0.0.1, files=4 rules=25 store=memory"
	wait_log B "start: warden listening on inet:${PORT[B]}@127.0.0.1, files=2 rules=4 store=memory"
}

t_neg_main() {
	mt negotiate.lua main A
	raw A symlist
}
t_neg_minimal() { mt negotiate.lua minimal B; }

t_sub_noauth() {
	mt submission.lua no_auth_587 A
	line A "QSUBNOAUTH: reject rule=submission-requires-auth stage=envfrom ${C}[192.0.2.10]:12345 port=587 helo=<client.example.net> from=<alice@example.com> reply=\"530 5.7.0 Authentication required\""
}
t_sub_notls() {
	mt submission.lua auth_no_tls A
	line A "QSUBNOTLS: reject rule=auth-requires-tls stage=envfrom ${C}[192.0.2.11]:12345 port=587 helo=<client.example.net> from=<alice@example.com> user=alice reply=\"538 5.7.11 Encryption required for requested authentication mechanism\""
}
t_sub_tls() {
	mt submission.lua auth_tls A
	# Only the shipped dry-run rule speaks (senders.map is empty).
	line A "QSUBTLS: dryrun would=reject rule=sender-login-mismatch stage=envfrom ${C}[192.0.2.12]:12345 port=587 helo=<client.example.net> from=<alice@example.com> user=alice reply=\"553 5.7.1 Sender address rejected: not owned by user alice\""
	count A "[192.0.2.12]" 1
}
t_sub_port25() {
	mt submission.lua port25 A
	nolines A "[192.0.2.13]"
}
t_wire() { raw A wire_replies; }

t_harv_unknown() {
	mt harvest.lua unknown A
	line A "QHARVUNK: tempfail rule=harvest-unknown-commands stage=unknown ${C}[203.0.113.5]:12345 port=25 helo=<harvester.example> from=<h@harvester.example> command=EXPN reply=\"421 4.7.0 Too many unrecognized commands, closing connection\""
}
t_harv_bad() {
	mt harvest.lua bad_rcpts A
	line A "QHARVBAD: tempfail rule=harvest-bad-rcpts-session stage=envrcpt ${C}[198.51.100.5]:12345 port=25 helo=<harvester.example> from=<h@harvester.example> to=<nobody6@example.net> reply=\"421 4.7.0 Too many invalid recipients, closing connection\""
}
t_harv_net() {
	mt harvest.lua net A
	line A "NOQUEUE: tempfail rule=t-harvest-net-connect stage=connect ${C}[10.77.1.200]:12345 port=25 reply=\"421 4.7.0\""
	line A "QHARVNET: tempfail rule=t-harvest-net-rcpt stage=envrcpt ${C}[10.77.1.5]:12345 port=25 helo=<harvester.example> from=<h@harvester.example> to=<nobody4@example.net> reply=\"421 4.7.0 Too many invalid recipients from your network, try again in 1200 seconds\""
	nolines A "[10.77.2.1]"
}

t_rate() {
	mt actions.lua ratelimit A
	local r
	for r in 4 5; do
		line A "QRATE: tempfail rule=t-rcpt-rate stage=envrcpt ${C}[192.0.2.20]:12345 port=587 helo=<client.example.net> from=<ratetest@example.com> to=<r$r@example.net> user=ratetest reply=\"450 4.7.1 Too many recipients from ratetest, retry in 20s\""
	done
	count A "QRATE: tempfail" 2
}
t_dryrun() {
	mt actions.lua dryrun A
	line A "QDRY: dryrun would=reject rule=t-dryrun stage=envrcpt ${C}[192.0.2.21]:12345 port=25 helo=<client.example.net> from=<s@example.com> to=<dry@example.org> reply=\"550 5.7.1 Recipient dry@example.org refused\""
	count A "[192.0.2.21]" 1
}
t_tag() {
	mt actions.lua tag A
	line A "QTAG: tag rule=t-tag stage=eom ${C}[192.0.2.22]:12345 port=25 helo=<client.example.net> from=<tag@example.org>"
}
t_quarantine() {
	mt actions.lua quarantine A
	line A "QQUAR: quarantine rule=t-quarantine stage=eom ${C}[192.0.2.23]:12345 port=25 helo=<client.example.net> from=<quar@example.org>"
	line A "QQUAR2: quarantine rule=t-quarantine-early stage=envfrom ${C}[192.0.2.23]:12345 port=25 helo=<client.example.net> from=<quar-early@example.org>"
}
t_quarantine_rset() {
	mt actions.lua quarantine_rset A
	line A "QQUAR3: quarantine rule=t-quarantine-early stage=envfrom ${C}[192.0.2.27]:12345 port=25 helo=<client.example.net> from=<quar-early@example.org>"
	nolines A "QQUAR4:"
}
t_ipv6() {
	mt actions.lua ipv6 A
	line A "QIPV6: reject rule=submission-requires-auth stage=envfrom ${C}[2001:db8::25]:12345 port=587 helo=<v6.example.net> from=<v6@example.com> reply=\"530 5.7.0 Authentication required\""
}
t_discard() {
	mt actions.lua discard A
	line A "QDISC: discard rule=t-discard stage=envfrom ${C}[192.0.2.24]:12345 port=25 helo=<client.example.net> from=<discard@example.org>"
}
t_accept() {
	mt actions.lua accept_connect A
	line A "NOQUEUE: accept rule=t-accept-connect stage=connect ${C}[10.88.1.1]:12345 port=587"
	count A "[10.88.1.1]" 1
}
t_multiline() {
	mt actions.lua multiline A
	line A "QMULTI: reject rule=t-multiline stage=envfrom ${C}[192.0.2.25]:12345 port=25 helo=<client.example.net> from=<multi@example.org> reply=\"550 5.7.1 first line second line for multi@example.org\""
	line A "QMLEOM: reject rule=t-multiline-eom stage=eom ${C}[192.0.2.25]:12345 port=25 helo=<client.example.net> from=<mleom@example.org> reply=\"550 5.7.1 first line second line, rule t-multiline-eom\""
}
t_percent() {
	mt actions.lua percent A
	line A "QPCT: reject rule=t-percent stage=eom ${C}[192.0.2.26]:12345 port=25 helo=<client.example.net> from=<pct@example.org> reply=\"550 5.7.1 100% sure, t-percent at 50%\""
}

# The log has no raw control byte and no overlong line; the hostile
# fields are there, escaped.
clean_log() {
	local n=$1 max=$((4096 + 32)) long
	if grep -P -n -a '[\x00-\x08\x0b-\x1f\x7f]' "$TMP/$n/log" >"$TMP/ctl"; then
		detail "log $n: raw control bytes:"
		cut -c1-300 "$TMP/ctl" | head -3 | cat -v | sed 's/^/    /' >>"$DETAILS"
	fi
	long=$(awk -v m=$max 'length($0) > m { print NR ": " length($0) " bytes" }' "$TMP/$n/log" | head -3)
	[ -z "$long" ] || detail "log $n: lines over $max bytes: $long"
}
t_hostile_lua() {
	mt hostile.lua long A
	clean_log A
	# The escapes, not the bytes: \r\n -> \x0d\x0a, 0x01 -> \x01.
	local l
	l=$(grep -F "QHOSTILE1: reject rule=submission-requires-auth stage=envfrom ${C}[192.0.2.68]:12345 port=587 helo=<a\\x0d\\x0ab\\x01c\\x7f\\\"d\\\\e\\x09a" "$TMP/A/log" | head -1)
	[ -n "$l" ] || { detail "log A: no escaped QHOSTILE1 line"; grep -a -F QHOSTILE1 "$TMP/A/log" | cut -c1-300 | cat -v | sed 's/^/    /' >>"$DETAILS"; }
	case $l in *' reply="530 5.7.0 Authentication required"') ;;
	*) [ -z "$l" ] || detail "log A: QHOSTILE1 line does not end with the reply: ...${l: -120}" ;; esac
}
t_hostile_raw() {
	raw A hostile
	clean_log A
	count A "QHOSTILE2: reject rule=submission-requires-auth" 1
	count A "QHOSTILE3: reject rule=submission-requires-auth" 1
	line A "QHOSTILE4: reject rule=t-echo-helo stage=envfrom ${C}[192.0.2.67]:12345 helo=<x%s%n\\x0d\\x0a250 2.0.0 Ok\\x01\\x80> from=<echo@example.org> reply=\"550 5.7.1 Go away x%s%n??250 2.0.0 Ok??\""
	grep -a -F "QHOSTILE2:" "$TMP/A/log" | grep -F -q 'helo=<ab\x0d\x0acd\x01ef\x7f\xff\x09gh' ||
	    detail "log A: QHOSTILE2 line lacks the escaped HELO"
}

t_reload_ok() {
	mt reload.lua ok B -D pid="${PID[B]}" -D log="$TMP/B/log" \
	    -D rules="$TMP/B/t-reload.rules" -D v2="$TMP/B/v2.rules" \
	    -D broken="$TMP/B/broken.rules"
	line B "reload: ok files=2 rules=5"
	line B "QRELOADOLD: reject rule=t-reload stage=envfrom ${C}[192.0.2.40]:12345 port=25 helo=<client.example.net> from=<reload@example.org> reply=\"550 5.7.1 Reload version one\""
	line B "QRELOADNEW: reject rule=t-reload stage=envfrom ${C}[192.0.2.41]:12345 helo=<client.example.net> from=<reload@example.org> reply=\"550 5.7.1 Reload version two\""
	line B "NOQUEUE: tempfail rule=t-reload-unknown stage=unknown ${C}[192.0.2.41]:12345 helo=<client.example.net> command=EXPN reply=\"421 4.7.0 No EXPN here\""
}
t_reload_failed() {
	mt reload.lua failed B -D pid="${PID[B]}" -D log="$TMP/B/log" \
	    -D rules="$TMP/B/t-reload.rules" -D v2="$TMP/B/v2.rules" \
	    -D broken="$TMP/B/broken.rules"
	local want="warden[${PID[B]}]: reload: failed, keeping the running rules: $TMP/B/t-reload.rules:7: "
	grep -F -q -- "$want" "$TMP/B/log" || {
		detail "log B: no line starting: $want"
		grep -F "reload:" "$TMP/B/log" | sed 's/^/    /' >>"$DETAILS"
	}
	count B "reload: ok" 1
	line B "QRELOADKEPT: reject rule=t-reload stage=envfrom ${C}[192.0.2.42]:12345 helo=<client.example.net> from=<reload@example.org> reply=\"550 5.7.1 Reload version two\""
}

# Reloads while sessions come and go: snapshots are refcounted per session
# (a use after free shows under ASan/valgrind).
t_reload_storm() {
	local raw_pid i oks
	oks=$(grep -c 'reload: ok' "$TMP/B/log")
	python3 "$HERE/milter_raw.py" "${PORT[B]}" storm >"$TMP/storm.out" 2>&1 &
	raw_pid=$!
	for i in 1 2 3 4 5 6; do
		sleep 0.15
		cp "$TMP/B/v$((i % 2 + 1)).rules" "$TMP/B/t-reload.rules"
		kill -HUP "${PID[B]}"
	done
	if ! wait $raw_pid; then
		detail "milter_raw.py storm failed:"
		head -20 "$TMP/storm.out" | sed 's/^/  /' >>"$DETAILS"
	fi
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c 'reload: ok' "$TMP/B/log")" -ge $((oks + 6)) ] && break
		sleep 0.1
	done
	count B "reload: ok" $((oks + 6))
	count B "reload: failed" 1
}

# libmilter's signal thread sigwait()s SIGHUP as "stop"; warden's own
# sigwait makes it warden's signal thread, where SIGHUP is a reload.
# Aim one straight at that thread (tgkill): warden must not stop, and
# must reload once.
t_sighup_thread() {
	local tid t oks i
	for t in /proc/"${PID[B]}"/task/*; do
		# 128: rt_sigtimedwait on x86_64, where libmilter waits.
		[ "$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)" = 128 ] && tid=${t##*/}
	done
	[ -n "${tid:-}" ] || { detail "no thread of warden B in rt_sigtimedwait"; return 1; }
	oks=$(grep -c 'reload: ok' "$TMP/B/log")
	python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(libc.syscall(234, int(sys.argv[1]), int(sys.argv[2]), 1) != 0)' \
	    "${PID[B]}" "$tid" || { detail "tgkill $tid failed"; return 1; }
	for ((i = 0; i < 30; i++)); do
		kill -0 "${PID[B]}" 2>/dev/null || break
		grep -q 'stop:' "$TMP/B/log" && break
		sleep 0.1
	done
	for ((i = 0; i < 30; i++)); do
		[ "$(grep -c 'reload: ok' "$TMP/B/log")" -gt "$oks" ] && break
		sleep 0.1
	done
	grep -F 'stop:' "$TMP/B/log" | sed 's/^/log B: /' >>"$DETAILS"
	count B "reload: ok" $((oks + 1))
	raw B one
}

t_stats() {
	local from i re
	from=$(stat -c %s "$TMP/A/log")
	kill -USR1 "${PID[A]}"
	for ((i = 0; i < 50; i++)); do
		tail -c +"$((from + 1))" "$TMP/A/log" | grep -q 'stats: rule=t-multiline-eom ' && break
		sleep 0.1
	done
	tail -c +"$((from + 1))" "$TMP/A/log" >"$TMP/stats"
		# The fields DESIGN.md §5 names, in its order; others may come between.
	re="^warden\[${PID[A]}\]: stats: uptime=[0-9]+ connections=[0-9]+ messages=[0-9]+ rcpts=[0-9]+ accept=[0-9]+ reject=[0-9]+ tempfail=[0-9]+ discard=1( [a-z_0-9]+=[0-9]+)* dryrun=[0-9]+ store_calls=[0-9]+ store_errors=0( [a-z_0-9]+=[0-9]+)* store_p99_us=[0-9]+ nomem=0$"
	grep -E -q "$re" "$TMP/stats" || detail "no summary line matching $re"
	for want in "t-idle hits=0 enforced=0 dryrun=0" \
	    "t-discard hits=1 enforced=1 dryrun=0" \
	    "t-dryrun hits=1 enforced=0 dryrun=1" \
	    "t-rcpt-rate hits=3 enforced=3 dryrun=0" \
	    "harvest-unknown-commands hits=2 enforced=2 dryrun=0" \
	    "harvest-net-connect hits=0 enforced=0 dryrun=0"; do
		grep -F -x -q "warden[${PID[A]}]: stats: rule=$want" "$TMP/stats" ||
		    detail "no line: stats: rule=$want"
	done
	# One line per rule, idle ones too.
	[ "$(grep -c 'stats: rule=' "$TMP/stats")" -eq 25 ] ||
	    detail "$(grep -c 'stats: rule=' "$TMP/stats") rule lines, want 25"
	if [ -s "$DETAILS" ]; then
		sed 's/^/  got: /' "$TMP/stats" | head -40 >>"$DETAILS"
	fi
	return 0
}

t_shutdown() {
	# valgrind --error-exitcode=99 turns its reports into the exit status.
	local n want=0
	for n in A B; do kill -TERM "${PID[$n]}" 2>/dev/null; done
	for n in A B; do
		stop $n
		if [ "${STATUS[$n]}" -ne "$want" ]; then
			detail "warden $n exited ${STATUS[$n]}, want $want; its log ends:"
			tail -5 "$TMP/$n/log" | sed 's/^/  /' >>"$DETAILS"
		fi
		grep -F -x -q "warden[$(sed -n 's/^warden\[\([0-9]*\)\]: start:.*/\1/p' "$TMP/$n/log")]: stop: warden exiting" "$TMP/$n/log" ||
		    detail "log $n: no \"stop: warden exiting\" line"
		if [ -f "$TMP/$n/valgrind.log" ]; then
			grep -E 'ERROR SUMMARY|(definitely|indirectly|possibly) lost:|All heap blocks' "$TMP/$n/valgrind.log" |
			    sed "s/^==[0-9]*== /# valgrind $n: /"
		fi
	done
}

# SIGTERM with two sessions in a transaction, on instance S (shipped
# rules) of its own: warden exits 0 with its stop line, each session ends
# cleanly (a whole answer or none, then closed; milter_raw.py stop_open)
# and the stop takes less than STOP_SECS (a "does not hang" bound; the
# time is printed, not asserted: issue #4 measured 4.0 s before).
t_stop_open() {
	local raw_pid i t0 t1 pid out=$TMP/stop.out
	free_port "PORT[S]"
	mkdir -p "$TMP/S"
	conf S "$ROOT/rules/*.rules"
	start S
	listening S || { detail "warden S did not listen"; return 1; }
	STOP_GO=$TMP/S/go python3 "$HERE/milter_raw.py" "${PORT[S]}" stop_open >"$out" 2>&1 &
	raw_pid=$!
	for ((i = 0; i < START_SECS * 10; i++)); do
		grep -q READY "$out" && break
		kill -0 $raw_pid 2>/dev/null || break
		sleep 0.1
	done
	grep -q READY "$out" || { detail "milter_raw.py stop_open not ready:"; sed 's/^/  /' "$out" >>"$DETAILS"; kill $raw_pid; wait $raw_pid; return 1; }
	pid=${PID[S]}
	t0=$(date +%s%N)
	kill -TERM "$pid"
	: >"$TMP/S/go"
	for ((i = 0; i < STOP_SECS * 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	t1=$(date +%s%N)
	echo "# SIGTERM to exit with 2 sessions open: $(((t1 - t0) / 1000000)) ms"
	stop S	# KILLs after STOP_SECS: a hang fails below
	[ "${STATUS[S]}" -eq 0 ] || detail "warden S exited ${STATUS[S]}, want 0"
	wait $raw_pid || detail "milter_raw.py stop_open failed"
	grep -E -q '^A: closed$' "$out" || detail "session A: no clean close"
	grep -E -q '^B: then (closed|reset)$' "$out" ||
	    detail "session B: no clean close"
	grep -F -x -q "warden[$pid]: stop: warden exiting" "$TMP/S/log" ||
	    detail "log S: no \"stop: warden exiting\" line"
	if grep -E -q "$SAN_RE|$VG_RE" "$TMP/S/log" "$TMP/S/valgrind.log" \
	    2>/dev/null; then
		detail "S: sanitizer/valgrind report:"
		grep -E -h -A8 "$SAN_RE|$VG_RE" "$TMP/S/log" \
		    "$TMP/S/valgrind.log" 2>/dev/null | head -30 |
		    sed 's/^/  /' >>"$DETAILS"
	fi
	if [ -s "$DETAILS" ]; then
		sed 's/^/  raw: /' "$out" >>"$DETAILS"
		tail -5 "$TMP/S/log" | sed 's/^/  log S: /' >>"$DETAILS"
	fi
	return 0
}

# Out of memory for a callback's scratch (milter.c scratch_take), with
# tests/milter/failmalloc.c preloaded: malloc of 64-128 kB fails while
# the instance's file "arm" exists (struct scratch is ~68 kB: struct
# sess ~13 kB, struct engine_result ~24 kB, the escaped reply ~31 kB);
# armed only once warden listens, so start-up is not touched.
# Instance O (A's rules, replies at connect and HELO): 451 4.3.0 for
# each command, each counted (nomem= in the stats line), one log line
# for them all (at most one a minute); memory back, that connection keeps getting
# 451 (its facts are lost), the next one is served. Instance P (one
# RCPT rule: no reply at connect, HELO, MAIL): no reply there, armed
# either, 451 at RCPT and DATA, nothing sent unasked. Both stop cleanly.
oom_start() {	# oom_start NAME RULEFILES...
	local n=$1
	shift
	free_port "PORT[$n]"
	mkdir -p "$TMP/$n"
	conf "$n" "$@"
	: >"$TMP/$n/log"
	LD_PRELOAD=$TMP/failmalloc.so FAILMALLOC_MIN=65536 \
	    FAILMALLOC_MAX=131072 FAILMALLOC_ARM=$TMP/$n/arm \
	    "$BIN" run -c "$TMP/$n/warden.conf" >"$TMP/$n/stdout" 2>>"$TMP/$n/log" &
	PID[$n]=$!
	listening "$n" || { detail "warden $n did not listen: $(tail -3 "$TMP/$n/log")"; return 1; }
}
oom_end() {	# oom_end NAME EVENTS: one out-of-memory line, nomem=EVENTS, clean stop
	local n=$1 pid=${PID[$1]} k
	k=$(grep -c "^warden\[$pid\]: out of memory: a command's facts lost, the connection's commands get 451 4.3.0\$" "$TMP/$n/log")
	[ "$k" -eq 1 ] || detail "log $n: $k out-of-memory lines, want 1"
	k=$(grep -c "out of memory" "$TMP/$n/log")
	[ "$k" -eq 1 ] || detail "log $n: $k lines saying out of memory, want 1"
	kill -USR1 "$pid"
	wait_grep 5 "$TMP/$n/log" "^warden\[$pid\]: stats: uptime=" ||
	    detail "log $n: no stats line after SIGUSR1"
	grep -E -q "^warden\[$pid\]: stats: uptime=.* nomem=$2\$" "$TMP/$n/log" ||
	    detail "log $n: stats line without nomem=$2: $(grep 'stats: uptime=' "$TMP/$n/log")"
	stop "$n"
	[ "${STATUS[$n]}" -eq 0 ] || detail "warden $n exited ${STATUS[$n]}, want 0"
	[ -s "$DETAILS" ] && tail -5 "$TMP/$n/log" | sed "s/^/  log $n: /" >>"$DETAILS"
	return 0
}
t_oom() {
	"${CC:-cc}" -shared -fPIC -O2 -o "$TMP/failmalloc.so" \
	    "$HERE/failmalloc.c" 2>"$TMP/cc.out" ||
	    { detail "cannot build failmalloc.so: $(cat "$TMP/cc.out")"; return 1; }
	mkdir -p "$TMP/O" && cp "$TMP/A/t-main.rules" "$TMP/O/"
	oom_start O "$ROOT/rules/*.rules" "t-*.rules" || return 1
	OOM_ARM=$TMP/O/arm raw O oom
	oom_end O 2		# connect, HELO
	mkdir -p "$TMP/P"
	cat >"$TMP/P/t-oom.rules" <<-'EOF'
	rules = ( { name = "t-oom-rcpt"; stage = "envrcpt";
	    match = { rcpt = "never@invalid"; }; action = "reject"; } );
	EOF
	oom_start P "t-oom.rules" || return 1
	OOM_ARM=$TMP/P/arm raw P oom_noreply
	oom_end P 4		# connect, HELO, MAIL, RCPT
}

# Instance C: metrics_file and log_privacy (its own file).
. "$HERE/metrics.sh"

scenario "start: both instances listen on loopback" t_start
if ! kill -0 "${PID[A]:-0}" 2>/dev/null || ! kill -0 "${PID[B]:-0}" 2>/dev/null; then
	echo "Bail out! warden did not start"
	exit 1
fi
scenario "negotiation: shipped+test rules (NOHDRS, no NOUNKNOWN, RCPT_REJ, never NODATA; macro lists; DATA continue)" t_neg_main
scenario "negotiation: minimal rules (NOHDRS, NOUNKNOWN, NOBODY, no RCPT_REJ, never NODATA; DATA continue)" t_neg_minimal
scenario "submission: port 587 without AUTH -> 530 5.7.0 at MAIL" t_sub_noauth
scenario "submission: AUTH without TLS -> 538 5.7.11 at MAIL" t_sub_notls
scenario "submission: AUTH + TLS -> continue (shipped dry-run sender rule logs)" t_sub_tls
scenario "submission: port 25 without AUTH -> continue, no log line" t_sub_port25
scenario "wire: exact reply text at MAIL/RCPT/unknown (530, 538, multi-line, %%, 450 retry 20s, 421 x2)" t_wire
scenario "harvest: 4th unknown command -> 421 4.7.0, then every callback 421" t_harv_unknown
scenario "harvest: 6th refused recipient -> 421 4.7.0, then every callback 421" t_harv_bad
scenario "harvest: per-/24 budget (3/1h) spent -> next session refused at connect" t_harv_net
scenario "rate limit 3/1m: 4th RCPT -> 450 4.7.1 retry in 20s (decision line format)" t_rate
scenario "dry-run rule: continue, log says dryrun would=reject" t_dryrun
scenario "tag at eom: X-Warden header added" t_tag
scenario "quarantine at eom, and flagged at MAIL applied at eom" t_quarantine
scenario "quarantine flagged at MAIL is forgotten after RSET (abort)" t_quarantine_rset
scenario "IPv6 client: 530 at MAIL, client=[2001:db8::25] in the log" t_ipv6
scenario "discard at envfrom -> SMFIR_DISCARD" t_discard
scenario "accept at connect -> 'a', nothing later evaluated" t_accept
scenario "multi-line reply (MAIL and eom text)" t_multiline
scenario "reply with '%' (doubled on the wire at eom)" t_percent
scenario "hostile: 1 KB HELO/MAIL/RCPT with CR LF 0x01 via miltertest; log escaped" t_hostile_lua
scenario "hostile: 10 KB HELO/MAIL/macros with CR LF 0x01 0xff NUL via raw client; log escaped and bounded; HELO in a reply template sanitised" t_hostile_raw
scenario "reload: SIGHUP -> new reply for new sessions, old for in-flight; reload: ok" t_reload_ok
scenario "reload: broken rule file -> reload: failed FILE:LINE, old rules answer" t_reload_failed
scenario "reload: 6 SIGHUPs while 8 clients run 320 sessions; every answer complete" t_reload_storm
if [ -n "${WARDEN_VALGRIND:-}" ]; then
	# valgrind waits for signals its own way: no thread sits in the syscall.
	N=$((N + 1)); echo "ok $N - SIGHUP at libmilter's signal thread # SKIP not under valgrind"
else
	scenario "SIGHUP aimed at libmilter's signal thread: a reload, no stop, next session answered" t_sighup_thread
fi
scenario "SIGUSR1: stats lines with rule=NAME hits=" t_stats
# Instance D: every action at every stage, macros present and absent.
. "$HERE/matrix.sh"
scenario "matrix: stage x action table = what warden check loads; each pair not allowed refused at FILE:LINE" t_x_check
scenario "matrix: instance D starts with every allowed pair, enforce and dry-run" t_x_start
scenario "matrix: every allowed (stage, action) enforced: wire at each stage, eom header/quarantine, 421 sticky, accept, decision lines" t_x_enforce
scenario "matrix: the same pairs in dry-run: continue everywhere, dryrun would=ACTION lines" t_x_dryrun
scenario "matrix: each macro-fed condition (port, daemon, client_name, tls, cipher_bits, auth, rcpt_mailer, queue id) present, absent, malformed" t_x_macros
scenario "matrix: an unknown command after a refused MAIL/DATA is logged without that transaction's queue id and sender; a discarded RCPT keeps it" t_x_stale
scenario "matrix: instance D stops cleanly (exit 0, stop line, no sanitizer/valgrind report)" t_x_stop
scenario "metrics_file: written at start (mode 0644, strict parse, all 0)" t_m_start
scenario "metrics_file: SIGUSR1 -> counters, per-rule series, store histogram match the traffic sent" t_m_traffic
scenario "metrics_file: reloads (ok, failed) counted and written at once" t_m_reload
scenario "log_privacy: IP, addresses, login as digests (= Python HMAC, = warden hash); none in clear; needs key_secret" t_m_privacy
scenario "metrics_file: moved to an unwritable place -> old file removed, one rate-limited line, warden answers, recovery logged" t_m_error
scenario "metrics_file: SIGTERM -> exit 0, final counts written" t_m_stop
scenario "SIGTERM with 2 sessions mid-transaction: exit 0, stop line, each session answered or closed cleanly" t_stop_open
case $BIN in
*/build/san/*) N=$((N + 1)); echo "ok $N - out of memory for a callback's scratch # SKIP sanitizer build (ASan replaces malloc)" ;;
*) if [ "${WARDEN_VALGRIND:-0}" = 1 ]; then
	N=$((N + 1)); echo "ok $N - out of memory for a callback's scratch # SKIP valgrind replaces malloc"
   else
	scenario "out of memory for a callback's scratch: 451 4.3.0 (none where no reply was asked) and a log line; the connection stays 451, the next is served; clean stop" t_oom
   fi ;;
esac
scenario "SIGTERM: both stop cleanly (exit 0, stop line, no sanitizer/valgrind report)" t_shutdown
echo "1..$N"
[ $FAILED -eq 0 ]
