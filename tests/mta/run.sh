#!/bin/bash
# tests/mta/run.sh BINARY - warden behind a real Postfix (DESIGN.md §7).
# Called from the repo root as `tests/mta/run.sh src/warden`; prints TAP.
#
# Starts, each on a free loopback port inside one temp dir: smtp-sink (the
# relay host; dumps every message), warden (inet socket, log to a file,
# the shipped rules/*.rules plus tests/mta/test.rules) and a private
# Postfix instance (own config/queue directories and maillog, no chroot,
# STARTTLS with a self-signed certificate, Cyrus sasldb AUTH, a plain
# listener offering AUTH also without TLS and a submission listener with
# smtpd_tls_auth_only=yes). The system Postfix is never touched. A trap
# on EXIT stops everything by PID, also when a test fails.
#
# Submission: the shipped rule submission-requires-auth matches
# {daemon_port} 587/465. The submission listener runs on a free port and
# the clients claim port 587 with Postfix's XCLIENT DESTPORT=587 (Postfix
# >= 3.5 reports it in {daemon_port}), so the shipped rule is tested
# unchanged, on the real listener with smtpd_tls_auth_only=yes.
#
# Each scenario asserts the exact reply the client sees and warden's
# decision line. Set WARDEN_MTA_KEEP=1 to keep the temp dir.
#
# sender-login-mismatch ships in dry-run with an empty senders.map; the
# suite keeps it so (scenario 4 checks its dryrun line) and tests the
# enforced behaviour with test.rules' copy test-sender-login-mismatch
# (same settings, no mode line, reading tests/mta/senders.map; 4b checks
# the copy against the shipped rule). Bad input through Postfix (12),
# then the maillog is checked for milter trouble (13) before warden is
# stopped on purpose (14).
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
BIN=${1:-src/warden}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac

. tests/lib/servers.sh
. tests/lib/postfix.sh

. tests/lib/tap.sh

# --- packages -------------------------------------------------------
# swaks needs Net::SSLeay for STARTTLS; deps.sh installs without
# recommends, so it is named here.
MTA_PKGS="postfix sasl2-bin libsasl2-modules swaks libnet-ssleay-perl"
pf_preflight "MTA suite (Postfix)" "$MTA_PKGS"
tap_ok "packages installed: $MTA_PKGS"

