#!/bin/bash
# tests/probe/run.sh BINARY - `warden probe` against scripted hostile
# servers and a private Postfix (DESIGN.md §4a, §8). Called from the repo
# root as `tests/probe/run.sh src/warden`; prints TAP.
#
# Part 1 (any user): tests/probe/fakesmtp.py serves one scripted SMTP
# dialogue per loopback port: well-behaved, harvest-friendly, escaping,
# malformed (control bytes, 100 KB line, endless continuation, garbage,
# changing codes, bare LF), stalling (silent, one byte at a time, no EHLO
# reply), closing, 421, STARTTLS response injection, TLS garbage, AUTH
# offered in clear, --data (a message as RFC 5321/5322 want it; a server
# that stalls or sends garbage after 354, or speaks before the message).
# Each probe must end with the right rows, within its
# deadline, and never send credentials in clear.
# Part 2 (root): a private Postfix (tests/lib/postfix.sh, no milter, 127.0.0.1
# outside mynetworks) with a plain listener (AUTH also without TLS), a
# submission listener (smtpd_tls_auth_only), one with VRFY disabled, an
# open relay, one without TLS and one with implicit TLS, and smtp-sink as
# its relayhost (--data's message must arrive there); plus an
# unreachable port. Expected rows come from RFC 5321/3207/4954 and
# Postfix's documented replies, not from probe.c.
# A trap on EXIT stops every server by PID. WARDEN_PROBE_KEEP=1 keeps
# the temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
BIN=${1:-src/warden}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac

. tests/lib/servers.sh
. tests/lib/postfix.sh

T_TAIL=60 T_CUT=300
. tests/lib/tap.sh

if [ ! -x "$BIN" ]; then
	tap_fail "warden binary $BIN is executable"
	finish
fi

