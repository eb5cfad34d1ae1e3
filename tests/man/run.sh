#!/bin/bash
# run.sh - the man pages (issue #10): each page formats without a single
# warning from man-db and from groff, and documents what the code
# accepts. The lists of what must be documented are read from src/ by
# vocab.py (config keys, rule keys, conditions, limit keys, key parts,
# stages, actions, template variables, commands, explain names, probe
# options), so a new key or condition without its entry fails here.
# A documented word that the code no longer knows fails too.
#
# WARDEN_MAN_DIR and WARDEN_SRC_DIR point the suite at other copies of
# man/ and src/ (to watch it fail on a broken page). Prints TAP.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mandir=${WARDEN_MAN_DIR:-$root/man}
srcdir=${WARDEN_SRC_DIR:-$root/src}
. "$root/tests/lib/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warden-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

vocab() { python3 "$here/vocab.py" "$@"; }

# man-db formats for a terminal; fix what would vary between machines.
export MANWIDTH=80 MANPAGER=cat PAGER=cat LC_ALL=C.UTF-8

# lint PAGE: man-db and groff, every warning enabled, print nothing.
lint() {
	local page=$mandir/$1 name=$1
	t_begin "$name lints clean (man --warnings, groff -ww, lexgrog)"
	if [ ! -f "$page" ]; then
		t_true "$page: no such file"
		t_end
		return
	fi
	man --warnings -l "$page" >"$tmp/$name.txt" 2>"$tmp/$name.man.err"
	t_eq "man --warnings -l $name: exit" "$?" 0
	[ -s "$tmp/$name.man.err" ] &&
	    t_true "man --warnings -l $name: stderr not empty"
	groff -man -ww -z "$page" 2>"$tmp/$name.groff.err"
	t_eq "groff -man -ww -z $name: exit" "$?" 0
	[ -s "$tmp/$name.groff.err" ] &&
	    t_true "groff -man -ww -z $name: stderr not empty"
	# A page that formats to nothing would pass the above.
	grep -q '^NAME' "$tmp/$name.txt" ||
	    t_true "man -l $name: no NAME section in the output"
	# mandb and apropos read the NAME line; lintian checks it too.
	lexgrog "$page" 2>&1 | grep -q ': "[^ ]* - .' ||
	    t_true "lexgrog $name: no \"name - description\" whatis entry"
	t_end "$tmp/$name.man.err" "$tmp/$name.groff.err"
}

# same WHAT WANT GOT: the word lists in files WANT (from src/) and GOT
# (the page's entries) are equal; each difference is one error line.
same() {
	local w
	if [ ! -s "$2" ]; then
		t_true "$1: nothing read from the source (did its table move?)"
		return
	fi
	for w in $(comm -23 "$2" "$3"); do
		t_true "$1: $w is accepted by the code but has no entry"
	done
	for w in $(comm -13 "$2" "$3"); do
		t_true "$1: $w has an entry but the code does not know it"
	done
}

# want NAME CMD...: the sorted words CMD prints, in $tmp/NAME.
want() { local n=$1; shift; "$@" >"$tmp/$n" 2>&1 || true; }

if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
	for p in warden.8 warden.conf.5 warden.rules.5; do
		tap_skip "$p lints clean" "man-db or groff missing (tests/lib/deps.sh installs them)"
	done
else
	lint warden.8
	lint warden.conf.5
	lint warden.rules.5
fi

if ! command -v python3 >/dev/null; then
	tap_skip "pages document what src/ accepts" "python3 missing"
	finish
fi

t_begin "warden.conf.5 has an entry for every key src/config.c accepts"
want keys vocab conf-keys "$srcdir"
# Every entry of the page that looks like a key (group.name) is one.
vocab terms "$mandir/warden.conf.5" 2>/dev/null |
    grep -E '^(milter|daemon|rules|store)\.[a-z0-9_.]+$' >"$tmp/conf.terms"
same "warden.conf.5" "$tmp/keys" "$tmp/conf.terms"
t_end

t_begin "warden.rules.5 has an entry for every condition in src/rules.c"
want conds vocab list "$srcdir" conditions
vocab terms "$mandir/warden.rules.5" Conditions >"$tmp/cond.terms" 2>/dev/null
same "warden.rules.5 Conditions" "$tmp/conds" "$tmp/cond.terms"
t_end

t_begin "warden.rules.5 has an entry for every rule key, limit key, key part, stage, action and template variable"
for spec in "rule-keys:RULE KEYS" "limit-keys:Limit keys" \
    "key-parts:Key parts" "stages:STAGES" "actions:ACTIONS" \
    "vars:Template variables"; do
	what=${spec%%:*} sect=${spec#*:}
	want "$what" vocab list "$srcdir" "$what"
	vocab terms "$mandir/warden.rules.5" "$sect" >"$tmp/$what.terms" \
	    2>/dev/null
	same "warden.rules.5 $sect" "$tmp/$what" "$tmp/$what.terms"
done
t_end

t_begin "warden.8 has an entry for every command, explain name and probe option"
want commands vocab list "$srcdir" commands
# explain's NAME=VALUE entries sit inside COMMANDS too.
vocab terms "$mandir/warden.8" COMMANDS 2>/dev/null | grep -v = \
    >"$tmp/commands.terms"
same "warden.8 COMMANDS" "$tmp/commands" "$tmp/commands.terms"
want explain vocab list "$srcdir" explain
# The explain entries are NAME=VALUE: the page documents the NAME.
vocab terms "$mandir/warden.8" COMMANDS 2>/dev/null | sed -n 's/=.*//p' |
    sort -u >"$tmp/explain.terms"
same "warden.8 explain" "$tmp/explain" "$tmp/explain.terms"
want probe vocab list "$srcdir" probe-options
vocab terms "$mandir/warden.8" "PROBE OPTIONS" 2>/dev/null |
    grep -- '^--' >"$tmp/probe.terms"
same "warden.8 PROBE OPTIONS" "$tmp/probe" "$tmp/probe.terms"
t_end

# warden check's "see" line (src/check.c manrefs) must name sections that
# exist, or it sends postmasters looking for nothing.
t_begin "every section warden check points at exists in its page"
sed -n 's/^[[:space:]]*{ "[^"]*",[[:space:]]*"\(warden\.[a-z]*\)(\([58]\))",[[:space:]]*"\([^"]*\)" },$/\1.\2\t\3/p' \
    "$srcdir/check.c" | sort -u >"$tmp/manrefs"
[ -s "$tmp/manrefs" ] || t_true "no manrefs found in $srcdir/check.c"
while IFS=$'\t' read -r page sect; do
	grep -q -x -F -e ".SH $sect" -e ".SS $sect" "$mandir/$page" ||
	    t_true "$page has no section \"$sect\" (src/check.c manrefs)"
done <"$tmp/manrefs"
t_end

finish
