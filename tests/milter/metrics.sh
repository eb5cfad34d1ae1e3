# tests/milter/metrics.sh - sourced by run.sh: instance C, which runs
# with daemon.metrics_file and daemon.log_privacy (issues #10, #8), and
# its scenarios. C has its own rules (t-metrics.rules) so that every
# counter is known: metrics.lua sends the traffic, promcheck.py parses
# the file strictly, and the expected figures are counted by hand from
# metrics.lua. Digests are computed here with Python's hmac module, an
# independent source, and compared with the log and with `warden hash`.
# Uses servers.sh's free_port, run.sh's start/listening/stop/detail/
# line/wait_log/mt and its TMP, PID, PORT; C is stopped by the same EXIT
# trap (by PID).

MKEY="metrics-test-secret"
MDIR=$TMP/C/metrics
MFILE=$MDIR/warden.prom
# Debian's python3 has python3-prometheus-client (a second parser).
PROMPY=python3
[ -x /usr/bin/python3 ] && PROMPY=/usr/bin/python3

free_port "PORT[C]"
mkdir -p "$TMP/C" "$MDIR"
# warden writes the file as daemon.user (nobody when the tests run as root).
[ -n "$RUNAS" ] && chown "$RUNAS" "$MDIR"

mconf() {	# mconf METRICS_FILE KEY_SECRET: C's config on stdout
	cat <<-EOF
	milter = { socket = "inet:${PORT[C]}@127.0.0.1"; };
	daemon = {
	  log = "stderr"; log_level = "info"; user = "$RUNAS";
	  stats_interval = 0;
	  metrics_file = "$1";
	  log_privacy = true;
	};
	rules = { files = [ "t-metrics.rules" ]; };
	store = { backend = "memory"; key_secret = "$2"; };
	EOF
}
mconf "$MFILE" "$MKEY" >"$TMP/C/warden.conf"
mconf "$MFILE" "" >"$TMP/C/nokey.conf"
mconf "$TMP/C/missing/warden.prom" "$MKEY" >"$TMP/C/baddir.conf"

cat >"$TMP/C/t-metrics.rules" <<'EOF'
rules = (
  { name = "m-reject"; stage = "envfrom"; match = { sender = "bad@example.org"; };
    action = "reject"; reply = "550 5.7.1 No mail from %{sender} via %{client_ip}"; },
  { name = "m-helo"; stage = "envfrom"; match = { sender = "helo@example.org"; };
    action = "reject"; reply = "550 5.7.1 Go away %{helo}"; },
  { name = "m-idle"; stage = "envfrom"; match = { sender = "never@invalid"; };
    action = "reject"; },
  { name = "m-rate"; stage = "envrcpt"; match = { auth = true; };
    limit = { key = ["auth_user"]; rate = "2/1h"; };
    action = "tempfail"; reply = "450 4.7.1 Too many recipients from %{auth_user}"; },
  { name = "m-dry"; stage = "envrcpt"; match = { rcpt = "dry@example.org"; };
    action = "reject"; reply = "550 5.7.1 %{rcpt} refused"; mode = "dry-run"; }
);
EOF

# digest VALUE: what log_privacy writes for VALUE (log.h), from Python.
digest() {
	python3 -c '
import hashlib, hmac, sys
print("hmac:" + hmac.new(sys.argv[1].encode(), b"log:" + sys.argv[2].lower().encode(),
    hashlib.sha256).hexdigest()[:16])' "$MKEY" "$1"
}

# c_reports: sanitizer/valgrind text in C's log (run.sh checks A and B).
c_reports() {
	if grep -E -q "$SAN_RE|$VG_RE" "$TMP/C/log" 2>/dev/null; then
		detail "log C: sanitizer/valgrind report:"
		grep -E -A8 "$SAN_RE|$VG_RE" "$TMP/C/log" | head -30 |
		    sed 's/^/  /' >>"$DETAILS"
	fi
	if [ -f "$TMP/C/valgrind.log" ] &&
	    grep -E -q "$VG_RE" "$TMP/C/valgrind.log"; then
		detail "C: valgrind report in $TMP/C/valgrind.log"
	fi
	if [ -n "${PID[C]:-}" ] && ! kill -0 "${PID[C]}" 2>/dev/null; then
		detail "warden C is not running any more; its log ends:"
		tail -5 "$TMP/C/log" | sed 's/^/  /' >>"$DETAILS"
	fi
}

