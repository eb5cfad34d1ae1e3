# tap.sh - TAP output and grouped checks for the shell suites, sourced.
#   tap_ok NAME; tap_skip NAME WHY; tap_fail NAME DETAIL...
#   t_begin NAME; t_line/t_re/t_nore/t_eq/t_true ...; t_end [FILE...]
#     one TAP line for several checks; on failure the details and the
#     tail of each FILE (T_TAIL lines, cut at T_CUT columns) follow as
#     "# " lines. T_TODO=WHY before t_end marks a known problem: TAP
#     "# TODO", which fails nothing.
#   finish: the plan line; exits 0 when nothing failed.
N=0 FAILED=0
T_NAME= T_ERR=() T_TODO=
: "${T_TAIL:=40}" "${T_CUT:=400}"

tap_ok() { N=$((N + 1)); echo "ok $N - $1"; }
tap_skip() { N=$((N + 1)); echo "ok $N - $1 # SKIP $2"; }
tap_fail() {
	N=$((N + 1)); FAILED=$((FAILED + 1))
	echo "not ok $N - $1"
	shift
	local l
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}

t_begin() { T_NAME=$1; T_ERR=(); T_TODO=; }
t_line() {	# t_line FILE LINE: FILE has exactly this line
	grep -Fxq -- "$2" "$1" 2>/dev/null || T_ERR+=("expected line: $2")
}
t_re() {	# t_re FILE ERE: FILE has a line matching ERE
	grep -Eq -- "$2" "$1" 2>/dev/null || T_ERR+=("expected match: $2")
}
t_nore() {	# t_nore FILE ERE: no line matches
	if grep -Eq -- "$2" "$1" 2>/dev/null; then
		T_ERR+=("unexpected match: $2" "$(grep -E -- "$2" "$1" | head -3)")
	fi
}
t_eq() { [ "$2" = "$3" ] || T_ERR+=("$1: got '$2', want '$3'"); }
t_true() { T_ERR+=("$1"); }
t_end() {
	local f todo=${T_TODO:+ # TODO $T_TODO}
	if [ ${#T_ERR[@]} -eq 0 ]; then
		tap_ok "$T_NAME$todo"
		return 0
	fi
	for f in "$@"; do
		T_ERR+=("--- $(basename "$f"):")
		T_ERR+=("$(tail -n "$T_TAIL" "$f" 2>/dev/null | cut -c1-"$T_CUT")")
	done
	tap_fail "$T_NAME$todo" "${T_ERR[@]}"
	[ -n "$todo" ] && FAILED=$((FAILED - 1))	# TAP: a TODO fails nothing
	return 1
}

finish() {
	echo "1..$N"
	[ "$FAILED" -eq 0 ]
	exit $?
}