# --- temp dir and cleanup ------------------------------------------
T=$(mktemp -d /tmp/warden-mta.XXXXXX) || exit 1
# warden drops to nobody and must still read its config on reload;
# Postfix wants no group/world-writable parents.
chmod 755 "$T"
WARDEN_PID=
cleanup() {
	set +e
	pf_stop
	stop_pid "$WARDEN_PID" 10
	sink_stop
	if [ -n "${WARDEN_MTA_KEEP:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port P_SMTP P_SUB P_BLOCK
free_port P_SINK P_MILTER
echo "# temp dir $T; ports: smtp=$P_SMTP submission=$P_SUB blocked=$P_BLOCK sink=$P_SINK milter=$P_MILTER"

# --- warden ----------------------------------------------------------
W=$T/warden
mkdir -p "$W"
cp -r rules "$W/rules"		# the shipped rules, byte for byte
cp tests/mta/test.rules "$W/test.rules"
# test.rules' enforced copy of sender-login-mismatch reads this one; the
# shipped rule keeps reading the empty shipped rules/senders.map.
cp tests/mta/senders.map "$W/senders.map"
cat >"$W/warden.conf" <<EOF
milter = { socket = "inet:$P_MILTER@127.0.0.1"; };
daemon = { user = "nobody"; log = "stderr"; stats_interval = 0; };
rules = { files = [ "rules/*.rules", "test.rules" ]; };
store = { backend = "memory"; };
EOF
chmod -R a+rX "$W"
WLOG=$T/warden.log

t_begin "warden check accepts the test config and prints the Postfix macro lines"
"$BIN" check -c "$W/warden.conf" >"$T/check.out" 2>"$T/check.err"
t_eq "warden check exit" "$?" 0
sed -n '/^postfix main.cf/,/^sendmail/p' "$T/check.out" |
    sed -n 's/^ *\(milter_[a-z_]*_macros = .*\)$/\1/p' >"$T/macros.cf"
t_re "$T/macros.cf" '^milter_connect_macros = .*\{daemon_port\}'
t_re "$T/macros.cf" '^milter_mail_macros = .*\{auth_authen\}'
t_re "$T/macros.cf" '^milter_rcpt_macros = .*\{rcpt_mailer\}'
t_end "$T/check.out" "$T/check.err" || finish

"$BIN" run -c "$W/warden.conf" >"$WLOG" 2>&1 &
WARDEN_PID=$!

# --- smtp-sink and Postfix -------------------------------------------
PF_SMTP=$P_SMTP PF_SUB=$P_SUB PF_BLOCK=$P_BLOCK PF_SINK=$P_SINK PF_MILTER=$P_MILTER
PF_MACROS=$T/macros.cf
PF_RELAY_DOMAINS="example.com example.net example.org rate.example harvest.example
    iprate.example badinput.example many.example"
# harvest.example has one valid address: Postfix itself refuses the rest
# ("User unknown in relay recipient table") and shows them to warden.
PF_RELAY_RCPTS="@example.com ok
@example.net ok
@example.org ok
@rate.example ok
valid@harvest.example ok
@iprate.example ok
@badinput.example ok
@many.example ok"
# Bad input: 500 RCPTs in one transaction, a 10 MB message.
PF_MAIN_EXTRA="smtpd_recipient_limit = 1000
message_size_limit = 20971520"

t_begin "servers start: smtp-sink, warden, private Postfix"
sink_start "$T" "$P_SINK" || t_true "smtp-sink does not listen on $P_SINK"
wait_listening "$P_MILTER" 10 || t_true "warden does not listen on $P_MILTER"
pf_setup "$T/pf" || t_true "pf_setup failed"
[ ${#T_ERR[@]} -eq 0 ] && { pf_start || t_true "postfix did not start"; }
t_end "$WLOG" "$T/sink.out" "$T/pf/maillog" || finish
MAILLOG=$T/pf/maillog

# --- helpers for scenarios --------------------------------------------
OUT=$T/out
mkdir -p "$OUT"
# mark: remember where warden's log ends; since: what came after
WMARK=0
mark() { WMARK=$(stat -c %s "$WLOG"); }
since() { tail -c +$((WMARK + 1)) "$WLOG"; }
# wlog NAME: warden's lines since mark into $OUT/NAME.wlog (after a
# short wait so that a line written while the reply was sent is there)
wlog() {
	sleep 0.2
	since >"$OUT/$1.wlog"
}
# swaks_run NAME ARGS...: transcript in $OUT/NAME.swaks, exit in SWAKS_RC
swaks_run() {
	local name=$1
	shift
	timeout 30 swaks --server 127.0.0.1 --helo client.example.net \
	    --timeout 20 "$@" >"$OUT/$name.swaks" 2>&1
	SWAKS_RC=$?
}
# errlines FILE: the "<** " ("<~* " inside TLS) lines: errors the client
# saw, without the prefix
errlines() { sed -n 's/^<[*~]\* //p' "$1"; }
# queued_id FILE: the queue id from "250 2.0.0 Ok: queued as ID"
queued_id() { sed -n 's/^<[-~]  250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$1" | tail -1; }
# delivered ID: maillog shows status=sent for ID (bounded wait)
delivered() { wait_grep 15 "$MAILLOG" "^.* $1: to=<.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:$P_SINK,.* status=sent "; }
W_RE='^warden\[[0-9]+\]: '
# rcpt_replies FILE: the reply to each RCPT in an smtp_raw transcript
rcpt_replies() { sed -n '/^-> RCPT/{n;p;}' "$1"; }

# ======================================================================
# 1. port-25-style listener, no AUTH: delivered
mark
swaks_run s1 --port "$P_SMTP" -f a@example.com -t b@example.com
wlog s1
qid=$(queued_id "$OUT/s1.swaks")
t_begin "1 plain listener, no AUTH: 250 queued, status=sent at smtp-sink, no warden decision"
t_eq "swaks exit" "$SWAKS_RC" 0
t_re "$OUT/s1.swaks" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
[ -n "$qid" ] && { delivered "$qid" || t_true "no status=sent for $qid in maillog"; }
t_nore "$OUT/s1.wlog" "$W_RE"'[^ ]+: (reject|tempfail|accept|discard|dryrun)'
t_end "$OUT/s1.swaks" "$OUT/s1.wlog"

# ======================================================================
# 2. submission (claims port 587), no AUTH: 530 5.7.0 at MAIL FROM
mark
swaks_run s2 --port "$P_SUB" --xclient-destport 587 -f a@example.com -t b@example.com
wlog s2
t_begin "2 submission without AUTH: MAIL FROM gets 530 5.7.0 Authentication required"
t_eq "swaks exit (23: MAIL refused)" "$SWAKS_RC" 23
t_eq "error replies" "$(errlines "$OUT/s2.swaks")" "530 5.7.0 Authentication required"
t_re "$OUT/s2.wlog" "${W_RE}NOQUEUE: reject rule=submission-requires-auth stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=587 helo=<client\.example\.net> from=<a@example\.com> reply=\"530 5\.7\.0 Authentication required\"\$"
t_end "$OUT/s2.swaks" "$OUT/s2.wlog"

# ======================================================================
# 3. AUTH without TLS on the plain listener: 538 5.7.11 at MAIL FROM
mark
swaks_run s3 --port "$P_SMTP" -a PLAIN -au "$PF_USER" -ap "$PF_PASS" \
    -f testuser@example.com -t b@example.com
wlog s3
t_begin "3 AUTH without TLS (plain listener): MAIL FROM gets 538 5.7.11"
t_eq "swaks exit (23: MAIL refused)" "$SWAKS_RC" 23
t_line "$OUT/s3.swaks" "<-  235 2.7.0 Authentication successful"
t_eq "error replies" "$(errlines "$OUT/s3.swaks")" "538 5.7.11 Encryption required for requested authentication mechanism"
t_re "$OUT/s3.wlog" "${W_RE}NOQUEUE: reject rule=auth-requires-tls stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<client\.example\.net> from=<testuser@example\.com> user=testuser reply=\"538 5\.7\.11 Encryption required for requested authentication mechanism\"\$"
t_end "$OUT/s3.swaks" "$OUT/s3.wlog"

# 3b. the submission listener itself offers no AUTH before STARTTLS
smtp_raw "$P_SUB" "EHLO client.example.net" \
    "AUTH PLAIN $(printf '\0%s\0%s' "$PF_USER" "$PF_PASS" | base64 -w0)" QUIT >"$OUT/s3b.raw"
t_begin "3b submission listener (smtpd_tls_auth_only): AUTH before STARTTLS gets Postfix's 503 5.5.1"
t_line "$OUT/s3b.raw" "<- 503 5.5.1 Error: authentication not enabled"
t_nore "$OUT/s3b.raw" '^<- 250-AUTH'
t_end "$OUT/s3b.raw"

# ======================================================================
# 4. AUTH after STARTTLS on submission: delivered (the dry-run
#    sender-login-mismatch rule logs, senders.map being empty; the
#    enforced test copy finds testuser@example.com in the test's map)
mark
swaks_run s4 --port "$P_SUB" --xclient-destport 587 -tls -a PLAIN \
    -au "$PF_USER" -ap "$PF_PASS" -f testuser@example.com -t b@example.com
wlog s4
qid=$(queued_id "$OUT/s4.swaks")
t_begin "4 submission, STARTTLS then AUTH: 250 queued, status=sent"
t_eq "swaks exit" "$SWAKS_RC" 0
t_line "$OUT/s4.swaks" "<~  235 2.7.0 Authentication successful"
t_re "$OUT/s4.swaks" '^<~  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
[ -n "$qid" ] && { delivered "$qid" || t_true "no status=sent for $qid in maillog"; }
t_nore "$OUT/s4.wlog" "$W_RE"'[^ ]+: (reject|tempfail) '
t_re "$OUT/s4.wlog" "${W_RE}NOQUEUE: dryrun would=reject rule=sender-login-mismatch stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=587 helo=<client\.example\.net> from=<testuser@example\.com> user=testuser reply=\"553 5\.7\.1 Sender address rejected: not owned by user testuser\"\$"
t_nore "$OUT/s4.wlog" "rule=test-sender-login-mismatch "
t_end "$OUT/s4.swaks" "$OUT/s4.wlog"

# ----------------------------------------------------------------------
# sender-login-mismatch enforced. The shipped rule stays as shipped (dry
# run, empty rules/senders.map: scenario 4 checks its log line); the test
# config also loads test.rules' test-sender-login-mismatch, the same rule
# without its mode line (enforced), reading tests/mta/senders.map
# (testuser owns testuser@example.com and @example.org).

# rule_block FILE NAME: the settings of rule NAME in FILE but its name,
# comments dropped, blanks squeezed (the rule files' layout: "  {" and
# "  }" around each rule)
rule_block() {
	awk -v n="$2" '
	/^  \{/ { blk = ""; inb = 1; found = 0; next }
	/^  \}/ { if (inb && found) printf "%s", blk; inb = 0; next }
	inb && $0 ~ "^ *name *= *\"" n "\";" { found = 1; next }
	inb && $0 !~ /^ *(#|$)/ {
		l = $0; gsub(/[ \t]+/, " ", l); sub(/^ /, "", l)
		blk = blk l "\n"
	}' "$1"
}
t_begin "4b test-sender-login-mismatch is the shipped sender-login-mismatch without its mode line (enforced)"
rule_block rules/submission.rules sender-login-mismatch >"$OUT/s4b.shipped"
rule_block "$W/test.rules" test-sender-login-mismatch >"$OUT/s4b.test"
t_line "$OUT/s4b.shipped" 'mode = "dry-run";'
t_re "$OUT/s4b.shipped" '^reply = "553 5\.7\.1 '
t_line "$OUT/s4b.shipped" 'owner_map = "file:senders.map";'
t_nore "$OUT/s4b.test" '^mode '
t_eq "settings (shipped without mode vs test copy)" \
    "$(grep -v '^mode = ' "$OUT/s4b.shipped")" "$(cat "$OUT/s4b.test")"
t_end "$OUT/s4b.shipped" "$OUT/s4b.test"

# sub_auth NAME ARGS...: swaks on the submission listener (claims 587),
# STARTTLS, AUTH PLAIN as testuser
sub_auth() {
	local name=$1
	shift
	swaks_run "$name" --port "$P_SUB" --xclient-destport 587 -tls -a PLAIN \
	    -au "$PF_USER" -ap "$PF_PASS" "$@"
}

mark
sub_auth s4c -f another@example.com -t b@example.com
wlog s4c
t_begin "4c enforced: AUTH+TLS as testuser, MAIL FROM another@example.com gets 553 5.7.1 Sender address rejected: not owned by user testuser"
t_eq "swaks exit (23: MAIL refused)" "$SWAKS_RC" 23
t_line "$OUT/s4c.swaks" "<~  235 2.7.0 Authentication successful"
t_eq "error replies" "$(errlines "$OUT/s4c.swaks")" "553 5.7.1 Sender address rejected: not owned by user testuser"
t_re "$OUT/s4c.wlog" "${W_RE}NOQUEUE: reject rule=test-sender-login-mismatch stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=587 helo=<client\.example\.net> from=<another@example\.com> user=testuser reply=\"553 5\.7\.1 Sender address rejected: not owned by user testuser\"\$"
# the shipped dry-run rule, earlier in order, logged and went on
t_re "$OUT/s4c.wlog" "${W_RE}NOQUEUE: dryrun would=reject rule=sender-login-mismatch stage=envfrom .* from=<another@example\.com> user=testuser "
t_end "$OUT/s4c.swaks" "$OUT/s4c.wlog"

mark
sub_auth s4d -f x@example.org -t b@example.com
wlog s4d
qid=$(queued_id "$OUT/s4d.swaks")
t_begin "4d enforced: MAIL FROM x@example.org (testuser owns @example.org): 250 queued, status=sent"
t_eq "swaks exit" "$SWAKS_RC" 0
t_re "$OUT/s4d.swaks" '^<~  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
[ -n "$qid" ] && { delivered "$qid" || t_true "no status=sent for $qid in maillog"; }
t_nore "$OUT/s4d.wlog" "$W_RE"'[^ ]+: (reject|tempfail) '
t_re "$OUT/s4d.wlog" "${W_RE}NOQUEUE: dryrun would=reject rule=sender-login-mismatch stage=envfrom .* from=<x@example\.org> user=testuser "
t_end "$OUT/s4d.swaks" "$OUT/s4d.wlog"

# ======================================================================
# 5. recipient rate "3/1m" per auth_user: the 4th RCPT gets 450, retry 20s
mark
swaks_run s5 --port "$P_SUB" --xclient-destport 587 -tls -a PLAIN \
    -au "$PF_USER" -ap "$PF_PASS" -f testuser@example.com \
    -t r1@rate.example,r2@rate.example,r3@rate.example,r4@rate.example
wlog s5
t_begin "5 rate 3/1m per user: RCPT 1-3 accepted, the 4th gets 450 4.7.1 ... retry in 20s"
t_eq "swaks exit (0: some RCPT accepted)" "$SWAKS_RC" 0
t_eq "accepted RCPTs" "$(grep -c '^<~  250 2\.1\.5 Ok$' "$OUT/s5.swaks")" 3
t_eq "error replies" "$(errlines "$OUT/s5.swaks")" "450 4.7.1 Too many recipients from testuser, retry in 20s"
t_re "$OUT/s5.wlog" "${W_RE}[0-9A-Z]+: tempfail rule=test-rcpt-rate stage=envrcpt client=\[127\.0\.0\.1\]:[0-9]+ port=587 helo=<client\.example\.net> from=<testuser@example\.com> to=<r4@rate\.example> user=testuser reply=\"450 4\.7\.1 Too many recipients from testuser, retry in 20s\"\$"
t_end "$OUT/s5.swaks" "$OUT/s5.wlog"

# 5b. DESIGN §5: the queue id first once it is known. Postfix opened the
#     queue file at the first accepted RCPT and logs the 4th RCPT's
#     milter-reject under that id; warden's line must carry the same id.
qid=$(queued_id "$OUT/s5.swaks")
t_begin "5b the 4th RCPT's decision line starts with Postfix's queue id ($qid), not NOQUEUE"
wait_grep 5 "$MAILLOG" "^.* $qid: milter-reject: RCPT from .*: 450 4\.7\.1 Too many recipients from testuser, retry in 20s; from=<testuser@example\.com> to=<r4@rate\.example> " ||
    t_true "maillog: no '$qid: milter-reject: RCPT' line"
t_re "$OUT/s5.wlog" "${W_RE}$qid: tempfail rule=test-rcpt-rate stage=envrcpt "
t_end "$OUT/s5.wlog"

# 5c/5d. recipient rate "3/1m" per client address (test-rcpt-rate-ip,
#     key client_ip): two addresses of one /24, claimed with XCLIENT.
# rate_session ADDR N: one session from ADDR with N RCPTs to iprate.example
rate_session() {
	local i rcpts=()
	for ((i = 1; i <= $2; i++)); do rcpts+=("RCPT TO:<ip$i@iprate.example>"); done
	smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=$1" \
	    "EHLO rate-client.example" "MAIL FROM:<r@example.net>" "${rcpts[@]}" QUIT
}
mark
rate_session 192.0.2.21 4 >"$OUT/s5c.raw"
wlog s5c
t_begin "5c rate 3/1m per client_ip: 192.0.2.21's RCPT 1-3 get 250, the 4th 450 4.7.1 Too many recipients from 192.0.2.21, retry in 20s"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s5c.raw")" \
    "$(printf '%s\n' "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok" \
	"<- 450 4.7.1 Too many recipients from 192.0.2.21, retry in 20s")"
t_re "$OUT/s5c.wlog" "${W_RE}[0-9A-Z]+: tempfail rule=test-rcpt-rate-ip stage=envrcpt client=\[192\.0\.2\.21\]:[0-9]+ port=$P_SMTP helo=<rate-client\.example> from=<r@example\.net> to=<ip4@iprate\.example> reply=\"450 4\.7\.1 Too many recipients from 192\.0\.2\.21, retry in 20s\"\$"
t_end "$OUT/s5c.raw" "$OUT/s5c.wlog"

mark
rate_session 192.0.2.22 3 >"$OUT/s5d.raw"
rate_session 192.0.2.21 1 >"$OUT/s5d2.raw"
wlog s5d
t_begin "5d a second client address (192.0.2.22, same /24) gets 250 for its first 3 RCPTs; 192.0.2.21 still gets 450"
t_eq "192.0.2.22: RCPT replies" "$(rcpt_replies "$OUT/s5d.raw")" \
    "$(printf '%s\n' "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok")"
t_nore "$OUT/s5d.wlog" "client=\[192\.0\.2\.22\]"
t_eq "192.0.2.21 again: RCPT reply" "$(rcpt_replies "$OUT/s5d2.raw" | sed -E 's/retry in (19|20)s$/retry in Ns/')" \
    "<- 450 4.7.1 Too many recipients from 192.0.2.21, retry in Ns"
t_re "$OUT/s5d.wlog" "${W_RE}NOQUEUE: tempfail rule=test-rcpt-rate-ip stage=envrcpt client=\[192\.0\.2\.21\]:[0-9]+ .* to=<ip1@iprate\.example> "
t_end "$OUT/s5d.raw" "$OUT/s5d2.raw" "$OUT/s5d.wlog"

# ======================================================================
# 6. harvest defence
# 6a. EXPN + unknown commands: Postfix's own 500 5.5.2 for the first
#     three, warden's 421 for the 4th, and the connection closes.
mark
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=198.51.100.7" \
    "EHLO harvester.example" "EXPN root" "XYZZY foo" "EXPN postmaster" \
    "FOOBAR" "NOOP" >"$OUT/s6a.raw"
wlog s6a
t_begin "6a EXPN/unknown commands: 3x Postfix 500 5.5.2, the 4th gets warden's 421 4.7.0 and the connection closes"
t_eq "replies to the 4 commands" \
    "$(sed -n '/^-> EXPN root/,$p' "$OUT/s6a.raw" | grep '^<- ' | grep -v '^<- \[')" \
    "$(printf '%s\n' "<- 500 5.5.2 Error: command not recognized" \
	"<- 500 5.5.2 Error: command not recognized" \
	"<- 500 5.5.2 Error: command not recognized" \
	"<- 421 4.7.0 Too many unrecognized commands, closing connection")"
t_line "$OUT/s6a.raw" "<- [closed]"
t_nore "$OUT/s6a.raw" '^-> NOOP'
t_re "$OUT/s6a.wlog" "${W_RE}NOQUEUE: tempfail rule=harvest-unknown-commands stage=unknown client=\[198\.51\.100\.7\]:[0-9]+ port=$P_SMTP helo=<harvester\.example> command=FOOBAR reply=\"421 4\.7\.0 Too many unrecognized commands, closing connection\"\$"
t_end "$OUT/s6a.raw" "$OUT/s6a.wlog"

# 6b. recipients Postfix refuses ("User unknown in relay recipient
#     table", shown to warden flagged as refused): harvest-bad-rcpts-session
#     holds when more than 5 were refused in the session.
bad_rcpts() {	# bad_rcpts N: RCPT commands for N unknown addresses
	local i
	for ((i = 1; i <= $1; i++)); do echo "RCPT TO:<nobody$i@harvest.example>"; done
}
bad_replies() {	# bad_replies N: Postfix's replies to them
	local i
	for ((i = 1; i <= $1; i++)); do
		echo "<- 550 5.1.1 <nobody$i@harvest.example>: Recipient address rejected: User unknown in relay recipient table"
	done
}

# 5 refused: not over the limit, the valid RCPT is accepted.
mark
mapfile -t cmds < <(bad_rcpts 5)
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=198.51.101.8" \
    "EHLO harvester.example" "MAIL FROM:<h@example.net>" "${cmds[@]}" \
    "RCPT TO:<valid@harvest.example>" "QUIT" >"$OUT/s6b1.raw"
wlog s6b1
t_begin "6b 5 recipients refused by Postfix (550 5.1.1), the valid RCPT after them still gets 250"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s6b1.raw")" "$(bad_replies 5; echo "<- 250 2.1.5 Ok")"
t_nore "$OUT/s6b1.wlog" "$W_RE"'[^ ]+: (reject|tempfail) '
t_end "$OUT/s6b1.raw" "$OUT/s6b1.wlog"

# 6 refused: the 6th is over the limit; Postfix answers it with its own
# 550 (it ignores a milter's reply to a recipient it refused), so the
# 421 lands at the next valid RCPT and the session closes.
mark
mapfile -t cmds < <(bad_rcpts 6)
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=198.51.100.8" \
    "EHLO harvester.example" "MAIL FROM:<h@example.net>" "${cmds[@]}" \
    "RCPT TO:<valid@harvest.example>" "NOOP" >"$OUT/s6b.raw"
wlog s6b
t_begin "6c 6 recipients refused by Postfix (550 5.1.1), then the valid RCPT gets 421 4.7.0 and the connection closes"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s6b.raw")" \
    "$(bad_replies 6; echo "<- 421 4.7.0 Too many invalid recipients, closing connection")"
t_line "$OUT/s6b.raw" "<- [closed]"
t_nore "$OUT/s6b.raw" '^-> NOOP'
t_re "$OUT/s6b.wlog" "${W_RE}NOQUEUE: tempfail rule=harvest-bad-rcpts-session stage=envrcpt client=\[198\.51\.100\.8\]:[0-9]+ port=$P_SMTP helo=<harvester\.example> from=<h@example\.net> to=<nobody6@harvest\.example> reply=\"421 4\.7\.0 Too many invalid recipients, closing connection\"\$"
t_end "$OUT/s6b.raw" "$OUT/s6b.wlog"

# 6d. a new session from the same /24: the network's budget (test
#     counter, 5/1h, spent by the 5 refused recipients that were charged
#     in 6c) is gone, so warden refuses it at connect. Postfix's own 421,
#     without the milter's text or enhanced code, then close.
mark
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=198.51.100.9" \
    "EHLO harvester.example" "MAIL FROM:<h@example.net>" "NOOP" >"$OUT/s6c.raw"
wlog s6c
t_begin "6d next session from the same /24 is refused at connect: Postfix's 421 $PF_HOST Service unavailable - try again later, closed"
t_eq "reply to XCLIENT" "$(sed -n '/^-> XCLIENT/{n;p;}' "$OUT/s6c.raw")" \
    "<- 421 $PF_HOST Service unavailable - try again later"
t_line "$OUT/s6c.raw" "<- [closed]"
t_nore "$OUT/s6c.raw" '^-> MAIL'
t_re "$OUT/s6c.wlog" "${W_RE}NOQUEUE: tempfail rule=test-harvest-net-connect stage=connect client=\[198\.51\.100\.9\]:[0-9]+ port=$P_SMTP reply=\"421 4\.7\.0\"\$"
t_end "$OUT/s6c.raw" "$OUT/s6c.wlog"

# 6e. control: another /24 is still welcome
mark
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=192.0.2.10" \
    "EHLO other.example" "MAIL FROM:<h@example.net>" "QUIT" >"$OUT/s6e.raw"
wlog s6e
t_begin "6e a session from another /24 is accepted (220 after XCLIENT, 250 to MAIL)"
t_eq "reply to XCLIENT" "$(sed -n '/^-> XCLIENT/{n;p;}' "$OUT/s6e.raw")" "<- 220 $PF_HOST ESMTP Postfix"
t_eq "reply to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s6e.raw")" "<- 250 2.1.0 Ok"
t_nore "$OUT/s6e.wlog" "$W_RE"'[^ ]+: (reject|tempfail) '
t_end "$OUT/s6e.raw" "$OUT/s6e.wlog"

# ======================================================================
# 7. connect-stage reject 554 5.7.1 (test-connect-reject)
# 7a. a claimed client address (XCLIENT): the XCLIENT reply is the
#     554 greeting; the session goes on, MAIL/VRFY get the rule's reply
mark
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=203.0.113.66" \
    "EHLO blocked.example" "MAIL FROM:<a@example.com>" "VRFY root" "QUIT" >"$OUT/s7.raw"
wlog s7
t_begin "7a connect reject (XCLIENT ADDR): 554 $PF_HOST ESMTP not accepting connections, then the rule's 554 5.7.1 at MAIL"
t_eq "reply to XCLIENT" "$(sed -n '/^-> XCLIENT/{n;p;}' "$OUT/s7.raw")" \
    "<- 554 $PF_HOST ESMTP not accepting connections"
t_eq "reply to EHLO" "$(sed -n '/^-> EHLO blocked/,/^->/p' "$OUT/s7.raw" | grep '^<- ')" \
    "$(printf '%s\n%s' "<- 250-$PF_HOST" "<- 250 ENHANCEDSTATUSCODES")"
t_eq "reply to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s7.raw")" \
    "<- 554 5.7.1 Connection refused by test rule"
t_eq "reply to VRFY" "$(sed -n '/^-> VRFY/{n;p;}' "$OUT/s7.raw")" \
    "<- 554 5.7.1 Connection refused by test rule"
t_re "$OUT/s7.wlog" "${W_RE}NOQUEUE: reject rule=test-connect-reject stage=connect client=\[203\.0\.113\.66\]:[0-9]+ port=$P_SMTP reply=\"554 5\.7\.1 Connection refused by test rule\"\$"
t_end "$OUT/s7.raw" "$OUT/s7.wlog"

# 7b. a real connection to the "blocked" listener: the greeting itself
mark
smtp_raw "$P_BLOCK" "EHLO client.example.net" "MAIL FROM:<a@example.com>" "QUIT" >"$OUT/s7b.raw"
wlog s7b
t_begin "7b connect reject (real connection): greeting 554 $PF_HOST ESMTP not accepting connections, MAIL gets 554 5.7.1 + text"
t_eq "greeting" "$(head -1 "$OUT/s7b.raw")" "<- 554 $PF_HOST ESMTP not accepting connections"
t_eq "reply to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s7b.raw")" \
    "<- 554 5.7.1 Connection refused by test rule"
t_re "$OUT/s7b.wlog" "${W_RE}NOQUEUE: reject rule=test-connect-reject stage=connect client=\[127\.0\.0\.1\]:[0-9]+ port=$P_BLOCK reply=\"554 5\.7\.1 Connection refused by test rule\"\$"
t_end "$OUT/s7b.raw" "$OUT/s7b.wlog"

# ======================================================================
# 8. helo-stage reject: EHLO still gets 250, the reply comes at MAIL
mark
smtp_raw "$P_SMTP" "EHLO bad-helo.example" "MAIL FROM:<a@example.com>" \
    "MAIL FROM:<b@example.com>" "QUIT" >"$OUT/s8.raw"
wlog s8
t_begin "8 helo reject: EHLO gets 250, MAIL FROM gets 550 5.7.1 (every time)"
t_eq "first EHLO reply line" "$(sed -n '/^-> EHLO/{n;p;}' "$OUT/s8.raw")" "<- 250-$PF_HOST"
t_eq "replies to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s8.raw")" \
    "$(printf '%s\n%s' "<- 550 5.7.1 HELO name bad-helo.example refused" "<- 550 5.7.1 HELO name bad-helo.example refused")"
t_re "$OUT/s8.wlog" "${W_RE}NOQUEUE: reject rule=test-helo-reject stage=helo client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<bad-helo\.example> reply=\"550 5\.7\.1 HELO name bad-helo\.example refused\"\$"
t_end "$OUT/s8.raw" "$OUT/s8.wlog"

# 8b. a 421 at helo is different: Postfix answers the EHLO with it and closes
mark
smtp_raw "$P_SMTP" "EHLO close-helo.example" "MAIL FROM:<a@example.com>" >"$OUT/s8b.raw"
wlog s8b
t_begin "8b helo 421: the EHLO itself gets 421 4.7.0 and the connection closes"
t_eq "reply to EHLO" "$(sed -n '/^-> EHLO/,$p' "$OUT/s8b.raw" | grep '^<- ')" \
    "$(printf '%s\n%s' "<- 421 4.7.0 HELO name close-helo.example refused, closing" "<- [closed]")"
t_re "$OUT/s8b.wlog" "${W_RE}NOQUEUE: tempfail rule=test-helo-close stage=helo client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<close-helo\.example> reply=\"421 4\.7\.0 HELO name close-helo\.example refused, closing\"\$"
t_end "$OUT/s8b.raw" "$OUT/s8b.wlog"

# ======================================================================
# 9. tag: the header arrives at smtp-sink
mark
swaks_run s9 --port "$P_SMTP" -f tag@example.com -t b@example.com \
    --header "X-Test-Id: s9-$$"
wlog s9
qid=$(queued_id "$OUT/s9.swaks")
t_begin "9 tag rule: delivered with X-Warden: test-tag in the message smtp-sink received"
t_eq "swaks exit" "$SWAKS_RC" 0
[ -n "$qid" ] && { delivered "$qid" || t_true "no status=sent for $qid"; }
dump=$(grep -l "^X-Test-Id: s9-$$" "$T"/msgs/msg.* 2>/dev/null | head -1)
if [ -z "$dump" ]; then
	t_true "no message with X-Test-Id: s9-$$ in $T/msgs"
else
	cp "$dump" "$OUT/s9.msg"
	t_re "$OUT/s9.msg" '^X-Warden: test-tag'
fi
t_re "$OUT/s9.wlog" "${W_RE}NOQUEUE: tag rule=test-tag stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<client\.example\.net> from=<tag@example\.com>\$"
t_end "$OUT/s9.swaks" "$OUT/s9.wlog" "$OUT/s9.msg"

# 9b. dry-run: test-dryrun would reject dryrun@example.com with 550; it
#     only logs (and counts) that, and the message is delivered.
mark
swaks_run s9b --port "$P_SMTP" -f dryrun@example.com -t b@example.com \
    --header "X-Test-Id: s9b-$$"
kill -USR1 "$WARDEN_PID"
wait_grep 5 "$WLOG" "${W_RE}stats: rule=test-reload "
wlog s9b
qid=$(queued_id "$OUT/s9b.swaks")
t_begin "9b dry-run rule (would reject 550 5.7.1): 250 queued, status=sent, smtp-sink has it, warden logs dryrun would=reject and counts it"
t_eq "swaks exit" "$SWAKS_RC" 0
t_re "$OUT/s9b.swaks" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
t_nore "$OUT/s9b.swaks" '^<\*\* '
if [ -z "$qid" ]; then
	t_true "no queue id"
else
	delivered "$qid" || t_true "no status=sent for $qid in maillog"
fi
grep -q "^X-Test-Id: s9b-$$" "$T"/msgs/msg.* 2>/dev/null ||
    t_true "no message with X-Test-Id: s9b-$$ at smtp-sink"
t_re "$OUT/s9b.wlog" "${W_RE}NOQUEUE: dryrun would=reject rule=test-dryrun stage=envfrom client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<client\.example\.net> from=<dryrun@example\.com> reply=\"550 5\.7\.1 Dry-run test rule\"\$"
t_nore "$OUT/s9b.wlog" "$W_RE"'[^ ]+: (reject|tempfail|discard) '
t_line "$OUT/s9b.wlog" "warden[$WARDEN_PID]: stats: rule=test-dryrun hits=1 enforced=0 dryrun=1"
t_end "$OUT/s9b.swaks" "$OUT/s9b.wlog"

# ======================================================================
# 10. no stall: 200 messages through one SMTP session over inet:
t0=$EPOCHREALTIME
timeout 60 smtp-source -d -s 1 -m 200 -f a@example.com -t b@example.com \
    "127.0.0.1:$P_SMTP" >"$OUT/s10.out" 2>&1
rc=$?
t1=$EPOCHREALTIME
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
echo "# 10: 200 messages in one session: ${secs}s"
t_begin "10 no stall: 200 messages in one session in ${secs}s (limit 4s)"
t_eq "smtp-source exit" "$rc" 0
awk -v s="$secs" 'BEGIN { exit !(s < 4) }' || t_true "took ${secs}s >= 4s (stalled?)"
t_end "$OUT/s10.out"

# ======================================================================
# 11. reload: new reply text after SIGHUP
mark
swaks_run s11a --port "$P_SMTP" -f a@example.com -t reload@example.com
sed -i 's/Reload text one/Reload text two/' "$W/test.rules"
kill -HUP "$WARDEN_PID"
wait_grep 5 "$WLOG" "${W_RE}reload: ok files=4 rules=[0-9]+\$"
swaks_run s11b --port "$P_SMTP" -f a@example.com -t reload@example.com
wlog s11
t_begin "11 reload under Postfix: SIGHUP, the next message sees the new reply text"
t_eq "reply before" "$(errlines "$OUT/s11a.swaks")" "550 5.7.1 Reload text one"
t_re "$OUT/s11.wlog" "${W_RE}reload: ok files=4 rules=[0-9]+\$"
t_eq "reply after" "$(errlines "$OUT/s11b.swaks")" "550 5.7.1 Reload text two"
t_re "$OUT/s11.wlog" "${W_RE}NOQUEUE: reject rule=test-reload stage=envrcpt .*to=<reload@example\.com> reply=\"550 5\.7\.1 Reload text two\"\$"
pid_alive "$WARDEN_PID" || t_true "warden died"
t_end "$OUT/s11a.swaks" "$OUT/s11b.swaks" "$OUT/s11.wlog"

# ======================================================================
# 12. bad input through Postfix; after each, a normal session must still
#     be served: queued, and logged by the same warden process.
# still_served NAME: these checks, into the current test
still_served() {
	local name=$1
	mark
	swaks_run "$name" --port "$P_SMTP" -f normal@example.net -t ok@badinput.example
	wlog "$name"
	t_eq "normal session after it: swaks exit" "$SWAKS_RC" 0
	t_re "$OUT/$name.swaks" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
	t_re "$OUT/$name.wlog" "^warden\[$WARDEN_PID\]: NOQUEUE: log rule=test-log-badinput stage=envrcpt client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<client\.example\.net> from=<normal@example\.net> to=<ok@badinput\.example>\$"
	pid_alive "$WARDEN_PID" || t_true "warden ($WARDEN_PID) is gone"
	t_eq "warden start lines" "$(grep -Ec "${W_RE}start: " "$WLOG")" 1
}
# sent_count QID: recipients of QID delivered to smtp-sink
sent_count() {
	grep -Ec "^.* $1: to=<[^>]*>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$P_SINK,.* status=sent " "$MAILLOG"
}
LONG=$(printf 'l%.0s' {1..1000})	# a 1,000-character local part

# 12a. Postfix sets no length limit of its own on them; warden's log
#      line escapes at most LOG_ESC_MAX (512) bytes of each, then "...".
mark
smtp_raw "$P_SMTP" "EHLO badinput.example" "MAIL FROM:<$LONG@example.net>" \
    "RCPT TO:<$LONG@badinput.example>" QUIT >"$OUT/s12a.raw"
wlog s12a
t_begin "12a 1,000-character local part in MAIL FROM and RCPT TO: Postfix answers 250 2.1.0 / 250 2.1.5, warden logs a bounded line and stays up"
t_eq "reply to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s12a.raw")" "<- 250 2.1.0 Ok"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s12a.raw")" "<- 250 2.1.5 Ok"
t_re "$OUT/s12a.wlog" "^warden\[$WARDEN_PID\]: NOQUEUE: log rule=test-log-badinput stage=envrcpt client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<badinput\.example> from=<l{300,}[^>]*> to=<l{300,}[^>]*>\$"
t_eq "warden lines over 4,200 bytes" "$(awk 'length($0) > 4200' "$OUT/s12a.wlog" | wc -l)" 0
still_served s12a-next
t_end "$OUT/s12a.raw" "$OUT/s12a.wlog" "$OUT/s12a-next.swaks" "$OUT/s12a-next.wlog"

