#!/bin/bash
# tests/install/run.sh BINARY - how warden is installed (issue 10): make
# install/uninstall into a DESTDIR, the systemd unit, the rsyslog and
# logrotate snippets, the README's "top rules" one-liner, and the Debian
# package built, linted, installed, run, and purged. Prints TAP.
#
#   tests/install/run.sh src/warden
#
# Parts:
#   make    make install DESTDIR=tmp PREFIX=/usr (and the default PREFIX):
#           the tree, modes, the installed config as `warden check` sees
#           it, a second install over edited config, make uninstall.
#   unit    systemd-analyze verify on the installed unit (paths pointed
#           at the DESTDIR), its hardening lines, its exposure score.
#   logs    logrotate -d on contrib/logrotate, rsyslogd -N1 on
#           contrib/rsyslog (Debian's rsyslog unpacked, not installed),
#           the README one-liner on a sample log.
#   deb     dpkg-buildpackage in a copy of the working tree (the checkout
#           stays clean), lintian, dpkg -i, the user, conffiles, warden
#           check, the daemon started as the unit starts it and as root,
#           its socket, a milter session, dpkg --purge, nothing left.
#           Needs root and no warden package or /etc/warden present.
# Every daemon started here is stopped by PID; an installed package is
# purged on exit, also when a test fails. WARDEN_KEEP=1 keeps the temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
HERE=$ROOT/tests/install
. "$ROOT/tests/lib/servers.sh"
. "$ROOT/tests/lib/tap.sh"