# wait_file PATH: 0 once PATH exists (bounded: a hang, not a speed test).
wait_file() {
	local i
	for ((i = 0; i < START_SECS * 10; i++)); do
		[ -e "$1" ] && return 0
		kill -0 "${PID[C]}" 2>/dev/null || break
		sleep 0.1
	done
	detail "$1 did not appear within ${START_SECS}s"
	return 1
}

# promcheck [SERIES=VALUE...]: the metrics file parses strictly and holds
# these values; on failure the file goes to the details.
promcheck() {
	if "$PROMPY" "$HERE/promcheck.py" "$MFILE" "$@" 2>"$TMP/promcheck.err"; then
		return 0
	fi
	detail "promcheck $MFILE:"
	sed 's/^/  /' "$TMP/promcheck.err" >>"$DETAILS"
	grep -v '^#' "$MFILE" | sed 's/^/  | /' >>"$DETAILS"
	return 1
}

# wait_prom SERIES=VALUE...: waits (bounded) until the file holds these
# values, then checks it once more with the details on failure. The
# timer may rewrite the file at any moment, so "the file changed" says
# nothing: the values do.
wait_prom() {
	local i
	for ((i = 0; i < START_SECS * 10; i++)); do
		[ -e "$MFILE" ] && "$PROMPY" "$HERE/promcheck.py" "$MFILE" "$@" \
		    2>/dev/null && return 0
		kill -0 "${PID[C]}" 2>/dev/null || break
		sleep 0.1
	done
	promcheck "$@"
}

# Only the file itself in its directory: no temporary left behind.
only_the_file() {
	local left
	left=$(ls -A "$MDIR")
	[ "$left" = "warden.prom" ] ||
	    detail "$MDIR holds: $(echo $left) (want only warden.prom)"
}

t_m_start() {
	start C
	listening C || { detail "warden C did not listen; log:"; head -20 "$TMP/C/log" | sed 's/^/  /' >>"$DETAILS"; return 1; }
	wait_log C "start: warden listening on inet:${PORT[C]}@127.0.0.1, files=1 rules=5 store=memory"
	# Written at start, before any traffic: every counter 0.
	wait_file "$MFILE" || return 1
	promcheck warden_connections_total=0 warden_rules=5 \
	    'warden_rule_hits_total{rule="m-idle"}=0' \
	    'warden_store_latency_seconds_count=0'
	[ "$(stat -c %a "$MFILE")" = 644 ] ||
	    detail "$MFILE mode $(stat -c %a "$MFILE"), want 644 (node_exporter reads it)"
	only_the_file
	c_reports
}

# The figures are counted from metrics.lua by hand.
t_m_traffic() {
	mt metrics.lua traffic C || return 1
	kill -USR1 "${PID[C]}"
	wait_prom \
	    warden_connections_total=4 warden_messages_total=4 \
	    warden_recipients_total=5 \
	    'warden_decisions_total{action="accept"}=0' \
	    'warden_decisions_total{action="reject"}=2' \
	    'warden_decisions_total{action="tempfail"}=1' \
	    'warden_decisions_total{action="discard"}=0' \
	    'warden_decisions_total{action="quarantine"}=0' \
	    warden_dryrun_decisions_total=1 \
	    warden_store_calls_total=3 warden_store_errors_total=0 \
	    warden_store_fallbacks_total=0 warden_out_of_memory_total=0 \
	    'warden_store_latency_seconds_count=3' \
	    'warden_store_latency_seconds_bucket{le="+Inf"}=3' \
	    'warden_reloads_total{result="ok"}=0' \
	    'warden_reloads_total{result="failed"}=0' \
	    warden_rules=5 \
	    'warden_rule_hits_total{rule="m-reject"}=1' \
	    'warden_rule_enforced_total{rule="m-reject"}=1' \
	    'warden_rule_dryrun_total{rule="m-reject"}=0' \
	    'warden_rule_hits_total{rule="m-helo"}=1' \
	    'warden_rule_hits_total{rule="m-idle"}=0' \
	    'warden_rule_enforced_total{rule="m-idle"}=0' \
	    'warden_rule_hits_total{rule="m-rate"}=1' \
	    'warden_rule_enforced_total{rule="m-rate"}=1' \
	    'warden_rule_hits_total{rule="m-dry"}=1' \
	    'warden_rule_enforced_total{rule="m-dry"}=0' \
	    'warden_rule_dryrun_total{rule="m-dry"}=1'
	only_the_file
	# SIGUSR1 still writes the stats lines, metrics file or not.
	wait_log C "stats: rule=m-dry hits=1 enforced=0 dryrun=1"
	c_reports
}

