# sendmail.sh - a private Sendmail 8.17 on loopback, unpacked from Debian's
# packages (bash). Recipe: /work/shared/notes/sendmail-private.md.
# Source servers.sh first.
#
# Debian's sendmail-bin conflicts with postfix under apt, so nothing is
# installed: the three packages are fetched with `apt-get download` into a
# cache directory (kept across runs) and unpacked with `dpkg -x` into the
# test directory. /etc/mail, the system queue and any system MTA are never
# read, started or stopped. Sendmail runs in the foreground (-bD) inside
# its own UTS and mount namespaces (unshare, root only):
#   - UTS: a dotted host name (SM_HOST). Sendmail qualifies the machine's
#     name before it reads the .cf and sleeps 60 s when it cannot.
#   - mount: Cyrus SASL reads Sendmail.conf only from a fixed search path;
#     the test's directory is bind-mounted over /usr/lib/sasl2 (it exists
#     wherever libsasl2-2 is installed). With SM_SYSLOG set, /dev is
#     replaced by a small tmpfs whose /dev/log is SM_SYSLOG (a datagram
#     socket, see syslog_start in servers.sh): Sendmail's log lines land in
#     a file although the machine has no syslogd.
#
#   sm_debs DIR             the three .debs in DIR (downloads only the
#                           missing ones); prints why on failure
#   sm_unpack DIR ROOT      dpkg -x each .deb of DIR into ROOT; checks that
#                           the binary runs and has MILTER, STARTTLS, SASLv2
#   sm_setup DIR            writes DIR/sendmail.mc, builds DIR/sendmail.cf,
#                           TLS cert, sasldb (SM_USER/SM_PASS), queue.
#                           Needs: SM_ROOT (unpacked), SM_SMTP SM_SUB
#                           SM_BLOCK SM_SINK (ports), SM_FILTER_MC (.mc
#                           lines for the milter: contrib/sendmail/warden.mc
#                           with the test's socket), optional SM_MACROS
#                           (file of confMILTER_MACROS_* define lines, after
#                           SM_FILTER_MC: they win),
#                           SM_RELAY_DOMAINS (RELAY_DOMAIN list),
#                           optional SM_LOCAL_DOMAINS (LOCAL_DOMAIN: their
#                           unknown users are refused with 550 5.1.1 User
#                           unknown), SM_ALIASES (aliases file lines),
#                           SM_VIRTUSER (virtusertable lines) for
#                           SM_VIRTUSER_DOMAINS,
#                           SM_MC_EXTRA (more .mc lines, before MAILER).
#                           Listeners: MTA on SM_SMTP, MSA on SM_SUB (no
#                           M=a: warden decides), "blocked" on SM_BLOCK.
#   sm_cf MC CF             m4 MC into CF (the unpacked sendmail-cf)
#   sm_start / sm_stop      the daemon (with SM_CF, default DIR/sendmail.cf),
#                           by PID (SM_PID); sm_stop is bounded, then KILL
#   sm_bs CF CMD...         one SMTP session over a pipe (-bs) with CF, in the
#                           same namespaces, each command sent after the
#                           reply to the previous one; output as smtp_raw
#   sm_mailq                the queue listing (-bp), quarantined ones with -qQ
# Files: DIR/sendmail.out (stdout/stderr of the daemon), DIR/mqueue.

SM_USER=${SM_USER:-testuser}
SM_PASS=${SM_PASS:-secret123}
SM_HOST=${SM_HOST:-sm.example.test}
SM_PKGS="sendmail-bin sendmail-base sendmail-cf"
SM_PID=

# _sm_deb DIR PKG: the newest cached PKG_*.deb in DIR (empty when none)
_sm_deb() {
	ls -v "$1/$2_"*.deb 2>/dev/null | tail -n 1
}

sm_debs() {
	local dir=$1 p missing=""
	mkdir -p "$dir" || return 1
	for p in $SM_PKGS; do
		[ -n "$(_sm_deb "$dir" "$p")" ] || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	# stale or absent package lists on a fresh machine: update once
	( cd "$dir" && apt-get download $missing >download.log 2>&1 ) ||
	    ( apt-get update -qq >/dev/null 2>&1
	      cd "$dir" && apt-get download $missing >download.log 2>&1 ) || {
		echo "apt-get download$missing (in $dir) failed: $(tail -n 2 "$dir/download.log" | tr '\n' ' ')"
		return 1
	}
	for p in $SM_PKGS; do
		[ -n "$(_sm_deb "$dir" "$p")" ] || {
			echo "no ${p}_*.deb in $dir after apt-get download"
			return 1
		}
	done
}