# 12b/12c. regression (fixed in 2f1172a): warden cut senders/recipients
#     at 319 bytes and matched rcpt_domain, sender_domain, sender_owned
#     on what was left.
# 12b. long local parts pushed the domain out: test-rcpt-rate-ip
#      (rcpt_domain = iprate.example) never matched, no rate was kept.
mark
rcpts=()
for i in 1 2 3 4; do rcpts+=("RCPT TO:<$LONG$i@iprate.example>"); done
smtp_raw "$P_SMTP" "EHLO client.example.net" "XCLIENT ADDR=192.0.2.31" \
    "EHLO rate-client.example" "MAIL FROM:<r@example.net>" "${rcpts[@]}" QUIT >"$OUT/s12b.raw"
wlog s12b
t_begin "12b rate per client_ip holds for 1,000-character local parts too: the 4th RCPT to iprate.example gets 450 4.7.1"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s12b.raw")" \
    "$(printf '%s\n' "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok" "<- 250 2.1.5 Ok" \
	"<- 450 4.7.1 Too many recipients from 192.0.2.31, retry in 20s")"
t_end "$OUT/s12b.raw" "$OUT/s12b.wlog"

# 12c. the sender "AAA...@example.org"@evil.example (quoted local part,
#      306 A): cut at 319 bytes it read "AAA...@example.org, whose domain
#      testuser owns, and the enforced rule let it through.
QSENDER="\"$(printf 'A%.0s' {1..306})@example.org\"@evil.example"
mark
sub_auth s12c -f "$QSENDER" -t b@example.com --quit-after MAIL
wlog s12c
t_begin "12c enforced sender-login-mismatch: MAIL FROM:<\"A{306}@example.org\"@evil.example> as testuser gets 553 5.7.1"
t_eq "error replies" "$(errlines "$OUT/s12c.swaks")" "553 5.7.1 Sender address rejected: not owned by user testuser"
t_re "$OUT/s12c.wlog" "${W_RE}NOQUEUE: reject rule=test-sender-login-mismatch "
t_end "$OUT/s12c.swaks" "$OUT/s12c.wlog"

