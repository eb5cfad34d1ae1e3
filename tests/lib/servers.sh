# servers.sh - helpers for suites that start servers on loopback (bash).
# Source it; it defines functions only:
#   free_port NAME...   sets each NAME to a TCP port on 127.0.0.1 that nobody
#                       uses (none handed out twice)
#   port_listening PORT true when something listens on 127.0.0.1:PORT (no connect)
#   wait_listening PORT SECS   bounded wait for a listener
#   pid_alive PID       true while PID runs (zombies count as gone)
#   stop_pid PID [SECS] TERM, bounded wait, then KILL; reaps our own children
#                       (their exit status in STOP_RC)
#   smtp_raw PORT CMD...    one plain SMTP session on 127.0.0.1:PORT: prints
#                       "-> CMD" for what it sent and "<- LINE" for every reply
#                       line, "<- [closed]" when the server closes the
#                       connection; stops sending once it is closed
#   smtp_raw_from SRC PORT CMD...   smtp_raw from the local address SRC
#                       (e.g. 127.0.1.7: all of 127.0.0.0/8 is loopback), for
#                       MTAs without XCLIENT; same output (python3)
#   wait_grep SECS FILE ERE     bounded wait until FILE has a line matching ERE
#   children_of PID     the PIDs whose parent is PID
#   pid_listeners PID   "ADDR:PORT" of every TCP socket PID listens on
#                       (IPv4 dotted; IPv6 as 32 hex digits), one a line
#   syslog_start SOCKET FILE   a syslog receiver: a datagram unix socket at
#                       SOCKET (mode 666) whose messages are appended to
#                       FILE, one line each, "<PRI>" dropped (python3); for
#                       daemons that can only log to syslog. SYSLOG_PID
#   syslog_stop
# Nothing here looks processes up by name: everything is stopped by PID.

_SERVERS_PORTS_GIVEN=" "

# The local ports in use, from /proc (listeners and connections, v4 + v6).
# One awk pass: bash's "read" loop re-reads a /proc seq file from the
# start for every line, which took minutes (sys time) with ~8,000
# sockets in the table (another suite's load test).
_ports_in_use() {
	local f files=()
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] && files+=("$f")
	done
	[ ${#files[@]} -gt 0 ] || return 0
	awk 'function hex(s,  i, n) {
		n = 0
		for (i = 1; i <= length(s); i++)
			n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1
		return n
	}
	$2 ~ /:/ { p = $2; sub(/.*:/, "", p); print hex(p) }' "${files[@]}" 2>/dev/null | sort -un
}

# free_port NAME...: sets each NAME (a variable or "ARRAY[KEY]") to a port.
# It assigns rather than prints: run as $(free_port), its record of the
# ports handed out would stay in the subshell, and two ports drawn before
# either is bound (Postfix binds its listeners only at start) could be
# the same one.
free_port() {
	local _fp_used _fp_p _fp_i _fp_v

	[ $# -gt 0 ] || { echo "free_port: no variable named" >&2; return 1; }
	_fp_used=" $(_ports_in_use | tr '\n' ' ') "
	for _fp_v in "$@"; do
		# Below the default ephemeral range (32768-60999), so an
		# outgoing connection cannot take it before the server binds.
		for ((_fp_i = 0; ; _fp_i++)); do
			[ "$_fp_i" -lt 200 ] || return 1
			_fp_p=$((20000 + RANDOM % 12000))
			case "$_fp_used$_SERVERS_PORTS_GIVEN" in
			*" $_fp_p "*) ;;
			*) break ;;
			esac
		done
		_SERVERS_PORTS_GIVEN="$_SERVERS_PORTS_GIVEN$_fp_p "
		printf -v "$_fp_v" '%s' "$_fp_p"
	done
}

port_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	# state 0A = LISTEN; 0100007F = 127.0.0.1, 00000000 = any
	grep -Eq "^ *[0-9]+: (0100007F|00000000):$hex [0-9A-F]+:[0-9A-F]+ 0A " \
	    /proc/net/tcp 2>/dev/null
}

wait_listening() {
	local port=$1 i n=$(($2 * 10))
	for ((i = 0; i < n; i++)); do
		port_listening "$port" && return 0
		sleep 0.1
	done
	return 1
}

pid_alive() {
	local st
	[ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

stop_pid() {
	local pid=$1 secs=${2:-5} i
	[ -n "$pid" ] || return 0
	if pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < secs * 10; i++)); do
			pid_alive "$pid" || break
			sleep 0.1
		done
		if pid_alive "$pid"; then
			echo "# $pid did not stop within ${secs}s: KILL" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?	# the exit status, when PID was our child
	return 0
}