sm_unpack() {
	local dir=$1 root=$2 p d sm
	mkdir -p "$root" || return 1
	for p in $SM_PKGS; do
		d=$(_sm_deb "$dir" "$p")
		dpkg -x "$d" "$root" || { echo "dpkg -x $d failed"; return 1; }
	done
	sm=$root/usr/libexec/sendmail/sendmail
	[ -x "$sm" ] || { echo "no $sm in the unpacked packages"; return 1; }
	if ldd "$sm" | grep -q 'not found'; then
		echo "$sm misses libraries: $(ldd "$sm" | grep 'not found' | tr -s ' \t\n' ' ')"
		return 1
	fi
	# -d0.1 -bt -C /dev/null: the version and build options, no
	# configuration; in a UTS namespace too (it would sleep 60 s first)
	unshare -u sh -c "hostname '$SM_HOST' && exec '$sm' -d0.1 -bt -C /dev/null" \
	    </dev/null 2>/dev/null >"$root/compiled-with"
	for d in MILTER STARTTLS SASLv2; do
		grep -qw "$d" "$root/compiled-with" ||
		    { echo "$sm is not compiled with $d"; return 1; }
	done
}

sm_cf() {
	local cf=$SM_ROOT/usr/share/sendmail/cf
	m4 -D_CF_DIR_="$cf/" "$cf/m4/cf.m4" "$1" >"$2.new" 2>"$2.m4err" &&
	    [ ! -s "$2.m4err" ] && mv "$2.new" "$2"
}

sm_setup() {
	SM_DIR=$1
	local d=$SM_DIR
	mkdir -p "$d/mqueue" "$d/tls" "$d/sasl" || return 1
	chmod 700 "$d/mqueue"
	printf '%s\n' "${SM_ALIASES:-}" >"$d/aliases"
	: >"$d/sendmail.st"
	# no DNS: no MX or PTR lookups for the test domains
	printf 'hosts files\naliases files\n' >"$d/service.switch"
	printf '%s\n' "${SM_VIRTUSER:-}" >"$d/virtusertable"

	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
	    -subj "/CN=$SM_HOST" -keyout "$d/tls/key.pem" \
	    -out "$d/tls/cert.pem" >/dev/null 2>&1 || return 1
	chmod 600 "$d/tls/key.pem"

	# Cyrus: Sendmail's application name is "Sendmail"
	printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s\n' \
	    "$d/sasl/sasldb2" >"$d/sasl/Sendmail.conf"
	echo "$SM_PASS" | saslpasswd2 -c -p -f "$d/sasl/sasldb2" \
	    -u "$SM_HOST" "$SM_USER" || return 1
	chmod 600 "$d/sasl/sasldb2"	# Sendmail refuses a group-readable one

	sm_mc >"$d/sendmail.mc" || return 1
	sm_cf "$d/sendmail.mc" "$d/sendmail.cf" || return 1
	# makemap reads the .cf (TrustedUser); /etc/mail has none. Both
	# complain about the world-writable /tmp above DIR (harmless).
	"$SM_ROOT/usr/libexec/sendmail/makemap" -C "$d/sendmail.cf" hash \
	    "$d/virtusertable" <"$d/virtusertable" 2>>"$d/setup.log" || return 1
	unshare -um sh -c "$(SM_SYSLOG= _sm_script \
	    "$SM_ROOT/usr/libexec/sendmail/sendmail" -C "$d/sendmail.cf" -bi)" \
	    >>"$d/setup.log" 2>&1
}