if [ $# -ne 1 ]; then
	echo "usage: tests/install/run.sh BINARY" >&2
	exit 2
fi
if [ ! -x "$1" ]; then
	echo "Bail out! $1 is not an executable"
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-install.XXXXXX") || exit 1
WPID=
DEB_INSTALLED=0
RUNDIR_MADE=0

cleanup() {
	[ -n "$WPID" ] && stop_pid "$WPID" 10
	if [ "$DEB_INSTALLED" = 1 ]; then
		echo "# cleanup: dpkg --purge warden"
		dpkg_do --purge warden >/dev/null 2>&1
	fi
	[ "$RUNDIR_MADE" = 1 ] && rm -rf /run/warden
	if [ "${WARDEN_KEEP:-0}" = 1 ]; then
		echo "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM

# dpkg ARGS..., retried while another engineer's apt-get holds the lock
# (bounded: 2 minutes). Output in $TMP/dpkg.out.
dpkg_do() {
	local i rc
	for ((i = 0; i < 60; i++)); do
		dpkg "$@" >"$TMP/dpkg.out" 2>&1
		rc=$?
		[ $rc -ne 0 ] && grep -qi 'lock' "$TMP/dpkg.out" || break
		sleep 2
	done
	cat "$TMP/dpkg.out"
	return $rc
}

# files DIR: the regular files and links under DIR, relative, sorted
files() { (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort); }

mk() { make --no-print-directory -s "$@"; }

# ---------------------------------------------------------------- make
D=$TMP/dest
t_begin "make install DESTDIR PREFIX=/usr: the tree and its modes"
mk install DESTDIR="$D" PREFIX=/usr >"$TMP/install1.out" 2>&1 ||
    t_true "make install failed"
{
	echo usr/sbin/warden
	echo lib/systemd/system/warden.service
	echo etc/warden/warden.conf
	for f in rules/*.rules rules/*.map; do echo "etc/warden/$f"; done
	for f in man/*.[58]; do
		[ -e "$f" ] && echo "usr/share/man/man${f##*.}/${f#man/}"
	done
} | sort >"$TMP/want.files"
files "$D" >"$TMP/got.files"
diff -u "$TMP/want.files" "$TMP/got.files" >"$TMP/files.diff" ||
    t_true "installed files differ from the repository's: $(cat "$TMP/files.diff")"
t_eq "mode of sbin/warden" "$(stat -c %a "$D/usr/sbin/warden" 2>&1)" 755
while read -r f; do
	[ "$f" = usr/sbin/warden ] && continue
	t_eq "mode of $f" "$(stat -c %a "$D/$f" 2>&1)" 644
done <"$TMP/want.files"
for f in rules/*.rules rules/*.map man/*.[58]; do
	[ -e "$f" ] || continue
	case $f in
	rules/*) g=$D/etc/warden/$f ;;
	*) g=$D/usr/share/man/man${f##*.}/${f#man/} ;;
	esac
	cmp -s "$f" "$g" || t_true "$g is not a copy of $f"
done
U=$D/lib/systemd/system/warden.service
t_re "$U" '^ExecStart=/usr/sbin/warden run -c /etc/warden/warden.conf$'
t_nore "$U" '^Exec.*/usr/local'
t_end "$TMP/install1.out"

# The rest builds on a complete install; a broken build (someone
# mid-edit) fails the test above, not five more.
make_more() {
	C=$D/etc/warden/warden.conf
	t_begin "installed warden.conf: package values, and warden check accepts it"
	# What a package ships (DESIGN.md §2): user warden, a unix socket in the
	# unit's RuntimeDirectory, rules beside the config.
	t_re "$C" '^ *user *= *"warden";'
	t_re "$C" '^ *socket *= *"unix:/run/warden/warden\.sock";'
	t_re "$C" '^ *socket_mode *= *"0660";'
	t_re "$C" '^ *files *= *\[ *"rules/\*\.rules" *\];'
	# The rules path is relative to the config, so the DESTDIR copy checks
	# as /etc/warden's would, with no rewriting.
	"$D/usr/sbin/warden" check -c "$C" >"$TMP/check.out" 2>&1 ||
	    t_true "warden check -c $C exited $?"
	t_re "$TMP/check.out" "^check: $C: ok \(0 errors, 0 warnings\)$"
	nrules=$(ls rules/*.rules | wc -l)
	t_re "$TMP/check.out" "^files: $nrules$"
	t_end "$TMP/check.out"

	t_begin "make install again keeps an edited config and rule file"
	echo '# edited by the admin' >>"$C"
	R1=$(ls "$D"/etc/warden/rules/*.rules | head -1)
	echo '# edited by the admin' >>"$R1"
	cp "$C" "$TMP/conf.edited"
	cp "$R1" "$TMP/rule.edited"
	rm -f "$D/usr/sbin/warden"
	mk install DESTDIR="$D" PREFIX=/usr >"$TMP/install2.out" 2>&1 ||
	    t_true "make install (2nd) failed"
	cmp -s "$C" "$TMP/conf.edited" || t_true "warden.conf was overwritten"
	cmp -s "$R1" "$TMP/rule.edited" || t_true "$R1 was overwritten"
	t_line "$TMP/install2.out" "install: $C exists, kept"
	[ -x "$D/usr/sbin/warden" ] || t_true "the binary was not reinstalled"
	t_end "$TMP/install2.out"

	t_begin "make uninstall leaves only the edited config files"
	mk uninstall DESTDIR="$D" PREFIX=/usr >"$TMP/uninstall.out" 2>&1 ||
	    t_true "make uninstall failed"
	printf '%s\n' "etc/warden/warden.conf" "${R1#$D/}" | sort >"$TMP/want.left"
	files "$D" >"$TMP/got.left"
	diff -u "$TMP/want.left" "$TMP/got.left" >"$TMP/left.diff" ||
	    t_true "left after uninstall: $(cat "$TMP/left.diff")"
	t_line "$TMP/uninstall.out" "uninstall: $C was changed, kept"
	cmp -s "$C" "$TMP/conf.edited" || t_true "the edited warden.conf changed"
	t_end "$TMP/uninstall.out"

	t_begin "make install with the default PREFIX=/usr/local, then uninstall"
	D2=$TMP/dest2
	mk install DESTDIR="$D2" >"$TMP/install3.out" 2>&1 || t_true "make install failed"
	[ -x "$D2/usr/local/sbin/warden" ] || t_true "no usr/local/sbin/warden"
	t_re "$D2/lib/systemd/system/warden.service" '^ExecStart=/usr/local/sbin/warden run '
	ls "$D2"/usr/local/share/man/man8/*.8 >/dev/null 2>&1 ||
	    [ ! -e man/warden.8 ] || t_true "no man page under usr/local/share/man"
	mk uninstall DESTDIR="$D2" >>"$TMP/install3.out" 2>&1 || t_true "make uninstall failed"
	left=$(files "$D2")
	t_eq "files left after uninstall of an unedited install" "$left" ""
	t_end "$TMP/install3.out"
}
if [ -x "$D/usr/sbin/warden" ]; then
	make_more
else
	for t in "installed warden.conf" "make install again" "make uninstall" \
	    "make install with the default PREFIX"; do
		tap_skip "$t" "the first make install failed"
	done
fi

# ---------------------------------------------------------------- unit
UNIT=contrib/systemd/warden.service
t_begin "unit: the hardening lines"
for l in 'User=warden' 'Group=warden' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'PrivateDevices=yes' 'RuntimeDirectory=warden' \
    'ReadOnlyPaths=/etc/warden' 'CapabilityBoundingSet=' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'SystemCallFilter=@system-service' 'ExecReload=/bin/kill -HUP $MAINPID'; do
	t_line "$UNIT" "$l"
done
t_end

if ! command -v systemd-analyze >/dev/null; then
	tap_skip "unit: systemd-analyze verify" "systemd-analyze not installed (tests/lib/deps.sh installs systemd as root)"
	tap_skip "unit: exposure score" "systemd-analyze not installed"
else
	# verify checks that ExecStart's program exists and that man: links
	# resolve: point both at a fresh DESTDIR install.
	D3=$TMP/dest3 V=$TMP/verify
	mkdir -p "$V"
	mk install DESTDIR="$D3" PREFIX=/usr >"$TMP/install4.out" 2>&1
	sed "s|/usr/sbin/warden|$D3/usr/sbin/warden|g" \
	    "$D3/lib/systemd/system/warden.service" >"$V/warden.service"
	# Can verify run in this container at all? A trivial unit must pass.
	printf '[Service]\nExecStart=/bin/true\n' >"$V/trivial.service"
	if ! systemd-analyze verify "$V/trivial.service" >"$V/trivial.out" 2>&1 ||
	    [ -s "$V/trivial.out" ]; then
		tap_skip "unit: systemd-analyze verify" "verify fails on a trivial unit here: $(head -1 "$V/trivial.out")"
	else
		t_begin "unit: systemd-analyze verify accepts it (and catches a bad key)"
		# verify exits 0 on unknown keys but prints them: silence is the pass.
		MANPATH=$D3/usr/share/man systemd-analyze verify "$V/warden.service" \
		    >"$V/verify.out" 2>&1 || t_true "systemd-analyze verify exited $?"
		[ -s "$V/verify.out" ] && t_true "systemd-analyze verify said: $(cat "$V/verify.out")"
		sed 's/^NoNewPrivileges=yes$/&\nNoNewPrivilege=yes/' "$V/warden.service" >"$V/typo.service"
		MANPATH=$D3/usr/share/man systemd-analyze verify "$V/typo.service" >"$V/typo.out" 2>&1
		t_re "$V/typo.out" "Unknown key 'NoNewPrivilege'"
		t_end "$V/verify.out"
	fi
	t_begin "unit: systemd-analyze security exposure below 3.0"
	systemd-analyze security --offline=yes "$V/warden.service" >"$V/security.out" 2>&1
	score=$(sed -n 's/.*Overall exposure level for warden\.service: \([0-9.]*\).*/\1/p' "$V/security.out")
	echo "# exposure: ${score:-?}"
	if [ -z "$score" ]; then
		t_true "no exposure figure"
	elif ! awk -v s="$score" 'BEGIN { exit !(s < 3.0) }'; then
		t_true "exposure $score"
	fi
	t_end "$V/security.out"
fi

# ---------------------------------------------------------------- logs
if command -v logrotate >/dev/null; then
	t_begin "logrotate: contrib/logrotate/warden parses"
	L=$TMP/logrotate
	mkdir -p "$L"
	echo "a line" >"$L/warden.log"
	sed "s|/var/log/warden\.log|$L/warden.log|" contrib/logrotate/warden >"$L/conf"
	logrotate -d -s "$L/state" "$L/conf" >"$L/out" 2>&1 || t_true "logrotate -d exited $?"
	t_nore "$L/out" '^error:'
	t_re "$L/out" "considering log $L/warden\.log"
	# The same check catches a broken entry.
	sed 's/weekly/weeklyish/' "$L/conf" >"$L/bad"
	logrotate -d -s "$L/state" "$L/bad" >"$L/bad.out" 2>&1
	t_re "$L/bad.out" '^error:'
	t_end "$L/out"
else
	tap_skip "logrotate: contrib/logrotate/warden parses" "logrotate not installed (tests/lib/deps.sh)"
fi
# rsyslogd: the system's, else Debian's rsyslog unpacked into the temp
# dir (as tests/lib/sendmail.sh does for Sendmail; the .debs are cached in
# build/rsyslog-debs). Installing the package would start a system logger
# on a shared machine.
rsyslogd_find() {
	local c=$ROOT/build/rsyslog-debs r=$TMP/rsyslog-root p d
	if command -v rsyslogd >/dev/null; then
		RSYSLOGD=(rsyslogd)
		return 0
	fi
	mkdir -p "$c" || return 1
	for p in rsyslog libestr0 libfastjson4; do
		ls "$c/${p}_"*.deb >/dev/null 2>&1 && continue
		(cd "$c" && apt-get download "$p" >download.log 2>&1) || {
			RSYSLOG_WHY="apt-get download $p failed: $(tail -n 1 "$c/download.log")"
			return 1
		}
	done
	for d in "$c"/*.deb; do
		dpkg -x "$d" "$r" || { RSYSLOG_WHY="dpkg -x $d failed"; return 1; }
	done
	d=$(dirname "$(find "$r" -name imuxsock.so | head -1)")
	RSYSLOGD=(env LD_LIBRARY_PATH="$d/.." "$r/usr/sbin/rsyslogd" -M "$d")
	[ -x "$r/usr/sbin/rsyslogd" ] || { RSYSLOG_WHY="no rsyslogd in the .deb"; return 1; }
}
RSYSLOG_WHY="rsyslogd not installed and apt-get download unavailable"
if command -v apt-get >/dev/null && rsyslogd_find; then
	t_begin "rsyslog: contrib/rsyslog/warden.conf passes rsyslogd -N1"
	"${RSYSLOGD[@]}" -N1 -f contrib/rsyslog/warden.conf >"$TMP/rsyslog.out" 2>&1 ||
	    t_true "rsyslogd -N1 exited $?"
	t_re "$TMP/rsyslog.out" 'End of config validation run'
	# The same check catches a broken filter.
	sed 's/then/than/' contrib/rsyslog/warden.conf >"$TMP/rsyslog-bad.conf"
	"${RSYSLOGD[@]}" -N1 -f "$TMP/rsyslog-bad.conf" >"$TMP/rsyslog-bad.out" 2>&1 &&
	    t_true "rsyslogd -N1 accepted a broken filter"
	t_end "$TMP/rsyslog.out"
else
	tap_skip "rsyslog: contrib/rsyslog/warden.conf passes rsyslogd -N1" "$RSYSLOG_WHY"
fi

t_begin "README: the top-rules one-liner on a sample log"
ONE=$(grep -E "^    awk '.*/var/log/mail\.log \| sort -rn \| head$" README.md)
n=$(printf '%s\n' "$ONE" | grep -c .)
t_eq "one-liners found in README" "$n" 1
S=$TMP/mail.log
# 4 submission-requires-auth rejects (one with a client's helo forging
# " rule=forged reject"), 3 recipients-per-user tempfails, 2 dry-run
# sender-login-mismatch, 1 store error; stats lines and another program's
# "rule=" must not count.
{
	for i in 1 2 3; do
		echo "Nov 23 10:00:0$i mx warden[812]: NOQUEUE: reject rule=submission-requires-auth stage=envfrom client=[192.0.2.$i]:41233 port=587 helo=<x.example> from=<a@example.com> reply=\"530 5.7.0 Authentication required\""
	done
	echo "Nov 23 10:00:04 mx warden[812]: NOQUEUE: reject rule=submission-requires-auth stage=envfrom client=[192.0.2.4]:41233 port=587 helo=<x rule=forged reject> from=<a@example.com> reply=\"530 5.7.0 Authentication required\""
	for i in 1 2 3; do
		echo "Nov 23 10:01:0$i mx warden[812]: 4XyZ1ab$i: tempfail rule=recipients-per-user stage=envrcpt client=[192.0.2.9]:1 port=587 from=<c@example.com> to=<d$i@example.org> user=bob reply=\"450 4.7.1 Too many recipients from bob, retry in 20s\""
	done
	for i in 1 2; do
		echo "Nov 23 10:02:0$i mx warden[812]: NOQUEUE: dryrun would=reject rule=sender-login-mismatch stage=envfrom client=[192.0.2.1]:41233 port=587 from=<b@example.com> user=alice reply=\"553 5.7.1 Sender address rejected: not owned by user alice\""
	done
	echo "Nov 23 10:03:00 mx warden[812]: NOQUEUE: store-error on_error=accept rule=recipients-per-client-net stage=envrcpt client=[192.0.2.5]:2"
	echo "Nov 23 10:05:00 mx warden[812]: stats: uptime=300 connections=12 messages=10 rcpts=23 accept=0 reject=4 tempfail=3"
	echo "Nov 23 10:05:00 mx warden[812]: stats: rule=recipients-per-user hits=9 enforced=9 dryrun=0"
	echo "Nov 23 10:05:01 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from x[192.0.2.7]: 554 rule=nothing"
} >"$S"
printf '%s\n' \
    "4 submission-requires-auth reject" \
    "3 recipients-per-user tempfail" \
    "2 sender-login-mismatch dryrun would=reject" \
    "1 recipients-per-client-net store-error" >"$TMP/top.want"
ONE=${ONE#    }
sh -c "${ONE//\/var\/log\/mail.log/$S}" >"$TMP/top.got" 2>&1 || t_true "the one-liner exited $?"
diff -u "$TMP/top.want" "$TMP/top.got" >"$TMP/top.diff" ||
    t_true "one-liner output differs: $(cat "$TMP/top.diff")"
t_end

# ---------------------------------------------------------------- deb
deb_skip() {
	local why=$1 t
	for t in "deb: dpkg-buildpackage" "deb: lintian" "deb: dpkg -i" \
	    "deb: user, conffiles, permissions" "deb: warden check" \
	    "deb: daemon started as the unit starts it" \
	    "deb: daemon started as root drops to warden" \
	    "deb: dpkg --purge leaves nothing"; do
		tap_skip "$t" "$why"
	done
	finish
}
[ "$(id -u)" -eq 0 ] || deb_skip "needs root (dpkg -i)"
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
    deb_skip "dpkg-buildpackage or debhelper missing and not installed (tests/lib/deps.sh, as root)"
if dpkg-query -W -f='${Status}' warden 2>/dev/null | grep -q 'installed'; then
	deb_skip "a warden package is already installed here; not touching it (dpkg --purge warden first)"
fi
[ -e /etc/warden ] && deb_skip "/etc/warden exists and belongs to no package here; not touching it"
[ -e /run/warden ] && deb_skip "/run/warden exists; not touching it"

P=$TMP/pkg
t_begin "deb: dpkg-buildpackage -us -uc -b in a copy of the tree"
mkdir -p "$P/warden"
# Tracked and new files, not ignored ones: no build/, no earlier
# package outputs. The checkout itself is never built in.
git ls-files -co --exclude-standard -z | tar -c --null -T - 2>"$P/tar.err" |
    tar -x -C "$P/warden" || t_true "copying the tree failed: $(cat "$P/tar.err")"
(cd "$P/warden" && dpkg-buildpackage -us -uc -b -j2) >"$P/build.log" 2>&1 ||
    t_true "dpkg-buildpackage exited $?"
DEB=$(ls "$P"/warden_*_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || t_true "no .deb built"
t_end "$P/build.log"
[ -n "$DEB" ] || deb_skip "the package did not build"
dpkg-deb -c "$DEB" | awk '{ print $6 }' >"$P/contents"

t_begin "deb: lintian (tags as diagnostics; errors fail)"
CHANGES=$(ls "$P"/warden_*.changes | head -1)
lintian --display-info --pedantic --show-overrides "$CHANGES" >"$P/lintian.out" 2>&1
grep -E "^[EWIPXO]: " "$P/lintian.out" | sed 's/^/# lintian: /'
[ -n "$(grep -E '^[EWIPX]: ' "$P/lintian.out")" ] || echo "# lintian: no tags (overridden ones above as O:)"
t_nore "$P/lintian.out" '^E: '
t_end

# The MTAs' own config, to show the package never edits it.
mta_sums() { find /etc/postfix /etc/mail -type f -exec md5sum {} + 2>/dev/null | sort; }
mta_sums >"$P/mta.before"

t_begin "deb: dpkg -i installs it and prints the MTA lines"
dpkg_do -i "$DEB" >"$P/install.out" 2>&1 || t_true "dpkg -i exited $?"
DEB_INSTALLED=1
mta_sums | diff -u "$P/mta.before" - >"$P/mta.diff" ||
    t_true "dpkg -i changed the MTA's config: $(cat "$P/mta.diff")"
t_re "$P/install.out" 'smtpd_milters = unix:/run/warden/warden\.sock'
# The macro lines are the ones `warden check` itself prints.
/usr/sbin/warden check -c /etc/warden/warden.conf >"$P/check.out" 2>&1
grep -E '^  milter_[a-z_]+_macros = ' "$P/check.out" >"$P/macros.want"
[ -s "$P/macros.want" ] || t_true "warden check printed no macro lines"
while IFS= read -r l; do
	t_line "$P/install.out" "$l"
done <"$P/macros.want"
t_re "$P/install.out" "^  define\(\`confMILTER_MACROS_CONNECT'"
t_end "$P/install.out"

t_begin "deb: user, conffiles, permissions"
pw=$(getent passwd warden)
IFS=: read -r _ _ wuid wgid _ whome wshell <<<"$pw"
[ -n "$pw" ] || t_true "no user warden"
[ -n "$pw" ] && [ "$wuid" -lt 1000 ] || t_true "warden is not a system user: $pw"
t_eq "warden's shell" "${wshell:-}" /usr/sbin/nologin
t_eq "warden's home" "${whome:-}" /nonexistent
t_eq "warden's group" "$(getent group "${wgid:-x}" | cut -d: -f1)" warden
dpkg-query --control-show warden conffiles >"$P/conffiles" 2>&1
for f in warden.conf $(cd rules && ls *.rules *.map); do
	case $f in warden.conf) p=/etc/warden/$f ;; *) p=/etc/warden/rules/$f ;; esac
	t_line "$P/conffiles" "$p"
	[ -f "$p" ] || t_true "$p missing"
done
# key_secret and the Redis password live there: not world-readable.
t_eq "warden.conf owner and mode" "$(stat -c '%U:%G %a' /etc/warden/warden.conf)" "root:warden 640"
t_re "$P/contents" '^\./lib/systemd/system/warden\.service$'
t_re "$P/contents" '^\./usr/share/man/man8/warden\.8\.gz$'
t_nore "$P/contents" '^\./run/'
# dh_installsystemd enables the unit even where systemd is not running.
[ -L /etc/systemd/system/multi-user.target.wants/warden.service ] ||
    t_true "warden.service not enabled (no multi-user.target.wants link)"
t_end "$P/conffiles"

t_begin "deb: warden check accepts the installed config, as root and as warden"
/usr/sbin/warden check -c /etc/warden/warden.conf >"$P/check.out" 2>&1 ||
    t_true "warden check (root) exited $?"
t_re "$P/check.out" '^check: /etc/warden/warden\.conf: ok \(0 errors, 0 warnings\)$'
setpriv --reuid=warden --regid=warden --init-groups -- \
    /usr/sbin/warden check -c /etc/warden/warden.conf >"$P/check-w.out" 2>&1 ||
    t_true "warden check as user warden exited $?"
t_end "$P/check.out" "$P/check-w.out"

SOCK=/run/warden/warden.sock
# wait_socket: bounded wait for the daemon's socket (10 s, generous).
wait_socket() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -S "$SOCK" ] && return 0
		pid_alive "$WPID" || return 1
		sleep 0.1
	done
	return 1
}
uid_of() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status" 2>/dev/null; }

# unit_daemon_checks: the daemon WPID serves $SOCK as user warden, with
# the shipped rules, and the socket's mode keeps others out.
unit_daemon_checks() {
	if ! wait_socket; then
		t_true "no socket $SOCK within 10 s"
		return
	fi
	t_eq "socket owner and mode" "$(stat -c '%U:%G %a' "$SOCK")" "warden:warden 660"
	t_eq "process uids" "$(uid_of "$WPID")" "$wuid $wuid $wuid $wuid"
	miltertest -s "$HERE/submission.lua" -D sock="unix:$SOCK" >"$P/mt1.out" 2>&1 ||
	    t_true "miltertest exited $?"
	t_line "$P/mt1.out" "PASS port 587 reply y"
	# Someone outside the group cannot connect: the mode holds.
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); print("connected")
except OSError as e:
    print("refused:", e.strerror)' "$SOCK" >"$P/nobody.out" 2>&1
	t_re "$P/nobody.out" '^refused: Permission denied$'
}

if [ -d /run/systemd/system ]; then
	# systemd runs this machine: dpkg -i has started the unit already.
	t_begin "deb: daemon started as the unit starts it (systemctl)"
	systemctl start warden.service >"$P/run1.out" 2>&1 ||
	    t_true "systemctl start warden exited $?"
	WPID=$(systemctl show -p MainPID --value warden.service)
	unit_daemon_checks
	systemctl stop warden.service >>"$P/run1.out" 2>&1
	WPID=
	t_end "$P/run1.out" "$P/mt1.out" "$P/nobody.out"
else
	# As the unit would: RuntimeDirectory=warden (0750, owned by User=),
	# User=/Group=warden, NoNewPrivileges.
	t_begin "deb: daemon started as the unit starts it (user warden, /run/warden)"
	install -d -o warden -g warden -m 0750 /run/warden && RUNDIR_MADE=1
	setpriv --reuid=warden --regid=warden --init-groups --no-new-privs -- \
	    /usr/sbin/warden run -c /etc/warden/warden.conf </dev/null >"$P/run1.out" 2>&1 &
	WPID=$!
	unit_daemon_checks
	stop_pid "$WPID" 10
	WPID=
	t_end "$P/run1.out" "$P/mt1.out" "$P/nobody.out"
fi

t_begin "deb: daemon started as root drops to warden"
[ -d /run/warden ] || { install -d -o warden -g warden -m 0750 /run/warden && RUNDIR_MADE=1; }
rm -f "$SOCK"	# so wait_socket sees this daemon's socket, not a stale one
/usr/sbin/warden run -c /etc/warden/warden.conf </dev/null >"$P/run2.out" 2>&1 &
WPID=$!
if wait_socket; then
	t_eq "process uids" "$(uid_of "$WPID")" "$wuid $wuid $wuid $wuid"
	miltertest -s "$HERE/submission.lua" -D sock="unix:$SOCK" >"$P/mt2.out" 2>&1 ||
	    t_true "miltertest exited $?"
	t_line "$P/mt2.out" "PASS port 587 reply y"
	owner=$(stat -c '%U:%G %a' "$SOCK")
else
	t_true "no socket $SOCK within 10 s"
	owner=
fi
stop_pid "$WPID" 10
WPID=
t_end "$P/run2.out" "$P/mt2.out"
t_begin "deb: socket of a root-started daemon belongs to warden"
t_eq "socket owner and mode" "$owner" "warden:warden 660"
t_end

t_begin "deb: dpkg --purge leaves nothing"
dpkg-query -L warden >"$P/list" 2>&1
dpkg_do --purge warden >"$P/purge.out" 2>&1 || t_true "dpkg --purge exited $?"
DEB_INSTALLED=0
rm -rf /run/warden; RUNDIR_MADE=0	# systemd removes RuntimeDirectory at stop
while IFS= read -r p; do
	# Shared directories (/usr, /etc, ...) stay; everything the package
	# alone owned must be gone.
	if [ -d "$p" ]; then
		case $p in /etc/warden* | /usr/share/doc/warden*) ;; *) continue ;; esac
	fi
	[ -e "$p" ] || [ -L "$p" ] && t_true "left: $p"
done <"$P/list"
[ -e /etc/warden ] && t_true "/etc/warden left: $(find /etc/warden | head -5)"
dpkg-statoverride --list /etc/warden/warden.conf >/dev/null && t_true "statoverride left"
[ -e /etc/systemd/system/multi-user.target.wants/warden.service ] && t_true "unit still enabled"
ls /var/lib/systemd/deb-systemd-helper-enabled 2>/dev/null | grep -q warden &&
    t_true "deb-systemd-helper state left"
s=$(dpkg-query -W -f='${Status}' warden 2>/dev/null)
case $s in "" | *" not-installed") ;; *) t_true "dpkg status after purge: $s" ;; esac
# Debian keeps system users on purge (a reused uid would inherit files
# the old one left): debian/warden.postrm says so; the user must remain.
getent passwd warden >/dev/null || t_true "user warden removed, against debian/warden.postrm"
mta_sums | diff -u "$P/mta.before" - >"$P/mta.diff" ||
    t_true "the package changed the MTA's config: $(cat "$P/mta.diff")"
t_end "$P/purge.out"

finish