T=$(mktemp -d /tmp/warden-probe.XXXXXX) || exit 1
chmod 755 "$T"
OUT=$T/out
mkdir -p "$OUT"
FAKE_PID=
cleanup() {
	set +e
	pf_stop
	sink_stop
	stop_pid "$FAKE_PID" 5
	if [ -n "${WARDEN_PROBE_KEEP:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# probe NAME ARGS...: output in $OUT/NAME.out (stderr NAME.err), exit
# status in PRC, wall time in PMS (ms). timeout(1) is only a backstop.
probe() {
	local name=$1 t0
	shift
	t0=$(date +%s%N)
	timeout 120 "$BIN" probe "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
	PRC=$?
	PMS=$((($(date +%s%N) - t0) / 1000000))
}
# row FILE STEP VERDICT [CODE [ENH [REST-ERE]]]: a table row
row() {
	local re="^$2 +$3 +${4:--} +${5:--} "
	[ -n "${6:-}" ] && re="$re.*$6"
	t_re "$1" "$re"
}
# why FILE STEP ERE: the reason line under STEP's row matches ERE
why() {
	local got
	got=$(sed -n "/^$2 /{n;p;q}" "$1")
	printf '%s\n' "$got" | grep -Eq -- "^ +-> .*$3" ||
	    T_ERR+=("reason of $2: got '$got', want /$3/")
}
# within MS: the last probe took less than MS milliseconds
within() { [ "$PMS" -lt "$1" ] || T_ERR+=("took ${PMS} ms, want < $1 ms"); }

# ======================================================================
# Part 1: scripted servers
MODES="good harvest escape ctrl longline endless garbage codechange barelf
silent drip stallehlo close busy inject tlsjunk authclear datagood datastall
datagarbage dataearly"
declare -A FP
args=()
for m in $MODES; do
	free_port "FP[$m]"
	args+=("$m=${FP[$m]}")
done
mkdir -p "$T/fake"
python3 tests/probe/fakesmtp.py "$T/fake" "${args[@]}" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
t_begin "scripted SMTP servers listen"
wait_grep 10 "$T/fake.out" '^ready$' || t_true "fakesmtp.py not ready"
t_end "$T/fake.out" || finish
fp() { echo "127.0.0.1:${FP[$1]}"; }

probe good "$(fp good)" --timeout 5
t_begin "good: well-behaved ESMTP without STARTTLS: warning only, exit 0"
t_eq "exit" "$PRC" 0
row "$OUT/good.out" connect ok
row "$OUT/good.out" banner ok 220 - 'fake\.example ESMTP$'
row "$OUT/good.out" ehlo ok 250 - 'EHLO [^ ]+ +fake\.example$'
t_re "$OUT/good.out" '^ {69}ENHANCEDSTATUSCODES$'
row "$OUT/good.out" auth-before-tls ok
row "$OUT/good.out" starttls warning - - 'not offered'
why "$OUT/good.out" starttls 'RFC 3207'
row "$OUT/good.out" vrfy ok 252 2.0.0 'VRFY postmaster'
row "$OUT/good.out" vrfy-unknown ok 252 2.0.0 'VRFY warden-probe-[0-9a-f]{8} '
row "$OUT/good.out" expn ok 502 5.5.1
row "$OUT/good.out" mail ok 250 2.1.0 'MAIL FROM:<>'
row "$OUT/good.out" relay ok 554 5.7.1 'RCPT TO:<relay-test@warden-probe\.example>'
row "$OUT/good.out" rset ok 250 2.0.0
row "$OUT/good.out" quit ok 221 2.0.0
t_re "$OUT/good.out" '^summary: 11 ok, 1 warning, 0 problem: no problem found \(exit 0\)$'
t_nore "$T/fake/good.log" '^(DATA|AUTH)'
t_end "$OUT/good.out" "$OUT/good.err"

probe harvest "$(fp harvest)" --timeout 5 --rcpt john@fake.example
t_begin "harvest: VRFY 250, EXPN 250, open relay: each a problem, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/harvest.out" vrfy problem 250 2.1.5 'VRFY john@fake\.example +John Doe <john@fake\.example>$'
why "$OUT/harvest.out" vrfy 'harvest exposure.*disable_vrfy_command'
row "$OUT/harvest.out" expn problem 250 2.1.5 '<a@fake\.example>$'
t_re "$OUT/harvest.out" '^ {69}2\.1\.5 <b@fake\.example>$'
row "$OUT/harvest.out" rcpt ok 250 2.1.5 'RCPT TO:<john@fake\.example>'
row "$OUT/harvest.out" relay problem 250 2.1.5
why "$OUT/harvest.out" relay 'open relay'
t_re "$OUT/harvest.out" '^summary: .* 3 problem: problems found \(exit 1\)$'
t_end "$OUT/harvest.out"

probe escape "$(fp escape)" --timeout 5
t_begin "escape: server bytes >= 0x80, quotes and backslashes printed escaped, in rows and reasons"
t_eq "exit" "$PRC" 1
row "$OUT/escape.out" banner ok 220 - 'caf\\xc3\\xa9 \\"quoted\\" back\\\\slash$'
t_re "$OUT/escape.out" '^ {69}AUTH PLAIN X\\xc3\\xa9$'
why "$OUT/escape.out" auth-before-tls 'AUTH PLAIN X\\xc3\\xa9 offered without TLS'
LC_ALL=C grep -q $'[\x80-\xff]' "$OUT/escape.out" && t_true "raw byte >= 0x80 in the output"
t_end "$OUT/escape.out"

probe ctrl "$(fp ctrl)" --timeout 5
t_begin "ctrl: ESC and BEL in the banner: malformed, shown escaped, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/ctrl.out" banner problem - - '220 evil\\x1b\[2J\\x07 text\\x0d\\x0a$'
why "$OUT/ctrl.out" banner 'malformed reply: line 1: control byte 0x1b'
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$OUT/ctrl.out" && t_true "raw control byte in the output"
t_end "$OUT/ctrl.out"

# name mode why-ERE: a malformed banner ends the session at once
for c in "longline|line 1 longer than 512 octets|220 x{60,}\.\.\.$" \
    "endless|more than 100 lines|220-x" \
    "garbage|line 1 does not start with a reply code|SSH-2\.0-OpenSSH" \
    "codechange|line 2 has code 250, line 1 had 220|" \
    "barelf|line 1 ends in a bare LF, not CRLF|220 fake\.example ESMTP\\\\x0a$"; do
	IFS='|' read -r m w seen <<<"$c"
	probe "$m" "$(fp "$m")" --timeout 5
	t_begin "$m: banner problem \"$w\" at once (< 2 s), exit 1"
	t_eq "exit" "$PRC" 1
	row "$OUT/$m.out" banner problem - - "$seen"
	why "$OUT/$m.out" banner "malformed reply: $w"
	t_nore "$OUT/$m.out" '^ehlo '
	within 2000
	t_end "$OUT/$m.out"
done

for m in silent drip; do
	probe "$m" "$(fp "$m")" --timeout 2
	t_begin "$m: no complete banner: given up after the 2 s deadline, exit 1"
	t_eq "exit" "$PRC" 1
	row "$OUT/$m.out" banner problem
	why "$OUT/$m.out" banner 'no complete reply within 2 s'
	[ "$PMS" -ge 1900 ] || t_true "gave up after $PMS ms, before the deadline"
	within 3500
	t_end "$OUT/$m.out"
done
t_re "$OUT/drip.out" '^banner +problem +- +- +- +220-x+$'

probe stallehlo "$(fp stallehlo)" --timeout 2
t_begin "stallehlo: EHLO never answered: ehlo problem after 2 s, no QUIT wait, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/stallehlo.out" banner ok 220
row "$OUT/stallehlo.out" ehlo problem - - '-$'
why "$OUT/stallehlo.out" ehlo 'no complete reply within 2 s'
t_nore "$OUT/stallehlo.out" '^quit '
within 3500
t_end "$OUT/stallehlo.out"

probe close "$(fp close)" --timeout 5
t_begin "close: closed without a greeting: banner problem, exit 1 (reached)"
t_eq "exit" "$PRC" 1
row "$OUT/close.out" connect ok
row "$OUT/close.out" banner problem
why "$OUT/close.out" banner 'connection closed by the server$'
t_end "$OUT/close.out"

probe busy "$(fp busy)" --timeout 5
t_begin "busy: 421 greeting: banner problem with its codes, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/busy.out" banner problem 421 4.3.2 'System busy, try later$'
t_nore "$OUT/busy.out" '^ehlo '
t_end "$OUT/busy.out"

probe inject "$(fp inject)" --timeout 5
t_begin "inject: data after STARTTLS's 220: response injection, no handshake"
t_eq "exit" "$PRC" 1
row "$OUT/inject.out" starttls problem 220 2.0.0
why "$OUT/inject.out" starttls '20 bytes after the 220, before TLS: response injection'
t_nore "$OUT/inject.out" '^tls '
t_end "$OUT/inject.out"

probe tlsjunk "$(fp tlsjunk)" --timeout 5
t_begin "tlsjunk: garbage instead of a TLS handshake: tls problem, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/tlsjunk.out" starttls ok 220 2.0.0
row "$OUT/tlsjunk.out" tls problem
why "$OUT/tlsjunk.out" tls 'TLS handshake'
t_end "$OUT/tlsjunk.out"

probe authclear "$(fp authclear)" --timeout 5 --auth "probeuser:Sup3rSecret"
t_begin "authclear: AUTH offered in clear, --auth given: refused, never sent"
t_eq "exit" "$PRC" 1
row "$OUT/authclear.out" auth-before-tls problem - - 'AUTH offered'
why "$OUT/authclear.out" auth-before-tls 'AUTH PLAIN LOGIN offered without TLS'
row "$OUT/authclear.out" auth problem
why "$OUT/authclear.out" auth 'never sends credentials in clear'
# nothing of the credentials: AUTH PLAIN's base64, AUTH LOGIN's two
b64=$(printf '\0probeuser\0Sup3rSecret' | base64 -w0)
t_nore "$T/fake/authclear.log" "^AUTH|probeuser|Sup3rSecret|$b64|cHJvYmV1c2Vy|U3VwM3JTZWNyZXQ"
t_nore "$OUT/authclear.out" "Sup3rSecret|$b64"
t_re "$T/fake/authclear.log" '^QUIT$'
t_end "$OUT/authclear.out" "$T/fake/authclear.log"

probe datagood "$(fp datagood)" --timeout 5 --data --rcpt a@fake.example \
    --rcpt b@fake.example --from sender@probe.example
F=$OUT/datagood.out
t_begin "datagood: --data sends DATA, a CRLF message ended by CRLF.CRLF, 250; relay test in a new transaction, exit 0"
t_eq "exit" "$PRC" 0
row "$F" rcpt ok 250 2.1.5 'RCPT TO:<b@fake\.example>'
row "$F" data ok 354 - 'DATA +End data with'
row "$F" message ok 250 2.0.0 '\([0-9]+ bytes\) CRLF\.CRLF +Ok: queued as 4FAKE1$'
why "$F" message 'test message accepted'
row "$F" relay-mail ok 250 2.1.0 'MAIL FROM:<sender@probe\.example>'
row "$F" relay ok 554 5.7.1
row "$F" rset ok 250 2.0.0
row "$F" quit ok 221 2.0.0
t_eq "steps after ehlo" "$(sed -n 's/^\(mail\|rcpt\|data\|message\|relay-mail\|relay\|rset\|quit\) .*/\1/p' "$F" | tr '\n' ' ')" \
    "mail rcpt rcpt data message relay-mail relay rset quit "
L=$T/fake/datagood.log R=$T/fake/datagood.raw
# the message, from the line after DATA to the "." line, as sent
sed -n '/^DATA/,/^\.\r$/p' "$R" | sed 1d >"$OUT/datagood.msg"
t_eq "lines without CR" "$(grep -vc $'\r$' "$OUT/datagood.msg")" 0
t_eq "last line" "$(tail -n 1 "$OUT/datagood.msg" | od -An -c | tr -s ' ')" " . \r \n"
t_re "$L" '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 2[0-9]{3} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] \+0000$'
t_re "$L" '^From: <sender@probe\.example>$'
t_eq "To: folded" "$(grep -A1 '^To: ' "$L")" "To: <a@fake.example>,
 <b@fake.example>"
t_re "$L" '^Subject: warden probe test$'
t_re "$L" '^Message-ID: <warden-probe\.[0-9]+\.[0-9a-f]{16}@[^ >]+>$'
t_eq "body (after the empty line)" "$(sed -n '/^$/,/^\.$/p' "$L" | sed '1d;$d')" \
    "A test message sent by warden probe --data; it can be deleted."
t_eq "DATA sent" "$(grep -c '^DATA$' "$L")" 1
t_end "$F" "$R"

probe nodata "$(fp datagood)" --timeout 5 --rcpt a@fake.example
t_begin "datagood without --data: RCPT then RSET, no DATA sent"
t_eq "exit" "$PRC" 0
t_nore "$OUT/nodata.out" '^(data|message|relay-mail) '
row "$OUT/nodata.out" rset ok 250 2.0.0
t_eq "DATA lines in the log" "$(grep -c '^DATA' "$T/fake/datagood.log")" 1
t_end "$OUT/nodata.out"

probe datastall "$(fp datastall)" --timeout 2 --data --rcpt a@fake.example
t_begin "datastall: 354, then no reply to the message: problem after the 2 s deadline, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/datastall.out" data ok 354
row "$OUT/datastall.out" message problem - - '\([0-9]+ bytes\) CRLF\.CRLF +-$'
why "$OUT/datastall.out" message 'no complete reply within 2 s'
t_nore "$OUT/datastall.out" '^(quit|relay|rset) '
[ "$PMS" -ge 1900 ] || t_true "gave up after $PMS ms, before the deadline"
within 3500
t_end "$OUT/datastall.out"

probe datagarbage "$(fp datagarbage)" --timeout 5 --data --rcpt a@fake.example
t_begin "datagarbage: binary garbage after the message: malformed reply, problem at once, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/datagarbage.out" message problem - - '\\x16\\x03\\x01garbage'
why "$OUT/datagarbage.out" message 'malformed reply: line 1 does not start with a reply code'
t_nore "$OUT/datagarbage.out" '^(quit|relay) '
within 2000
t_end "$OUT/datagarbage.out"

probe dataearly "$(fp dataearly)" --timeout 5 --data --rcpt a@fake.example
t_begin "dataearly: a reply right after 354, before the message: problem, message never sent"
t_eq "exit" "$PRC" 1
row "$OUT/dataearly.out" data problem 354 - 'DATA +go ahead$'
why "$OUT/dataearly.out" data '[0-9]+ bytes after the 354, before the message'
t_nore "$OUT/dataearly.out" '^message '
t_nore "$T/fake/dataearly.log" '^Subject:'
t_end "$OUT/dataearly.out"

probe json "$(fp harvest)" --timeout 5 --json
t_begin "json: the harvest probe as one JSON document with the same verdicts"
t_eq "exit" "$PRC" 1
python3 - "$OUT/json.out" >"$OUT/json.check" 2>&1 <<'EOF' || t_true "$(cat "$OUT/json.check")"
import json, sys
d = json.load(open(sys.argv[1]))
v = {s["step"]: (s["verdict"], s["code"], s["enhanced"]) for s in d["steps"]}
assert v["vrfy"] == ("problem", 250, "2.1.5"), v["vrfy"]
assert v["relay"][0] == "problem", v["relay"]
assert d["summary"]["problem"] == 3 and d["exit"] == 1, d["summary"]
exp = [s for s in d["steps"] if s["step"] == "expn"][0]
assert exp["reply"] == ["<a@fake.example>", "2.1.5 <b@fake.example>"], exp
EOF
t_end "$OUT/json.out"

t_begin "usage errors: exit 2 with a message"
for a in "" "127.0.0.1:0" "127.0.0.1:99999" "a b" "--tls --starttls 127.0.0.1" \
    "--bogus 127.0.0.1" "127.0.0.1 --timeout 0" "127.0.0.1 --rcpt a\<b" \
    "127.0.0.1 --auth nopass" "127.0.0.1 127.0.0.2" "127.0.0.1 --data"; do
	# shellcheck disable=SC2086
	env -u WARDEN_PROBE_PASSWORD "$BIN" probe $a >"$OUT/usage.out" 2>"$OUT/usage.err"
	rc=$?
	[ "$rc" -eq 2 ] || t_true "probe $a: exit $rc, want 2"
	grep -q '^warden probe: ' "$OUT/usage.err" || t_true "probe $a: no message"
	[ -s "$OUT/usage.out" ] && t_true "probe $a: wrote to stdout"
done
t_end "$OUT/usage.err"

free_port DEAD
probe unreachable "127.0.0.1:$DEAD" --timeout 3
t_begin "unreachable port: connect problem (connection refused), exit 3"
t_eq "exit" "$PRC" 3
row "$OUT/unreachable.out" connect problem
why "$OUT/unreachable.out" connect "host unreachable: 127\.0\.0\.1 port $DEAD: Connection refused"
t_re "$OUT/unreachable.out" '^summary: .*host unreachable \(exit 3\)$'
t_end "$OUT/unreachable.out"

probe noname "no-such-host.invalid:25" --timeout 3
t_begin "unresolvable name (.invalid): connect problem, exit 3, within the deadline"
t_eq "exit" "$PRC" 3
row "$OUT/noname.out" connect problem
within 4500
t_end "$OUT/noname.out"

# ======================================================================
# Part 2: a private Postfix
if [ "$(id -u)" -ne 0 ]; then
	tap_skip "Postfix listeners" "needs root (postfix start)"
	finish
fi
PKGS="postfix sasl2-bin libsasl2-modules"
if ! WARDEN_EXTRA_PKGS=$PKGS tests/lib/deps.sh >/dev/null 2>&1; then
	tap_fail "install $PKGS" "$(WARDEN_EXTRA_PKGS=$PKGS tests/lib/deps.sh 2>&1 | tail -5)"
	finish
fi

free_port PF_SMTP PF_SUB PF_SINK
free_port PF_MILTER
free_port P_NOVRFY P_OPEN P_NOTLS
free_port P_SMTPS
echo "# temp dir $T; ports: smtp=$PF_SMTP submission=$PF_SUB novrfy=$P_NOVRFY open=$P_OPEN notls=$P_NOTLS smtps=$P_SMTPS"
: >"$T/macros.cf"
PF_MACROS=$T/macros.cf
PF_RELAY_DOMAINS="example.com harvest.example"
PF_RELAY_RCPTS="@example.com ok
valid@harvest.example ok"
# No milter: this is Postfix's own face. 127.0.0.1 is not trusted, as
# a client on the Internet would not be (the open-relay listener is).
PF_MAIN_EXTRA="smtpd_milters =
mynetworks = 192.0.2.0/24"
t_begin "private Postfix with six listeners and smtp-sink (its relayhost) start"
sink_start "$T/sink" "$PF_SINK" || t_true "smtp-sink does not listen on $PF_SINK"
pf_setup "$T/pf" || t_true "pf_setup failed"
pf_add_smtpd "$P_NOVRFY" novrfy disable_vrfy_command=yes smtpd_tls_auth_only=yes
pf_add_smtpd "$P_OPEN" openrelay mynetworks=127.0.0.0/8
pf_add_smtpd "$P_NOTLS" notls smtpd_tls_security_level=none
pf_add_smtpd "$P_SMTPS" smtps smtpd_tls_wrappermode=yes smtpd_tls_auth_only=yes
if [ ${#T_ERR[@]} -eq 0 ]; then
	pf_start || t_true "postfix did not start"
	for p in $P_NOVRFY $P_OPEN $P_NOTLS $P_SMTPS; do
		wait_listening "$p" 10 || t_true "nothing listens on $p"
	done
fi
t_end "$T/pf/maillog" "$T/sink/sink.out" || finish
CERT=$T/pf/tls/cert.pem

probe pf-plain "127.0.0.1:$PF_SMTP" --rcpt valid@harvest.example
t_begin "Postfix plain listener: AUTH offered before STARTTLS is a problem, exit 1"
F=$OUT/pf-plain.out
t_eq "exit" "$PRC" 1
row "$F" banner ok 220 - 'mx\.example\.test ESMTP Postfix'
row "$F" ehlo ok 250 - 'mx\.example\.test$'
t_re "$F" '^ {69}STARTTLS$'
t_re "$F" '^ {69}AUTH PLAIN LOGIN$'
row "$F" auth-before-tls problem - - 'AUTH offered'
why "$F" auth-before-tls 'AUTH PLAIN LOGIN offered without TLS.*smtpd_tls_auth_only = yes'
row "$F" starttls ok 220 2.0.0 'Ready to start TLS$'
row "$F" tls ok - - 'TLSv1\.[23] [A-Z0-9_-]+ [0-9]+ bits$'
row "$F" certificate warning - - 'subject=CN=mx\.example\.test issuer=CN=mx\.example\.test expires=[0-9-]{10} key=RSA 2048 bits$'
why "$F" certificate 'not verified \(self-signed certificate'
row "$F" ehlo-tls ok 250
row "$F" caps-change ok
why "$F" caps-change '-STARTTLS'
row "$F" auth-offer ok - - 'AUTH offered'
row "$F" vrfy ok 252 2.0.0 'VRFY valid@harvest\.example'
row "$F" vrfy-unknown warning 550 5.1.1 'User unknown in relay recipient table'
why "$F" vrfy-unknown '252 for the given address, 550 for a made-up one'
row "$F" expn ok 500 5.5.2 'EXPN valid@harvest\.example +Error: command not recognized$'
row "$F" mail ok 250 2.1.0
row "$F" rcpt ok 250 2.1.5 'RCPT TO:<valid@harvest\.example>'
row "$F" relay ok 454 4.7.1 'Relay access denied'
row "$F" rset ok 250 2.0.0
row "$F" quit ok 221 2.0.0
t_re "$F" '^summary: [0-9]+ ok, 2 warning, 1 problem: problems found \(exit 1\)$'
t_end "$F"

probe pf-data "127.0.0.1:$PF_SMTP" --data --rcpt valid@harvest.example \
    --from probe@example.com
F=$OUT/pf-data.out
t_begin "Postfix --data: DATA 354, message 250 queued under TLS, relayed to smtp-sink"
t_eq "exit (AUTH before TLS)" "$PRC" 1
row "$F" rcpt ok 250 2.1.5 'RCPT TO:<valid@harvest\.example>'
row "$F" data ok 354 - 'DATA +End data with <CR><LF>\.<CR><LF>$'
row "$F" message ok 250 2.0.0 '\([0-9]+ bytes\) CRLF\.CRLF +Ok: queued as [0-9A-Za-z]+$'
row "$F" relay-mail ok 250 2.1.0
row "$F" relay ok 454 4.7.1 'Relay access denied'
row "$F" quit ok 221 2.0.0
qid=$(sed -n 's/^message .*Ok: queued as \([0-9A-Za-z]*\)$/\1/p' "$F")
if [ -z "$qid" ]; then
	t_true "no queue id in the message row"
else
	wait_grep 15 "$T/pf/maillog" "^.* $qid: to=<valid@harvest\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PF_SINK,.* status=sent " ||
	    t_true "no status=sent to smtp-sink for $qid in maillog"
	t_re "$T/pf/maillog" " $qid: message-id=<warden-probe\.[0-9]+\.[0-9a-f]{16}@"
fi
dump=$(grep -l '^Subject: warden probe test' "$T"/sink/msgs/msg.* 2>/dev/null | head -1)
if [ -z "$dump" ]; then
	t_true "no message with Subject: warden probe test at smtp-sink"
else
	cp "$dump" "$OUT/pf-data.msg"
	t_re "$OUT/pf-data.msg" '^From: <probe@example\.com>'
	t_re "$OUT/pf-data.msg" '^To: <valid@harvest\.example>'
	t_re "$OUT/pf-data.msg" '^A test message sent by warden probe --data; it can be deleted\.'
fi
t_end "$F" "$T/pf/maillog"

probe pf-sub "127.0.0.1:$PF_SUB" --submission --rcpt valid@harvest.example
t_begin "Postfix submission (smtpd_tls_auth_only): AUTH only after STARTTLS, exit 0"
F=$OUT/pf-sub.out
t_eq "exit" "$PRC" 0
t_re "$F" 'submission listener'
row "$F" auth-before-tls ok - - 'no AUTH'
row "$F" starttls ok 220 2.0.0
row "$F" auth-offer ok - - 'AUTH offered'
why "$F" auth-offer 'AUTH PLAIN LOGIN offered under TLS'
why "$F" caps-change '\+AUTH -STARTTLS'
t_nore "$F" '^[a-z-]+ +problem '
t_end "$F"

probe pf-auth "127.0.0.1:$PF_SUB" --submission --auth "$PF_USER:$PF_PASS"
t_begin "Postfix submission --auth: AUTH PLAIN under TLS 235, relay allowed, password never printed"
F=$OUT/pf-auth.out
t_eq "exit" "$PRC" 0
row "$F" auth ok 235 2.7.0 'AUTH PLAIN \*\*\*\* +Authentication successful$'
row "$F" relay ok 250 2.1.5
why "$F" relay 'relay allowed after AUTH'
b64=$(printf '\0%s\0%s' "$PF_USER" "$PF_PASS" | base64 -w0)
t_nore "$F" "$PF_PASS|$b64"
t_nore "$OUT/pf-auth.err" "$PF_PASS|$b64"
t_end "$F"

probe pf-badauth "127.0.0.1:$PF_SUB" --submission --auth "$PF_USER:wrong-password"
t_begin "Postfix submission, wrong password: auth problem 535 5.7.8, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/pf-badauth.out" auth problem 535 5.7.8
row "$OUT/pf-badauth.out" relay ok 454 4.7.1
t_end "$OUT/pf-badauth.out"

probe pf-novrfy "127.0.0.1:$P_NOVRFY" --rcpt valid@harvest.example
t_begin "Postfix disable_vrfy_command = yes: VRFY 502 5.5.1 both times, exit 0"
F=$OUT/pf-novrfy.out
t_eq "exit" "$PRC" 0
row "$F" vrfy ok 502 5.5.1 'VRFY command is disabled$'
row "$F" vrfy-unknown ok 502 5.5.1
row "$F" expn ok 500 5.5.2
t_nore "$F" '^[a-z-]+ +problem '
t_end "$F"

probe pf-open "127.0.0.1:$P_OPEN"
t_begin "Postfix with 127.0.0.1 in mynetworks: relay test accepted, problem, exit 1"
t_eq "exit" "$PRC" 1
row "$OUT/pf-open.out" relay problem 250 2.1.5
t_end "$OUT/pf-open.out"

probe pf-notls "127.0.0.1:$P_NOTLS"
probe pf-notls-req "127.0.0.1:$P_NOTLS" --starttls
t_begin "Postfix without TLS: STARTTLS warning, with --starttls problem; AUTH in clear problem"
t_eq "exit" "$PRC" 1
row "$OUT/pf-notls.out" starttls warning - - 'not offered'
row "$OUT/pf-notls.out" auth-before-tls problem
row "$OUT/pf-notls-req.out" starttls problem - - 'not offered'
why "$OUT/pf-notls-req.out" starttls '--starttls requires it'
t_nore "$OUT/pf-notls.out" '^(tls|auth-offer) '
t_end "$OUT/pf-notls.out" "$OUT/pf-notls-req.out"

probe pf-smtps "127.0.0.1:$P_SMTPS" --tls --submission --cafile "$CERT"
t_begin "Postfix implicit TLS (--tls, --cafile): TLS before the banner, exit 0"
F=$OUT/pf-smtps.out
t_eq "exit" "$PRC" 0
t_eq "first step rows" "$(grep -Eo '^(connect|tls|certificate|banner|ehlo) ' "$F" | tr -d ' ' | tr '\n' ' ')" \
    "connect tls certificate banner ehlo "
row "$F" tls ok
# --cafile trusts the self-signed certificate; only the name is wrong.
why "$F" certificate 'not verified \(IP address mismatch\)'
row "$F" auth-offer ok
t_nore "$F" '^(starttls|auth-before-tls) '
t_end "$F"

probe pf-json "127.0.0.1:$PF_SUB" --submission --json
t_begin "Postfix submission --json: valid JSON, exit 0"
t_eq "exit" "$PRC" 0
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["exit"]==0 and d["summary"]["problem"]==0; assert any(s["step"]=="tls" and s["verdict"]=="ok" for s in d["steps"])' \
    "$OUT/pf-json.out" 2>"$OUT/pf-json.check" || t_true "$(cat "$OUT/pf-json.check")"
t_end "$OUT/pf-json.out"

for f in pf-plain pf-sub pf-auth pf-data; do
	echo "# --- warden probe ($f)"
	sed 's/^/#   /' "$OUT/$f.out"
done
finish
