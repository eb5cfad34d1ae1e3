#!/bin/bash
# redisctl.sh - a private redis-server for the tests (tests/redis/run.sh,
# and test_store_redis, which restarts it mid-run through this script).
#
#   redisctl.sh start DIR PORT [redis-server options...]
#       starts redis-server on 127.0.0.1:PORT and DIR/PORT.sock, no
#       persistence, log in DIR/PORT.log, PID in DIR/PORT.pid; waits
#       (bounded, 10 s) until it answers PING. Exit 0 once it does.
#   redisctl.sh sentinel DIR PORT MASTERPORT [PASSWORD]
#       redis-sentinel on PORT watching master "warden" at MASTERPORT
#       (quorum 1, down after 1 s); waits until it names the master.
#       With PASSWORD the sentinel itself wants AUTH (requirepass).
#   redisctl.sh stop DIR PORT
#       TERM by PID (SIGCONT first, in case a test left it stopped),
#       bounded wait, then KILL.
#
# setsid: the server is in a session of its own, so a test that
# signals it never signals us. Nothing here finds processes by name.
set -u
. "$(dirname "$0")/../lib/servers.sh"

cmd=${1:-} dir=${2:-} port=${3:-}
if [ -z "$cmd" ] || [ -z "$dir" ] || [ -z "$port" ]; then
	echo "usage: redisctl.sh start|sentinel|stop DIR PORT [options]" >&2
	exit 2
fi
shift 3
pidfile=$dir/$port.pid

answers() {
	[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]
}

case $cmd in
start)
	setsid redis-server --port "$port" --bind 127.0.0.1 \
	    --unixsocket "$dir/$port.sock" --unixsocketperm 700 \
	    --save "" --appendonly no --daemonize no --dir "$dir" \
	    --logfile "$dir/$port.log" "$@" </dev/null >/dev/null 2>&1 &
	echo $! >"$pidfile"
	for ((i = 0; i < 100; i++)); do
		answers && exit 0
		pid_alive "$(cat "$pidfile")" || break
		sleep 0.1
	done
	echo "redisctl.sh: redis-server on $port did not answer; log:" >&2
	tail -5 "$dir/$port.log" >&2 2>/dev/null
	exit 1 ;;
sentinel)
	# redisctl.sh sentinel DIR PORT MASTERPORT: one sentinel, quorum 1,
	# watching master "warden"; it rewrites its config, so a fresh one.
	mport=${1:?master port} spass=${2:-}
	cat >"$dir/$port.conf" <<-EOF
	port $port
	bind 127.0.0.1
	daemonize no
	dir $dir
	logfile $dir/$port.log
	sentinel monitor warden 127.0.0.1 $mport 1
	sentinel down-after-milliseconds warden 1000
	sentinel failover-timeout warden 5000
	EOF
	[ -n "$spass" ] && echo "requirepass $spass" >>"$dir/$port.conf"
	auth=()
	[ -n "$spass" ] && auth=(--no-auth-warning -a "$spass")
	setsid redis-sentinel "$dir/$port.conf" </dev/null >/dev/null 2>&1 &
	echo $! >"$pidfile"
	for ((i = 0; i < 100; i++)); do
		redis-cli -p "$port" "${auth[@]}" sentinel get-master-addr-by-name warden \
		    2>/dev/null | grep -q "^$mport\$" && exit 0
		pid_alive "$(cat "$pidfile")" || break
		sleep 0.1
	done
	echo "redisctl.sh: sentinel on $port did not answer" >&2
	exit 1 ;;
stop)
	pid=$(cat "$pidfile" 2>/dev/null)
	[ -n "$pid" ] || exit 0
	kill -CONT "$pid" 2>/dev/null
	stop_pid "$pid" 5
	rm -f "$pidfile"
	exit 0 ;;
*)
	echo "redisctl.sh: unknown command $cmd" >&2
	exit 2 ;;
esac