# A reload rewrites the file at once and counts itself; a failed one too.
t_m_reload() {
	kill -HUP "${PID[C]}"
	wait_prom 'warden_reloads_total{result="ok"}=1' \
	    'warden_reloads_total{result="failed"}=0' \
	    warden_connections_total=4 \
	    'warden_rule_hits_total{rule="m-reject"}=1'
	# Broken rules: the old config is kept, the reload counted as failed.
	cp "$TMP/C/t-metrics.rules" "$TMP/C/good.rules"
	echo 'rules = ( { name = "x"; stage = "nope"; action = "reject"; } );' \
	    >"$TMP/C/t-metrics.rules"
	kill -HUP "${PID[C]}"
	wait_prom 'warden_reloads_total{result="ok"}=1' \
	    'warden_reloads_total{result="failed"}=1' warden_rules=5
	cp "$TMP/C/good.rules" "$TMP/C/t-metrics.rules"
	c_reports
}

# metrics_file moved (by a reload) to where it cannot be written: the
# old file is removed, one warning line however often it fails
# (rate-limited), warden goes on answering, and the first good write
# after says how many failures were not logged.
t_m_error() {
	local from i k n
	cp "$TMP/C/baddir.conf" "$TMP/C/warden.conf"
	from=$(stat -c %s "$TMP/C/log")
	kill -HUP "${PID[C]}"
	# The reload's own write fails first (logged): wait for it, since
	# signals sent together are not handled in a guaranteed order.
	for ((i = 0; i < START_SECS * 10; i++)); do
		tail -c +"$((from + 1))" "$TMP/C/log" | grep -q -F 'metrics: cannot create' && break
		sleep 0.1
	done
	# The old file went with the old setting (no frozen counters).
	[ -e "$MFILE" ] && detail "$MFILE still there after metrics_file moved"
	# Three SIGUSR1 one after the other (two pending ones would merge
	# into one); each writes the stats lines before it tries the file.
	for k in 1 2 3; do
		kill -USR1 "${PID[C]}"
		for ((i = 0; i < START_SECS * 10; i++)); do
			[ "$(tail -c +"$((from + 1))" "$TMP/C/log" | grep -c 'stats: rule=m-dry ')" -ge $k ] && break
			sleep 0.1
		done
	done
	tail -c +"$((from + 1))" "$TMP/C/log" >"$TMP/C/err.log"
	n=$(grep -c -F "metrics: cannot create a file beside $TMP/C/missing/warden.prom: No such file or directory" "$TMP/C/err.log")
	if [ "$n" -ne 1 ]; then
		detail "log C: $n metrics failure lines, want 1 (rate-limited):"
		grep -F 'metrics:' "$TMP/C/err.log" | head -5 | sed 's/^/  /' >>"$DETAILS"
	fi
	mt metrics.lua ping C
	# Back to a good file: written again, and it says so.
	mconf "$MFILE" "$MKEY" >"$TMP/C/warden.conf"
	kill -HUP "${PID[C]}"
	wait_prom warden_connections_total=5 \
	    'warden_reloads_total{result="ok"}=3'
	# At least the three USR1 failures went unlogged (the timer may
	# have added some). The line follows the write: wait (bounded).
	for ((i = 0; i < START_SECS * 10; i++)); do
		grep -E -q "metrics: $MFILE written again \(([3-9]|[1-9][0-9]+) more failures since the last line\)$" "$TMP/C/log" && break
		sleep 0.1
	done
	[ $i -lt $((START_SECS * 10)) ] ||
	    detail "log C: no \"metrics: $MFILE written again (N >= 3 more ...)\" line"
	c_reports
}