# 12d. 500 RCPTs in one transaction (smtpd_recipient_limit = 1000). The
#      shipped rate rules do not apply (loopback, no AUTH); test-rcpt-count
#      (rcpt_count_over = 499) refuses the 500th, so warden has counted
#      every one of them.
mark
swaks_run s12d --port "$P_SMTP" -f many@example.net \
    -t "$(seq -f 'm%g@many.example' 1 500 | paste -sd,)"
wlog s12d
qid=$(queued_id "$OUT/s12d.swaks")
t_begin "12d 500 RCPTs in one transaction: 499x 250 2.1.5 Ok, the 500th 452 4.5.3 Too many recipients (test-rcpt-count), 499 delivered"
t_eq "swaks exit" "$SWAKS_RC" 0
t_eq "RCPTs sent" "$(grep -c '^ -> RCPT TO:' "$OUT/s12d.swaks")" 500
t_eq "accepted RCPTs" "$(grep -c '^<-  250 2\.1\.5 Ok$' "$OUT/s12d.swaks")" 499
t_eq "error replies" "$(errlines "$OUT/s12d.swaks")" "452 4.5.3 Too many recipients"
t_eq "the refused one" "$(grep -B1 '^<\*\* ' "$OUT/s12d.swaks" | head -1)" " -> RCPT TO:<m500@many.example>"
t_re "$OUT/s12d.swaks" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
t_re "$OUT/s12d.wlog" "^warden\[$WARDEN_PID\]: $qid: tempfail rule=test-rcpt-count stage=envrcpt client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<client\.example\.net> from=<many@example\.net> to=<m500@many\.example> reply=\"452 4\.5\.3 Too many recipients\"\$"
if [ -n "$qid" ]; then
	for ((i = 0; i < 150; i++)); do
		[ "$(sent_count "$qid")" -ge 499 ] && break
		sleep 0.1
	done
	t_eq "status=sent lines for $qid" "$(sent_count "$qid")" 499