wait_grep() {
	local secs=$1 file=$2 re=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# One reply (all lines of a multi-line one) from fd 3. Returns 1 at EOF.
_smtp_reply() {
	local line rc
	while :; do
		IFS= read -r -t 10 line <&3
		rc=$?
		if [ $rc -ne 0 ] && [ -z "$line" ]; then
			if [ $rc -gt 128 ]; then
				echo "<- [timeout]"
				return 2
			fi
			echo "<- [closed]"
			return 1
		fi
		line=${line%$'\r'}
		echo "<- $line"
		[ "${line:3:1}" = - ] || break
	done
	# After a 421 the server must close: show whether it did.
	if [ "${line:0:3}" = 421 ]; then
		if IFS= read -r -t 5 line <&3; then
			echo "<- ${line%$'\r'}"
		else
			[ $? -gt 128 ] && echo "<- [still open]" && return 0
			echo "<- [closed]"
			return 1
		fi
	fi
	return 0
}

smtp_raw() {
	local port=$1 c
	shift
	(
		trap '' PIPE
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		_smtp_reply || exit 0
		for c in "$@"; do
			echo "-> $c"
			printf '%s\r\n' "$c" >&3 || { echo "<- [write failed]"; exit 0; }
			_smtp_reply || exit 0
		done
		exec 3<&-
	)
}

smtp_raw_from() {
	python3 -c '
import socket, sys
src, port, cmds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((src, 0))
s.settimeout(10)
try:
    s.connect(("127.0.0.1", port))
except OSError as e:
    print("<- [connect failed: %s]" % e.strerror, flush=True)
    sys.exit(0)
f = s.makefile("rb")
def out(l):
    sys.stdout.buffer.write(b"<- " + l + b"\n")
    sys.stdout.flush()
def line(t):
    s.settimeout(t)
    try:
        l = f.readline()
    except socket.timeout:
        return None
    except OSError:
        return b""
    return l
def reply():
    # as _smtp_reply: 1 at EOF, 2 on timeout, 0 otherwise
    while True:
        l = line(10)
        if l is None:
            out(b"[timeout]"); return 2
        if l == b"":
            out(b"[closed]"); return 1
        l = l.rstrip(b"\r\n")
        out(l)
        if l[3:4] != b"-":
            break
    if l[:3] == b"421":
        l = line(5)
        if l is None:
            out(b"[still open]"); return 0
        if l == b"":
            out(b"[closed]"); return 1
        out(l.rstrip(b"\r\n"))
    return 0
if reply() == 1:
    sys.exit(0)
for c in cmds:
    sys.stdout.buffer.write(b"-> " + c.encode("utf-8", "surrogateescape") + b"\n")
    sys.stdout.flush()
    try:
        s.sendall(c.encode("utf-8", "surrogateescape") + b"\r\n")
    except OSError:
        out(b"[write failed]"); sys.exit(0)
    if reply() == 1:
        sys.exit(0)
' "$@"
}

# children_of PID: the PIDs whose parent is PID
children_of() {
	local parent=${1:-} f st f2 p
	[ -n "$parent" ] || return 0
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		st=${st##*) }		# "S PPID ..."
		f2=${st#* }
		[ "${f2%% *}" = "$parent" ] || continue
		p=${f#/proc/}
		echo "${p%/stat}"
	done
}

pid_listeners() {
	local pid=$1 inodes f sl local rem st rest a port
	inodes=" $(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null |
	    tr -dc '0-9\n' | tr '\n' ' ') "
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		while read -r sl local rem st rest; do
			[ "$st" = 0A ] || continue
			set -- $rest	# tx:rx tr:when retrnsmt uid timeout inode
			case $inodes in *" $6 "*) ;; *) continue ;; esac
			a=${local%:*} port=$((16#${local#*:}))
			if [ ${#a} -eq 8 ]; then
				a="$((16#${a:6:2})).$((16#${a:4:2})).$((16#${a:2:2})).$((16#${a:0:2}))"
			fi
			echo "$a:$port"
		done <"$f"
	done
}

SYSLOG_PID=
syslog_start() {
	local sock=$1 file=$2 i
	rm -f "$sock"
	python3 -c '
import os, re, socket, sys
sock, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
os.chmod(sock, 0o666)
out = open(path, "ab", buffering=0)
while True:
    d = s.recv(65536)
    out.write(re.sub(rb"^<[0-9]+>", b"", d).rstrip(b"\n\0") + b"\n")
' "$sock" "$file" </dev/null >/dev/null 2>&1 &
	SYSLOG_PID=$!
	for ((i = 0; i < 50; i++)); do
		[ -S "$sock" ] && return 0
		sleep 0.1
	done
	return 1
}

syslog_stop() {
	stop_pid "$SYSLOG_PID" 5
	SYSLOG_PID=
}

# shipped_conf DIR PORT: DIR/warden.conf serving a copy of the shipped
# rules (DIR/rules) on the memory store, on inet PORT at 127.0.0.1,
# logging to stderr. Started as root, warden runs as nobody: DIR must
# then be readable by everyone.
shipped_conf() {
	local dir=$1 port=$2 user=""
	[ "$(id -u)" -eq 0 ] && user=nobody
	mkdir -p "$dir/rules"
	cp rules/*.rules rules/*.map "$dir/rules/" 2>/dev/null
	cat >"$dir/warden.conf" <<EOF
milter = { socket = "inet:$port@127.0.0.1"; };
daemon = { log = "stderr"; log_level = "info"; stats_interval = 0; user = "$user"; };
rules = { files = [ "rules/*.rules" ]; mode = "enforce"; };
store = { backend = "memory"; on_error = "accept"; };
EOF
}