# The .mc: see contrib/sendmail/warden.mc for the lines a real one needs.
sm_mc() {
	local d=$SM_DIR
	cat <<EOF
divert(-1)
# private test instance (tests/lib/sendmail.sh): loopback only,
# relays everything to smtp-sink on 127.0.0.1:$SM_SINK
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`$SM_HOST')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/service.switch')dnl
define(\`QUEUE_DIR', \`$d/mqueue')dnl
define(\`STATUS_FILE', \`$d/sendmail.st')dnl
define(\`ALIAS_FILE', \`$d/aliases')dnl
define(\`HELP_FILE', \`$SM_ROOT/etc/mail/helpfile')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDEAD_LETTER_DROP', \`$d/dead.letter')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confMILTER_LOG_LEVEL', \`9')dnl
define(\`confTO_IDENT', \`0')dnl
dnl a busy CI machine must not make Sendmail queue or refuse (defaults 8, 12)
define(\`confQUEUE_LA', \`500')dnl
define(\`confREFUSE_LA', \`500')dnl
define(\`confDELAY_LA', \`0')dnl
dnl /tmp is world-writable: without this, files below it are "unsafe" and
dnl STARTTLS is silently not offered
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SM_SINK')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
RELAY_DOMAIN(\`$SM_RELAY_DOMAINS')dnl
EOF
	[ -z "${SM_LOCAL_DOMAINS:-}" ] ||
	    echo "LOCAL_DOMAIN(\`$SM_LOCAL_DOMAINS')dnl"
	if [ -n "${SM_VIRTUSER_DOMAINS:-}" ]; then
		cat <<EOF
FEATURE(\`virtusertable', \`hash -o $d/virtusertable')dnl
VIRTUSER_DOMAIN(\`$SM_VIRTUSER_DOMAINS')dnl
EOF
	fi
	cat <<EOF
DAEMON_OPTIONS(\`Family=inet, Addr=127.0.0.1, Port=$SM_SMTP, Name=MTA')dnl
DAEMON_OPTIONS(\`Family=inet, Addr=127.0.0.1, Port=$SM_SUB, Name=MSA, M=E')dnl
DAEMON_OPTIONS(\`Family=inet, Addr=127.0.0.1, Port=$SM_BLOCK, Name=blocked')dnl
define(\`confCACERT_PATH', \`$d/tls')dnl
define(\`confCACERT', \`$d/tls/cert.pem')dnl
define(\`confSERVER_CERT', \`$d/tls/cert.pem')dnl
define(\`confSERVER_KEY', \`$d/tls/key.pem')dnl
dnl AUTH PLAIN/LOGIN also without TLS (no "p" in AuthOptions), like the
dnl Postfix suite's plain listener: warden's auth-requires-tls decides
define(\`confAUTH_MECHANISMS', \`PLAIN LOGIN')dnl
TRUST_AUTH_MECH(\`PLAIN LOGIN')dnl
define(\`confAUTH_OPTIONS', \`A')dnl
EOF
	# the milter lines (INPUT_MAIL_FILTER, macros, PrivacyOptions), then
	# the macro lines warden check printed: a later define wins
	cat "$SM_FILTER_MC" || return 1
	[ -z "${SM_MACROS:-}" ] || cat "$SM_MACROS" || return 1
	[ -z "${SM_MC_EXTRA:-}" ] || printf '%s\n' "$SM_MC_EXTRA"
	cat <<EOF
MAILER(\`local')dnl
MAILER(\`smtp')dnl
EOF
}

# _sm_script CMD...: a sh -c script that sets up the namespaces described
# at the top, then execs CMD (arguments must not contain single quotes).
# Run it as: unshare -um sh -c "$(_sm_script ...)"
_sm_script() {
	local a cmd="" dev=""
	for a in "$@"; do cmd="$cmd '$a'"; done
	if [ -n "${SM_SYSLOG:-}" ]; then
		# keep the few real device nodes Sendmail, OpenSSL and SASL open
		dev="mkdir -p '$SM_DIR/dev.real' &&
		    mount --bind /dev '$SM_DIR/dev.real' &&
		    mount -t tmpfs -o mode=755,size=64k sm-dev /dev &&
		    for n in null zero random urandom; do
			: >/dev/\$n && mount --bind '$SM_DIR/dev.real/'\$n /dev/\$n || exit 71
		    done &&
		    ln -s '$SM_SYSLOG' /dev/log &&"
	fi
	printf '%s' "hostname '$SM_HOST' &&
	    mount --bind '$SM_DIR/sasl' /usr/lib/sasl2 && $dev
	    exec $cmd"
}

sm_start() {
	local sm=$SM_ROOT/usr/libexec/sendmail/sendmail
	# setsid, unshare and sh all exec: $! is Sendmail itself
	setsid unshare -um sh -c "$(_sm_script "$sm" -C "${SM_CF:-$SM_DIR/sendmail.cf}" \
	    -bD -q5m -L sm-test)" >>"$SM_DIR/sendmail.out" 2>&1 </dev/null &
	SM_PID=$!
	wait_listening "$SM_SMTP" 15 && wait_listening "$SM_SUB" 5 &&
	    wait_listening "$SM_BLOCK" 5
}

sm_stop() {
	stop_pid "$SM_PID" 10
	SM_PID=
}

sm_bs() {
	local cf=$1 c sm=$SM_ROOT/usr/libexec/sendmail/sendmail
	shift
	(
		coproc BS { unshare -um sh -c "$(SM_SYSLOG= _sm_script "$sm" \
		    -C "$cf" -bs)" 2>&1; }
		exec 3<&"${BS[0]}" 4>&"${BS[1]}"
		if _smtp_reply; then
			for c in "$@"; do
				echo "-> $c"
				printf '%s\r\n' "$c" >&4
				_smtp_reply || break
			done
		fi
		exec 4>&- 3<&-
		wait
	)
}

sm_mailq() {
	unshare -um sh -c "$(SM_SYSLOG= _sm_script \
	    "$SM_ROOT/usr/libexec/sendmail/sendmail" -C "$SM_DIR/sendmail.cf" \
	    -bp "$@")"
}