fi
still_served s12d-next
t_end "$OUT/s12d.wlog" "$OUT/s12d-next.swaks" "$OUT/s12d-next.wlog"

# 12e. control bytes in EHLO: \x01 \x1b \x7f and UTF-8 (c3 a9)
mark
smtp_raw "$P_SMTP" $'EHLO c\x01t\x1bl\x7f\xc3\xa9.badinput.example' \
    "MAIL FROM:<ctl@example.net>" "RCPT TO:<ctl@badinput.example>" QUIT >"$OUT/s12e.raw"
wlog s12e
t_begin "12e control bytes in EHLO: Postfix passes them (250), warden logs helo=<c\\x01t\\x1bl\\x7f\\xc3\\xa9...>, no raw control byte in its log"
t_eq "first EHLO reply line" "$(sed -n '/^-> EHLO/{n;p;}' "$OUT/s12e.raw")" "<- 250-$PF_HOST"
t_eq "reply to MAIL" "$(sed -n '/^-> MAIL/{n;p;}' "$OUT/s12e.raw")" "<- 250 2.1.0 Ok"
t_eq "RCPT replies" "$(rcpt_replies "$OUT/s12e.raw")" "<- 250 2.1.5 Ok"
t_re "$OUT/s12e.wlog" "^warden\[$WARDEN_PID\]: NOQUEUE: log rule=test-log-badinput stage=envrcpt client=\[127\.0\.0\.1\]:[0-9]+ port=$P_SMTP helo=<c\\\\x01t\\\\x1bl\\\\x7f\\\\xc3\\\\xa9\.badinput\.example> from=<ctl@example\.net> to=<ctl@badinput\.example>\$"
t_eq "warden log lines with a byte outside 0x20-0x7e" "$(LC_ALL=C grep -caP '[^\x20-\x7e]' "$WLOG")" 0
still_served s12e-next
t_end "$OUT/s12e.raw" "$OUT/s12e.wlog" "$OUT/s12e-next.swaks" "$OUT/s12e-next.wlog"

