#!/bin/sh
# deps.sh - make sure the Debian packages warden builds and tests with are
# installed. As root it installs what is missing; otherwise it prints the
# exact apt-get line and fails. Used by `make run`, `make test` and .ci/run.
set -u
PKGS="gcc make pkg-config libconfig-dev libmilter-dev libhiredis-dev
libssl-dev libpcre2-dev libcmocka-dev miltertest clang libclang-rt-14-dev
valgrind python3 redis-server redis-tools redis-sentinel nutcracker
debhelper dpkg-dev fakeroot lintian systemd adduser logrotate"
# tests/man lints the man pages with both of these.
PKGS="$PKGS man-db groff-base"
# tests/milter/promcheck.py: a second, independent metrics file parser.
PKGS="$PKGS python3-prometheus-client"
[ -n "${WARDEN_EXTRA_PKGS:-}" ] && PKGS="$PKGS $WARDEN_EXTRA_PKGS"

missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case "$s" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix (MTA suite: WARDEN_EXTRA_PKGS="postfix ..."): preseed "No
# configuration" so the package leaves /etc/postfix/main.cf absent and the
# system service unconfigured; the tests run private instances only.
case " $missing " in
*" postfix "*)
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections >&2 || true ;;
esac
# The package lists may be stale or absent on a fresh machine.
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends $missing >&2 || {
	echo "deps.sh: apt-get install failed" >&2
	exit 1
}
