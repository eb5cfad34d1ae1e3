# postfix.sh - a private Postfix instance and smtp-sink on loopback (bash).
# Recipes: /work/shared/notes/postfix-private.md. Source servers.sh first.
# The system Postfix (/etc/postfix/main.cf, its queue, its service) is
# never read, started, reloaded or stopped: everything lives in $PF_DIR
# and is started with "postfix -c $PF_DIR/etc".
#
#   pf_setup DIR            writes DIR/etc (main.cf, master.cf, TLS cert,
#                           Cyrus sasldb with PF_USER/PF_PASS) and DIR/spool.
#                           Needs: PF_SMTP PF_SUB PF_SINK PF_MILTER (ports),
#                           optional PF_BLOCK (a third listener whose
#                           {daemon_name} is "blocked"),
#                           PF_MACROS (file of "milter_*_macros = ..." lines),
#                           PF_RELAY_DOMAINS, PF_RELAY_RCPTS (texthash lines),
#                           optional PF_MAIN_EXTRA (more main.cf lines).
#   pf_start / pf_stop      master; pf_stop is bounded, then KILLs by PID
#   pf_master_pid           the master's PID (empty when none)
#   sink_start DIR PORT     smtp-sink dumping each message to DIR/msg.*
#   sink_stop
#   pf_add_smtpd PORT NAME [PARAM=VALUE...]
#                           after pf_setup, before pf_start: one more smtpd
#                           listener on 127.0.0.1:PORT, syslog_name
#                           postfix/NAME, each PARAM=VALUE passed as "-o"
#                           (e.g. "smtpd_milters=" for a listener without
#                           milter); pf_start does not wait for it
#   sink_start_count DIR PORT   smtp-sink keeping only its counters (no
#                           message dumps: for load tests), in DIR/sink.out
#   sink_count DIR          messages that sink has received so far
# Logs: $PF_DIR/maillog (postlogd), $PF_DIR/sink.out.

PF_USER=${PF_USER:-testuser}
PF_PASS=${PF_PASS:-secret123}
PF_HOST=${PF_HOST:-mx.example.test}
SINK_PID=

pf_setup() {
	PF_DIR=$1
	local d=$PF_DIR
	mkdir -p "$d/etc/sasl" "$d/spool" "$d/tls" || return 1
	cat >"$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
meta_directory = /etc/postfix
myhostname = $PF_HOST
mydomain = example.test
myorigin = \$myhostname
mydestination =
inet_protocols = ipv4
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$PF_SINK
relay_domains = $PF_RELAY_DOMAINS
relay_recipient_maps = texthash:$d/etc/relay_recipients
alias_maps =
alias_database =
biff = no
maillog_file = $d/maillog
maillog_file_prefixes = $d
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# deliver at once, never wait for a retry in the tests
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s

smtpd_tls_cert_file = $d/tls/cert.pem
smtpd_tls_key_file = $d/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd

smtpd_milters = inet:127.0.0.1:$PF_MILTER
milter_protocol = 6
milter_default_action = tempfail
EOF
	# The macro lines "warden check" prints for the rules in use.
	cat "$PF_MACROS" >>"$d/etc/main.cf"
	[ -z "${PF_MAIN_EXTRA:-}" ] || printf '%s\n' "$PF_MAIN_EXTRA" >>"$d/etc/main.cf"
	printf '%s\n' "$PF_RELAY_RCPTS" >"$d/etc/relay_recipients"

	cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$PF_SMTP inet n - n - - smtpd
127.0.0.1:$PF_SUB inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_auth_only=yes
  -o milter_macro_daemon_name=submission
${PF_BLOCK:+127.0.0.1:$PF_BLOCK inet n - n - - smtpd
  -o syslog_name=postfix/blocked
  -o milter_macro_daemon_name=blocked}
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF

	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
	    -subj "/CN=$PF_HOST" -keyout "$d/tls/key.pem" \
	    -out "$d/tls/cert.pem" >/dev/null 2>&1 || return 1
	chmod 600 "$d/tls/key.pem"

	# Debian's smtpd reads the Cyrus config from $config_directory/sasl.
	cat >"$d/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $d/etc/sasl/sasldb2
EOF
	echo "$PF_PASS" | saslpasswd2 -c -p -f "$d/etc/sasl/sasldb2" \
	    -u "$PF_HOST" "$PF_USER" || return 1
	chown postfix "$d/etc/sasl/sasldb2"
}