# 12f. a 10 MiB message (message_size_limit = 20 MiB): 163,840 lines of
#      64 bytes; smtp-sink stores them with LF line ends.
BODYLINE=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde
awk -v l="$BODYLINE" 'BEGIN { for (i = 0; i < 163840; i++) print l }' >"$T/big.txt"
mark
swaks_run s12f --port "$P_SMTP" -f big@example.net -t big@example.com \
    --header "X-Test-Id: s12f-$$" --body @"$T/big.txt" --suppress-data
wlog s12f
qid=$(queued_id "$OUT/s12f.swaks")
t_begin "12f 10 MiB message ($(stat -c %s "$T/big.txt") bytes of body): 250 queued, status=sent, smtp-sink has all 163840 body lines"
t_eq "swaks exit" "$SWAKS_RC" 0
t_re "$OUT/s12f.swaks" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]+$'
if [ -z "$qid" ]; then
	t_true "no queue id"
else
	delivered "$qid" || t_true "no status=sent for $qid in maillog"
	t_re "$MAILLOG" " $qid: from=<big@example\.net>, size=1[0-9]{7}, nrcpt=1 "
fi
dump=$(grep -l "^X-Test-Id: s12f-$$" "$T"/msgs/msg.* 2>/dev/null | head -1)
if [ -z "$dump" ]; then
	t_true "no message with X-Test-Id: s12f-$$ at smtp-sink"