# log_privacy: no address, login or client IP in clear; the digests are
# the ones Python computes and the ones `warden hash` prints.
t_m_privacy() {
	local ip50 ip53 bad helo mu r3 want got
	ip50=$(digest 192.0.2.50) ip53=$(digest 192.0.2.53)
	bad=$(digest bad@example.org) helo=$(digest helo@example.org)
	mu=$(digest metricuser) r3=$(digest r3@example.net)
	line C "QMREJ: reject rule=m-reject stage=envfrom ${C}[$ip50]:12345 port=25 helo=<client.example.net> from=<$bad> reply=\"550 5.7.1 No mail from $bad via $ip50\""
	line C "QMRATE: tempfail rule=m-rate stage=envrcpt ${C}[$(digest 192.0.2.51)]:12345 port=587 helo=<client.example.net> from=<$(digest metricuser@example.com)> to=<$r3> user=$mu reply=\"450 4.7.1 Too many recipients from $mu\""
	line C "QMDRY: dryrun would=reject rule=m-dry stage=envrcpt ${C}[$(digest 192.0.2.52)]:12345 port=25 helo=<client.example.net> from=<$(digest s@example.com)> to=<$(digest dry@example.org)> reply=\"550 5.7.1 $(digest dry@example.org) refused\""
	# The HELO stays, but not the IP literal inside it.
	line C "QMHELO: reject rule=m-helo stage=envfrom ${C}[$ip53]:12345 port=25 helo=<[$ip53]> from=<$helo> reply=\"550 5.7.1 Go away [$ip53]\""
	# Nothing in clear: no client IP, no address, no login.
	nolines C "192.0.2.5"
	nolines C "metricuser"
	grep -v ': start: warden listening on ' "$TMP/C/log" | grep -F '@' >"$TMP/at" &&
	    { detail "log C: lines with an address:"; head -5 "$TMP/at" | sed 's/^/  /' >>"$DETAILS"; }
	# warden hash: the same digests, one a line, case folded.
	want=$(printf '%s\n' "$bad" "$mu" "$ip53")
	got=$("$BIN" hash -c "$TMP/C/warden.conf" BAD@Example.ORG metricuser 192.0.2.53 2>&1)
	[ "$got" = "$want" ] || detail "warden hash printed \"$got\", want \"$want\""
	# log_privacy without key_secret: FILE:LINE at the log_privacy line.
	got=$("$BIN" check -c "$TMP/C/nokey.conf" 2>&1 >/dev/null)
	case $got in
	*"$TMP/C/nokey.conf:6: daemon.log_privacy: needs store.key_secret"*) ;;
	*) detail "warden check nokey.conf: \"$got\"" ;;
	esac
	"$BIN" check -c "$TMP/C/nokey.conf" >/dev/null 2>&1 && detail "warden check nokey.conf exited 0"
	"$BIN" hash -c "$TMP/C/nokey.conf" x >/dev/null 2>&1 && detail "warden hash with nokey.conf exited 0"
	c_reports
}

# SIGTERM: exit 0, and the final counts are in the file.
t_m_stop() {
	rm -f "$MFILE"
	stop C
	[ "${STATUS[C]}" -eq 0 ] || detail "warden C exited ${STATUS[C]}, want 0"
	[ -e "$MFILE" ] || detail "no $MFILE after stop (final write)"
	[ -e "$MFILE" ] && promcheck warden_connections_total=5
	c_reports
}