pf_master_pid() {
	local f=$PF_DIR/spool/pid/master.pid
	[ -r "$f" ] && tr -dc 0-9 <"$f"
}

pf_start() {
	postfix -c "$PF_DIR/etc" check >/dev/null 2>&1
	postfix -c "$PF_DIR/etc" start >/dev/null 2>&1 || return 1
	wait_listening "$PF_SMTP" 10 && wait_listening "$PF_SUB" 10 &&
	    { [ -z "${PF_BLOCK:-}" ] || wait_listening "$PF_BLOCK" 10; }
}

pf_stop() {
	local pid i
	[ -n "${PF_DIR:-}" ] && [ -d "$PF_DIR/etc" ] || return 0
	pid=$(pf_master_pid)
	pid_alive "$pid" || return 0
	timeout 10 postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1
	for ((i = 0; i < 50; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	echo "# postfix master $pid did not stop: KILL" >&2
	kill -KILL "$pid" 2>/dev/null
	return 0
}

sink_start() {
	local dir=$1 port=$2
	mkdir -p "$dir/msgs" && chown postfix "$dir/msgs" || return 1
	smtp-sink -4 -u postfix -d "$dir/msgs/msg." -c "127.0.0.1:$port" 256 \
	    >"$dir/sink.out" 2>&1 &
	SINK_PID=$!
	wait_listening "$port" 10
}

sink_stop() {
	stop_pid "$SINK_PID" 5
	SINK_PID=
}

pf_add_smtpd() {
	local port=$1 name=$2 kv
	shift 2
	printf '127.0.0.1:%s inet n - n - - smtpd\n  -o syslog_name=postfix/%s\n' \
	    "$port" "$name" >>"$PF_DIR/etc/master.cf" || return 1
	for kv in "$@"; do
		printf '  -o %s\n' "$kv" >>"$PF_DIR/etc/master.cf" || return 1
	done
}

sink_start_count() {
	local dir=$1 port=$2
	mkdir -p "$dir" || return 1
	smtp-sink -4 -u postfix -c "127.0.0.1:$port" 256 >"$dir/sink.out" 2>&1 &
	SINK_PID=$!
	wait_listening "$port" 10
}

# smtp-sink -c writes "sess=N quit=N mesg=N" after each event, ended by CR.
sink_count() {
	local n
	n=$(tail -c 200 "$1/sink.out" 2>/dev/null | tr '\r' '\n' |
	    sed -n 's/.*mesg=\([0-9][0-9]*\).*/\1/p' | tail -n 1)
	echo "${n:-0}"
}

# pf_preflight WHAT PKGS [WHY]: what a suite running a private MTA
# (Postfix; Sendmail too) checks first: root (else WHAT is skipped, WHY
# saying what needs it), the warden binary $BIN, and the Debian packages
# PKGS installed. Ends the suite when one fails. Needs tests/lib/tap.sh.
pf_preflight() {
	if [ "$(id -u)" -ne 0 ]; then
		tap_skip "$1" "${3:-needs root (postfix start, smtp-sink -u)}"
		finish
	fi
	if [ ! -x "$BIN" ]; then
		tap_fail "warden binary $BIN is executable"
		finish
	fi
	# One line of names, for the TAP line (SM_APT has a newline).
	set -- "$1" "$(echo $2)"
	if ! WARDEN_EXTRA_PKGS=$2 tests/lib/deps.sh >/dev/null 2>&1; then
		tap_fail "install $2" "$(WARDEN_EXTRA_PKGS=$2 tests/lib/deps.sh 2>&1 | tail -5)"
		finish
	fi
}
