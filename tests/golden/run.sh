#!/bin/bash
# run.sh [--update] BINARY - golden tests of `warden check`, `warden
# explain` and the command line (CONVENTIONS.md §8, after Postfix
# smtpd_check .in/.ref).
#
# Each case is a set of files in tests/golden/:
#   NAME.args  the command line after the binary, one line, shell quoting;
#              @ROOT@ is the repository root, @DATA@ tests/golden/data
#   NAME.out   expected stdout      NAME.err  expected stderr
#   NAME.rc    expected exit code
# The binary runs from the repository root. In its output the absolute
# paths of the data directory and of the root are written back as @DATA@
# and @ROOT@, so expectations do not depend on where the tree lives.
#
# Prints TAP: "ok N - NAME" or "not ok N - NAME" followed by the diff.
# --update rewrites NAME.out, NAME.err and NAME.rc from the binary: read
# every changed line against DESIGN.md before keeping it.
set -u

update=0
if [ "${1:-}" = "--update" ]; then
	update=1
	shift
fi
if [ $# -ne 1 ]; then
	echo "usage: $0 [--update] BINARY" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data="$here/data"
case $1 in
/*) bin=$1 ;;
*) bin="$PWD/$1" ;;
esac

cases=()
for f in "$here"/*.args; do
	[ -e "$f" ] && cases+=("$(basename "$f" .args)")
done

echo "1..${#cases[@]}"
if [ ! -x "$bin" ]; then
	n=0
	for name in "${cases[@]}"; do
		n=$((n + 1))
		echo "not ok $n - $name # $bin is not an executable"
	done
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warden-golden.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Replaces the absolute paths in a file by @DATA@ and @ROOT@.
normalize() {
	sed -e "s|$data|@DATA@|g" -e "s|$root|@ROOT@|g" "$1" >"$1.n" &&
	    mv "$1.n" "$1"
}

n=0 failed=0
for name in "${cases[@]}"; do
	n=$((n + 1))
	line=$(sed -e "s|@DATA@|$data|g" -e "s|@ROOT@|$root|g" \
	    "$here/$name.args")
	eval "set -- $line"
	(cd "$root" && exec "$bin" "$@") >"$tmp/out" 2>"$tmp/err" </dev/null
	echo $? >"$tmp/rc"
	normalize "$tmp/out"
	normalize "$tmp/err"
	if [ $update -eq 1 ]; then
		cp "$tmp/out" "$here/$name.out"
		cp "$tmp/err" "$here/$name.err"
		cp "$tmp/rc" "$here/$name.rc"
		echo "ok $n - $name # updated"
		continue
	fi
	bad=""
	for x in out err rc; do
		if [ ! -e "$here/$name.$x" ]; then
			bad="$bad $name.$x is missing;"
		elif ! cmp -s "$here/$name.$x" "$tmp/$x"; then
			bad="$bad $x differs;"
		fi
	done
	if [ -z "$bad" ]; then
		echo "ok $n - $name"
		continue
	fi
	failed=$((failed + 1))
	echo "not ok $n - $name:$bad"
	for x in out err rc; do
		[ -e "$here/$name.$x" ] || continue
		diff -u --label "want $name.$x" --label "got $name.$x" \
		    "$here/$name.$x" "$tmp/$x" | sed 's/^/# /'
	done
done
[ $failed -eq 0 ]