else
	t_eq "body lines at smtp-sink" "$(grep -cx "$BODYLINE" "$dump")" 163840
fi
still_served s12f-next
t_end "$OUT/s12f.swaks" "$OUT/s12f.wlog" "$OUT/s12f-next.swaks" "$OUT/s12f-next.wlog"

# ======================================================================
# 13. maillog hygiene, everything before warden is stopped on purpose
#     (14): no milter warning or error, no fatal/panic, no reply from
#     milter_default_action. Postfix's wording (strings in smtpd;
#     milter8.c): "warning: milter %s: ...", "warning: connect to Milter
#     service %s: %m", "warning: milter8_read_data: milter %s: ..."; the
#     default action answers "451 4.7.1 Service unavailable - try again
#     later" (tempfail), "550 5.5.0 Service unavailable" (reject), "451
#     4.3.5 Server configuration problem - try again later" and logs it as
#     milter-reject; no line names milter_default_action itself.
#     14 checks that the same patterns do match once warden is gone.
HYGIENE_RE=(
	'warning: .*[Mm]ilter'
	': (fatal|panic|error): '
	'451 4\.7\.1 Service unavailable - try again later|550 5\.5\.0 Service unavailable|451 4\.3\.5 Server configuration problem'
	'default[_ ]action'
)
sleep 0.5	# postlogd
MAILLOG_CUT=$(stat -c %s "$MAILLOG")
head -c "$MAILLOG_CUT" "$MAILLOG" >"$OUT/maillog.before-stop"
t_begin "13 maillog before warden stops ($(wc -l <"$OUT/maillog.before-stop") lines): no milter warning/error, fatal, panic, milter_default_action reply"
t_re "$OUT/maillog.before-stop" ': milter-reject: RCPT from '
for re in "${HYGIENE_RE[@]}"; do t_nore "$OUT/maillog.before-stop" "$re"; done
t_end

