# tests/milter/matrix.sh - sourced by run.sh: instance D and the
# "every action at every stage, macros present and absent" scenarios of
# issue #4. matrix.py writes D's one rule file (every allowed stage x
# action pair, enforce and dry-run, each rule keyed on its own client
# address; and one rule per macro-fed condition), checks the table of
# allowed pairs against `warden check`, and drives D with the raw client
# (exact reply text at every stage, eom modifications, decision lines).
# Uses servers.sh's free_port, run.sh's start/listening/stop/detail/
# wait_log and its TMP, PID, PORT, RUNAS, BIN; D is stopped by the same
# EXIT trap (by PID).

free_port "PORT[D]"
mkdir -p "$TMP/D"
cat >"$TMP/D/warden.conf" <<EOF
milter = { socket = "inet:${PORT[D]}@127.0.0.1"; };
daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$RUNAS"; };
rules = { files = [ "matrix.rules" ]; mode = "enforce"; };
store = { backend = "memory"; on_error = "accept"; };
EOF

# xpy ARGS...: matrix.py; its output goes to the details on failure.
xpy() {
	local out=$TMP/D/py.out
	if python3 "$HERE/matrix.py" "$@" >"$out" 2>&1; then
		return 0
	fi
	detail "matrix.py $1 failed:"
	sed 's/^/  /' "$out" | head -60 >>"$DETAILS"
	return 1
}

# d_reports: sanitizer/valgrind text in D's logs, or D gone.
d_reports() {
	local f
	for f in "$TMP/D/log" "$TMP/D/valgrind.log"; do
		[ -f "$f" ] || continue
		if grep -E -q "$SAN_RE|$VG_RE" "$f"; then
			detail "$f: sanitizer/valgrind report:"
			grep -E -A8 "$SAN_RE|$VG_RE" "$f" | head -30 |
			    sed 's/^/  /' >>"$DETAILS"
		fi
	done
	if [ -n "${PID[D]:-}" ] && ! kill -0 "${PID[D]}" 2>/dev/null; then
		detail "warden D is not running any more; its log ends:"
		tail -5 "$TMP/D/log" | sed 's/^/  /' >>"$DETAILS"
	fi
}

t_x_check() {
	xpy gen "$TMP/D" || return 1
	xpy check "$BIN" "$TMP/D" "$RUNAS"
}

t_x_start() {
	local rules
	rules=$(grep -c '^  { name = ' "$TMP/D/matrix.rules")
	start D
	if ! listening D; then
		detail "warden D did not listen; log:"
		head -20 "$TMP/D/log" | sed 's/^/  /' >>"$DETAILS"
		return 1
	fi
	wait_log D "start: warden listening on inet:${PORT[D]}@127.0.0.1, files=1 rules=$rules store=memory"
	d_reports
}

t_x_enforce() {
	xpy wire "${PORT[D]}" "$TMP/D/log" enforce
	d_reports
}
t_x_dryrun() {
	xpy wire "${PORT[D]}" "$TMP/D/log" dry-run
	d_reports
}
t_x_macros() {
	xpy macros "${PORT[D]}" "$TMP/D/log"
	d_reports
}

t_x_stale() {
	xpy stale "${PORT[D]}" "$TMP/D/log"
	d_reports
}

t_x_stop() {
	stop D
	[ "${STATUS[D]}" -eq 0 ] || detail "warden D exited ${STATUS[D]}, want 0"
	grep -E -q "^warden\[[0-9]+\]: stop: warden exiting$" "$TMP/D/log" ||
	    detail "log D: no \"stop: warden exiting\" line"
	if [ -f "$TMP/D/valgrind.log" ]; then
		grep -E 'ERROR SUMMARY|(definitely|indirectly|possibly) lost:|All heap blocks' "$TMP/D/valgrind.log" |
		    sed "s/^==[0-9]*== /# valgrind D: /"
	fi
	d_reports
}