# ======================================================================
# 14. warden down: milter_default_action = tempfail.
stop_pid "$WARDEN_PID" 10
WARDEN_PID=
swaks_run s12 --port "$P_SMTP" -f a@example.com -t b@example.com
t_begin "14 warden stopped: Postfix answers 451 4.7.1 (milter_default_action = tempfail); 13's patterns match its maillog lines"
t_eq "warden exit status after SIGTERM" "$STOP_RC" 0
t_re "$WLOG" "${W_RE}stop: warden exiting\$"
t_eq "error replies" "$(errlines "$OUT/s12.swaks")" "451 4.7.1 Service unavailable - try again later"
wait_grep 5 "$MAILLOG" ': milter-reject: CONNECT from .*: 451 4\.7\.1 '
tail -c +$((MAILLOG_CUT + 1)) "$MAILLOG" >"$OUT/maillog.after-stop"
t_re "$OUT/maillog.after-stop" "${HYGIENE_RE[0]}"
t_re "$OUT/maillog.after-stop" "${HYGIENE_RE[2]}"
t_end "$OUT/s12.swaks" "$OUT/maillog.after-stop"

# ======================================================================
# everything stops by PID (the EXIT trap does the same on failure)
master=$(pf_master_pid)
kids=$(children_of "$master")
pf_stop
sink_stop
t_begin "Postfix master ($master), its children and smtp-sink are gone after stop"
for p in $master $kids; do pid_alive "$p" && t_true "pid $p still runs: $(tr '\0' ' ' </proc/$p/cmdline)"; done
port_listening "$P_SMTP" && t_true "port $P_SMTP still listening"
port_listening "$P_SINK" && t_true "port $P_SINK still listening"
t_end

finish
