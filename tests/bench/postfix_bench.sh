#!/bin/bash
# postfix_bench.sh [--quick] [BINARY] - warden behind a real Postfix,
# against the floor (null milters) and against the other policy daemons
# a postmaster could choose (rspamd, postfwd), all in one run
# (doc/performance.md "Contenders"). Needs root: it starts a private
# Postfix, smtp-sink -u postfix, rspamd -u _rspamd, postfwd -u postfw, and
# installs the Debian packages it needs (rspamd, postfwd: bench only,
# never in make test). Called by tests/bench/run.sh; BINARY defaults to
# src/warden. --quick: one round, C=10, ~1 s runs, 30 latency sessions,
# no held sessions (a smoke test of the set-up, not figures).
#
# One private Postfix 3.7 (tests/lib/postfix.sh) relays to smtp-sink; it
# has one smtpd listener per contender, identical but for the policy:
#   none      no milter, no policy service
#   nullfull  nullmilter.c with "full": continue everywhere, asks for
#             every step (headers, body) with a reply to each
#   nullpol   nullmilter.c: continue everywhere, headers/body/unknown
#             negotiated away, DATA kept with a reply (the null-policy
#             milter: the floor for warden)
#   nullpol2  a second nullpol, its own process and listener: the A/A
#             control. nullpol2 / nullpol is what the bench reads
#             between two identical milters: how far its median sits
#             from 1 is the bench's error at that concurrency, in the
#             same run
#   wmem      warden, the policy below, memory store, inet socket
#   wredis    warden, the policy below, Redis store, inet socket
#   wunix     warden, the policy below, memory store, unix socket
#   wship     warden, all shipped rules/*.rules (no bench rate rule),
#             memory store, inet socket (replies at every stage)
#   rspamd    rspamd 3.4 proxy worker in milter mode + one normal worker,
#             ratelimit module on the bench's redis-server
#   rspamdu   the same rspamd proxy worker, through its unix socket
#   postfwd   postfwd2 as check_policy_service at RCPT
# The policy: one recipient rate limit per client IP, PFB_RATE_MAX per
# PFB_RATE_SECS (default 1,000,000 an hour, burst 1,000,000: never
# tripped, every message is accepted), plus the submission AUTH/TLS rules
# (warden: rules/submission.rules as shipped; postfwd: the same at RCPT;
# rspamd: rate limit only). Templates: tests/bench/contenders/.
#
# Load: smtp-source from 127.0.0.1, one message per SMTP session, at
# each concurrency of PFB_CONC; PFB_ROUNDS rounds, in each every
# contender once per concurrency, in an order rotated every round and
# reversed every other round.
# Message counts: per contender and concurrency, so a run lasts about
# PFB_SECS seconds (from the warm-up).
#
# Per run: msg/s (until smtp-source exits) and e2e msg/s (until smtp-sink
# has all and the queue is empty); CPU of each process tree (Postfix
# master and children; the contender's daemon(s); redis-server) from
# cgroup v2 cpu.stat, and from /proc (utime+stime+cutime+cstime of every
# live process of the tree, so children that exited count through their
# parent's cutime/cstime); RSS and PSS of the contender's tree; Redis
# commands (INFO commandstats). After the rounds: SMTP reply time per
# stage, p50/p99 (PFB_LAT sessions one at a time per contender), one
# message through wredis and rspamd under MONITOR (Redis commands per
# stage), what each milter negotiates (OPTNEG), warden's own store_calls
# (SIGUSR1), held milter sessions (PFB_SESSIONS).
#
# Output: a table on stdout, build/bench/postfix.tsv (summary),
# postfix-runs.tsv (every run), postfix-latency.tsv, postfix-sessions.tsv,
# postfix-redis.txt.
# Missed targets print BELOW; the exit status is non-zero only when the
# bench could not run, a message was lost or refused, or a contender
# did not apply its policy (e.g. no Redis calls where a limit applies).
# Env: PFB_ROUNDS (5) PFB_CONC ("1 10 50") PFB_SECS (3) PFB_SESSIONS
#      (1000; 0 = skip) PFB_LAT (300; 0 = skip) PFB_CONTENDERS (all of
#      the above) PFB_RATE_MAX (1000000) PFB_RATE_SECS (3600)
#      PFB_CPU=proc (force /proc) PFB_KEEP=1 (keep the temp dir)
#      PFB_PERF=1 (perf profile of wmem and nullpol).
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
QUICK=
if [ "${1:-}" = --quick ]; then
	QUICK=1
	shift
fi
BIN=${1:-src/warden}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac
if [ -n "$QUICK" ]; then
	ROUNDS=${PFB_ROUNDS:-1} CONCS=${PFB_CONC:-10} SECS=${PFB_SECS:-1}
	SESSIONS=${PFB_SESSIONS:-0}
else
	ROUNDS=${PFB_ROUNDS:-5} CONCS=${PFB_CONC:-"1 10 50"}
	SECS=${PFB_SECS:-3} SESSIONS=${PFB_SESSIONS:-1000}
fi
RATE_MAX=${PFB_RATE_MAX:-1000000}
RATE_SECS=${PFB_RATE_SECS:-3600}
OUTDIR=$REPO/build/bench
ALL="none nullfull nullpol nullpol2 wmem wredis wunix wship rspamd rspamdu postfwd"
CONTENDERS=${PFB_CONTENDERS:-$ALL}
TPL=$REPO/tests/bench/contenders

. tests/lib/servers.sh
. tests/lib/postfix.sh

say() { printf '%s\n' "$*"; }
die() { say "postfix_bench: $*" >&2; exit 1; }
has() { case " $CONTENDERS " in *" $1 "*) return 0 ;; esac; return 1; }

for who in $CONTENDERS; do
	case " $ALL " in *" $who "*) ;; *) die "unknown contender $who (know: $ALL)" ;; esac
done
if [ "$(id -u)" -ne 0 ]; then
	say "postfix_bench: SKIP (needs root: postfix start, smtp-sink -u)"
	exit 0
fi
[ -x "$BIN" ] || die "no warden binary $BIN (run make)"
PKGS="postfix sasl2-bin libsasl2-modules"
WARDEN_EXTRA_PKGS=$PKGS tests/lib/deps.sh >/dev/null 2>&1 ||
    die "cannot install $PKGS"
# The other policy daemons: a machine that cannot install one still
# measures the rest (the summary says who is missing).
drop() {
	local w out=
	for w in $CONTENDERS; do [ "$w" = "$1" ] || out="$out $w"; done
	CONTENDERS=${out# }
}
for pkg in rspamd postfwd; do
	case $pkg in
	rspamd) has rspamd || has rspamdu || continue ;;
	postfwd) has postfwd || continue ;;
	esac
	WARDEN_EXTRA_PKGS=$pkg tests/lib/deps.sh >/dev/null 2>&1 && continue
	say "# SKIP contender(s) of package $pkg: cannot install it"
	drop "$pkg"
	[ "$pkg" = rspamd ] && drop rspamdu
done
[ -n "$CONTENDERS" ] || die "no contender left"
for t in postfix smtp-source smtp-sink python3 gcc redis-server redis-cli; do
	command -v "$t" >/dev/null || die "$t not found"
done

mkdir -p "$OUTDIR" || exit 1
# Not bench_*.c: the Makefile's bench glob would link them with libwarden.
build_milter() {
	gcc -std=c11 -O2 -g -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	    -Wstrict-prototypes -Wold-style-definition -Wvla -pthread \
	    -o "$1" "$2" $(pkg-config --libs milter 2>/dev/null || echo -lmilter) ||
	    die "cannot build $2"
}
NULLPOL=$OUTDIR/nullmilter
{ has nullpol || has nullpol2 || has nullfull; } &&
    build_milter "$NULLPOL" tests/bench/nullmilter.c

# 1,000 held sessions need 1,000 descriptors in the milter and the client.
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null

# --- temp dir, cgroups, cleanup -------------------------------------
T=$(mktemp -d /tmp/warden-pfbench.XXXXXX) || exit 1
chmod 755 "$T"		# warden runs as nobody; Postfix wants no writable parents
declare -A PID=()	# tree root per daemon: contender name, or redis
PERF_PID= MON_PID= CG_ROOT= CG_METHOD=proc
TREES="postfix redis"
for who in $CONTENDERS; do
	case $who in
	none | rspamdu) ;;	# rspamdu is rspamd's tree
	*) TREES="$TREES $who" ;;
	esac
done
has rspamdu && ! has rspamd && TREES="$TREES rspamd"

# descendants PID: every live process below PID (not PID itself).
descendants() {
	local todo=("$1") p c
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		for c in $(children_of "$p"); do
			echo "$c"
			todo+=("$c")
		done
	done
}

# stop_tree PID: TERM the root (bounded, then KILL), then any of its
# former descendants still alive (daemons whose master died first).
stop_tree() {
	local root=$1 kids k
	[ -n "$root" ] || return 0
	kids=$(descendants "$root")
	stop_pid "$root" 10
	for k in $kids; do
		pid_alive "$k" && stop_pid "$k" 5
	done
	return 0
}

cleanup() {
	set +e
	stop_pid "$PERF_PID" 5
	stop_pid "$MON_PID" 5
	pf_stop
	for who in ${!PID[@]}; do
		stop_tree "${PID[$who]}"
	done
	sink_stop
	if [ -n "$CG_ROOT" ]; then
		for g in $TREES; do
			[ -d "$CG_ROOT/$g" ] || continue
			# Strays (none expected) go back to the parent first.
			while read -r p; do
				echo "$p" >"$cg2/cgroup.procs"
			done <"$CG_ROOT/$g/cgroup.procs" 2>/dev/null
			rmdir "$CG_ROOT/$g" 2>/dev/null
		done
		rmdir "$CG_ROOT" 2>/dev/null
	fi
	if [ -n "${PFB_KEEP:-}" ]; then
		say "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A cgroup v2 directory per process tree; CPU comes from its cpu.stat.
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
if [ "${PFB_CPU:-}" != proc ] && [ -n "$cg2" ] &&
    mkdir "$cg2/warden-pfbench.$$" 2>/dev/null; then
	CG_ROOT=$cg2/warden-pfbench.$$
	CG_METHOD=cgroup
	for g in $TREES; do
		mkdir "$CG_ROOT/$g" && [ -r "$CG_ROOT/$g/cpu.stat" ] ||
		    CG_METHOD=proc
	done
fi
# cg_join GROUP: move this (sub)shell into GROUP's cgroup; whatever it
# starts from then on (daemons that fork into the background included)
# is counted there.
cg_join() {
	[ "$CG_METHOD" != cgroup ] || echo "$BASHPID" >"$CG_ROOT/$1/cgroup.procs"
}

# sample.py CGROOT REDIS_PORT NAME=PID...: one JSON line: per tree, CPU
# µs (cgroup and /proc), RSS and PSS kB (not for postfix: it changes
# with the number of smtpd processes, not with the policy), and Redis's
# commandstats calls.
cat >"$T/sample.py" <<'EOF'
import json, os, socket, sys
HZ = os.sysconf("SC_CLK_TCK")
cgroot, rport = sys.argv[1], int(sys.argv[2])
trees = [a.split("=", 1) for a in sys.argv[3:]]

def cg(g):
    try:
        with open("%s/%s/cpu.stat" % (cgroot, g)) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v)
    except OSError:
        pass
    return -1

def stat(pid):
    with open("/proc/%s/stat" % pid) as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()
    # ppid, utime+stime, cutime+cstime (ticks)
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])

kids, ticks = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        ppid, own, ch = stat(p)
    except (OSError, ValueError, IndexError):
        continue
    kids.setdefault(ppid, []).append(int(p))
    ticks[int(p)] = own + ch

def tree(root):
    if not root or not root.isdigit() or int(root) not in ticks:
        return []
    out, todo = [], [int(root)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out

def mem(pids):
    rss = pss = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return rss, pss

def redis():
    if rport <= 0:
        return {}
    try:
        s = socket.create_connection(("127.0.0.1", rport), 5)
        s.sendall(b"INFO commandstats\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b"\r\n")
        want = int(head[1:]) + 2
        while len(body) < want:
            c = s.recv(65536)
            if not c:
                break
            body += c
        s.close()
    except (OSError, ValueError):
        return {"error": -1}
    calls = {}
    for line in body.decode("ascii", "replace").splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[8:].partition(":")
            for kv in rest.split(","):
                k, _, v = kv.partition("=")
                if k == "calls":
                    calls[name] = int(v)
    return calls

out = {"trees": {}, "redis": redis()}
for name, pid in trees:
    pids = tree(pid)
    t = {"cg": cg(name),
         "proc": sum(ticks[p] for p in pids) * 1000000 // HZ if pids else -1}
    if name != "postfix":
        t["rss"], t["pss"] = mem(pids)
    out["trees"][name] = t
print(json.dumps(out))
EOF

# delta.py TREE USES_REDIS BEFORE AFTER (TREE: the contender's daemon): the run's figures, tab-separated:
# CPU µs of postfix, policy, redis (cgroup), the same three from /proc,
# Redis calls (INFO excluded), per command, and the policy's RSS/PSS kB.
cat >"$T/delta.py" <<'EOF'
import json, sys
who, uses, b, a = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
b, a = json.loads(b), json.loads(a)
def d(tree, k):
    if tree not in a["trees"]:
        return 0
    x, y = b["trees"][tree][k], a["trees"][tree][k]
    return -1 if x < 0 or y < 0 else y - x
pol = who if who != "none" else None
row = [d("postfix", "cg"), d(pol, "cg") if pol else 0,
       d("redis", "cg") if uses else 0,
       d("postfix", "proc"), d(pol, "proc") if pol else 0,
       d("redis", "proc") if uses else 0]
cmds = {k: a["redis"].get(k, 0) - b["redis"].get(k, 0)
        for k in a["redis"] if k != "info"}
cmds = {k: v for k, v in cmds.items() if v}
# commandstats also counts what scripts run (redis.call): those are not
# requests from a client. Client requests are these; the rest ran inside
# a script.
CLIENT = {"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "script",
          "ping", "quit", "select", "auth", "hello", "client", "role",
          "multi", "exec", "sentinel"}
row += [sum(v for k, v in cmds.items() if k in CLIENT),
        sum(v for k, v in cmds.items() if k not in CLIENT),
        ",".join("%s:%d" % kv for kv in sorted(cmds.items())) or "-"]
t = a["trees"].get(pol, {}) if pol else {}
row += [t.get("rss", 0), t.get("pss", 0)]
print("\t".join(str(x) for x in row))
EOF

# --- configuration -------------------------------------------------------
declare -A PORT=()	# the contender's smtpd listener
for who in $CONTENDERS; do free_port "PORT[$who]"; done
free_port P_SMTP P_SUB P_SINK
free_port P_UNUSED
P_REDIS=0
USES_REDIS=
has wredis && USES_REDIS=1
has rspamd || has rspamdu && USES_REDIS=1
[ -z "$USES_REDIS" ] || free_port P_REDIS

subst() {	# subst TEMPLATE OUT KEY=VALUE...
	local tpl=$1 out=$2 kv args=()
	shift 2
	for kv in "$@"; do
		args+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${args[@]}" "$tpl" >"$out" || return 1
	! grep -q '@[A-Z_]*@' "$out"
}

# warden_conf NAME RULESET STORE SOCKET: $T/NAME/warden.conf; RULESET is
# "policy" (submission.rules + the bench rate rule) or "ship" (all
# shipped rules).
warden_conf() {
	local d=$T/$1 store
	mkdir -p "$d/rules" || return 1
	if [ "$2" = ship ]; then
		cp rules/* "$d/rules/" || return 1
	else
		cp rules/submission.rules rules/senders.map "$d/rules/" &&
		    subst "$TPL/warden-rate.rules.in" "$d/rules/zz-bench-rate.rules" \
		    RATE_MAX="$RATE_MAX" RATE_SECS="$RATE_SECS" || return 1
	fi
	if [ "$3" = redis ]; then
		store="backend = \"redis\"; redis = { host = \"127.0.0.1\"; port = $P_REDIS; };"
	else
		store="backend = \"memory\";"
	fi
	cat >"$d/warden.conf" <<EOF
milter = { socket = "$4"; socket_mode = "0666"; };
daemon = { user = "nobody"; log = "stderr"; stats_interval = 0; };
rules = { files = [ "rules/*.rules" ]; };
store = { $store };
EOF
	chmod -R a+rX "$d"
	"$BIN" check -c "$d/warden.conf" >"$d/check.out" 2>&1 ||
	    die "warden check ($1) failed: $(tail -5 "$d/check.out")"
}

declare -A MSOCK=()	# milter socket as Postfix names it
declare -A WARDEN_SOCK=()
for who in wmem wredis wunix wship; do
	has "$who" || continue
	case $who in
	wunix) WARDEN_SOCK[$who]="unix:$T/$who/warden.sock"
		MSOCK[$who]="unix:$T/$who/warden.sock" ;;
	*) free_port p
		WARDEN_SOCK[$who]="inet:$p@127.0.0.1"
		MSOCK[$who]="inet:127.0.0.1:$p" ;;
	esac
	case $who in wship) rs=ship ;; *) rs=policy ;; esac
	case $who in wredis) st=redis ;; *) st=memory ;; esac
	warden_conf "$who" "$rs" "$st" "${WARDEN_SOCK[$who]}"
done
# Postfix's milter macros are global: the lines warden check prints for
# the shipped rules plus the bench rule (a superset of every contender's).
mkdir -p "$T/macros/rules"
cp rules/* "$T/macros/rules/"
subst "$TPL/warden-rate.rules.in" "$T/macros/rules/zz-bench-rate.rules" \
    RATE_MAX="$RATE_MAX" RATE_SECS="$RATE_SECS" || die "rate template"
printf 'milter = { socket = "inet:%s@127.0.0.1"; };\nrules = { files = [ "rules/*.rules" ]; };\n' \
    "$P_UNUSED" >"$T/macros/warden.conf"
"$BIN" check -c "$T/macros/warden.conf" >"$T/macros/check.out" 2>&1 ||
    die "warden check failed: $(tail -5 "$T/macros/check.out")"
sed -n '/^postfix main.cf/,/^sendmail/p' "$T/macros/check.out" |
    sed -n 's/^ *\(milter_[a-z_]*_macros = .*\)$/\1/p' >"$T/macros.cf"

# Independent check that warden's policy is the one described: the
# shipped submission rule answers a session on 587 without AUTH.
if has wmem; then
	"$BIN" explain -c "$T/wmem/warden.conf" client=192.0.2.1 port=587 \
	    helo=x.example sender=a@example.net rcpt=b@example.com 2>&1 |
	    grep -q '^verdict: reject at envfrom: 530 5.7.0' ||
	    die "wmem policy: port 587 without AUTH is not refused"
fi

# --- servers ----------------------------------------------------------
if [ -n "$USES_REDIS" ]; then
	mkdir -p "$T/redis"
	(cg_join redis && exec setsid redis-server --port "$P_REDIS" \
	    --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
	    --dir "$T/redis" --logfile "$T/redis/redis.log") </dev/null \
	    >/dev/null 2>&1 &
	PID[redis]=$!
fi
RSPAMD=
has rspamd || has rspamdu && RSPAMD=1
if [ -n "$RSPAMD" ]; then
	R=$T/rspamd
	mkdir -p "$R/run" "$R/db" "$R/log" "$R/tmp"
	free_port P_RS_NORMAL P_RS_PROXY
	subst "$TPL/rspamd.conf.in" "$R/rspamd.conf" T="$R" \
	    REDIS_PORT="$P_REDIS" NORMAL_PORT="$P_RS_NORMAL" \
	    PROXY_PORT="$P_RS_PROXY" PROXY_UNIX="$R/run/proxy.sock" \
	    RATE_MAX="$RATE_MAX" \
	    RATE_SECS="$RATE_SECS" || die "rspamd template"
	chown -R _rspamd "$R" || die "no user _rspamd"
	# -f: foreground, so $! is the main process (workers are its children).
	(cg_join rspamd && TMPDIR=$R/tmp exec rspamd -f -c "$R/rspamd.conf" \
	    -u _rspamd -g _rspamd) </dev/null >"$R/out.log" 2>&1 &
	PID[rspamd]=$!
	MSOCK[rspamd]="inet:127.0.0.1:$P_RS_PROXY"
	MSOCK[rspamdu]="unix:$R/run/proxy.sock"
fi
if has postfwd; then
	F=$T/postfwd
	mkdir -p "$F"
	free_port P_PFW
	subst "$TPL/postfwd.cf.in" "$F/postfwd.cf" RATE_MAX="$RATE_MAX" \
	    RATE_SECS="$RATE_SECS" || die "postfwd template"
	chmod -R a+rX "$F"
	chown postfw "$F" || die "no user postfw"
	# postfwd2 always daemonizes (its rate() needs the cache daemon,
	# which --nodaemon leaves out): the PID comes from --pidfile.
	# Debian's default options, plus --nodns (no network) and
	# --perfmon (no logging: warden logs nothing for accepted mail).
	(cg_join postfwd && exec postfwd2 --file="$F/postfwd.cf" \
	    --interface=127.0.0.1 --port="$P_PFW" --pidfile="$F/postfwd.pid" \
	    --user=postfw --group=postfw --cache=600 --cache-rdomain-only \
	    --cache-no-size --nodns --perfmon --noidlestats) </dev/null \
	    >"$F/out.log" 2>&1
	for ((i = 0; i < 100; i++)); do
		[ -s "$F/postfwd.pid" ] && break
		sleep 0.1
	done
	PID[postfwd]=$(tr -dc 0-9 <"$F/postfwd.pid" 2>/dev/null)
	pid_alive "${PID[postfwd]}" || die "postfwd did not start: $(tail -3 "$F/out.log")"
fi
for who in wmem wredis wunix wship; do
	has "$who" || continue
	(cg_join "$who" && exec "$BIN" run -c "$T/$who/warden.conf") \
	    >"$T/$who/warden.log" 2>&1 &
	PID[$who]=$!
done
for who in nullpol nullpol2 nullfull; do
	has "$who" || continue
	free_port p
	mode=
	[ "$who" = nullfull ] && mode=full
	(cg_join "$who" && exec "$NULLPOL" "$p" $mode) >"$T/$who.log" 2>&1 &
	PID[$who]=$!
	MSOCK[$who]="inet:127.0.0.1:$p"
done

sink_start_count "$T/sink" "$P_SINK" || die "smtp-sink does not listen"
if [ -n "$USES_REDIS" ]; then
	for ((i = 0; i < 100; i++)); do
		redis-cli -p "$P_REDIS" ping 2>/dev/null | grep -q PONG && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || die "redis-server does not answer"
fi
wait_sock() {	# wait_sock WHO SOCKET SECS
	local s=$2 i
	case $s in
	inet:*) wait_listening "${s##*:}" "$3" ;;
	unix:*) for ((i = 0; i < $3 * 10; i++)); do
			[ -S "${s#unix:}" ] && return 0
			sleep 0.1
		done
		return 1 ;;
	esac
}
for who in $CONTENDERS; do
	[ -n "${MSOCK[$who]:-}" ] || continue
	# rspamd compiles its maps and Lua at start: ~10 s on a busy machine.
	wait_sock "$who" "${MSOCK[$who]}" 90 ||
	    die "$who does not listen on ${MSOCK[$who]}: $(tail -3 "$T/$who/warden.log" "$T/$who.log" "$T/rspamd/out.log" 2>/dev/null)"
done
if has postfwd; then
	wait_listening "$P_PFW" 30 || die "postfwd does not listen"
	# The policy is live: ask postfwd directly, as smtpd would.
	pfw_ask() {
		python3 - "$P_PFW" "$@" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
req = ["request=smtpd_access_policy", "protocol_state=RCPT",
       "client_address=192.0.2.1", "sender=a@example.net",
       "recipient=b@example.com"] + sys.argv[2:]
s.sendall(("\n".join(req) + "\n\n").encode())
buf = b""
while not buf.endswith(b"\n\n"):
    c = s.recv(4096)
    if not c:
        break
    buf += c
print(buf.decode().strip())
EOF
	}
	a1=$(pfw_ask server_port=587 sasl_method= encryption_protocol=TLSv1.3)
	a2=$(pfw_ask server_port=25 sasl_method=PLAIN sasl_username=u encryption_protocol=)
	a3=$(pfw_ask server_port=25 sasl_method= encryption_protocol=)
	[[ $a1 == "action=530 5.7.0 "* && $a2 == "action=538 5.7.11 "* &&
	    ${a3,,} == action=dunno ]] ||
	    die "postfwd policy is not the expected one: '$a1' '$a2' '$a3'"
fi

PF_SMTP=$P_SMTP PF_SUB=$P_SUB PF_SINK=$P_SINK PF_MILTER=$P_UNUSED PF_BLOCK=
PF_MACROS=$T/macros.cf
PF_RELAY_DOMAINS="example.com example.net"
PF_RELAY_RCPTS="@example.com ok
@example.net ok"
# Postfix's inflow control (in_flow_delay, 1 s): cleanup takes a token
# from a pipe the queue manager fills as it moves mail from incoming to
# active (topped up to the process limit when idle); with none there it
# sleeps the whole delay before it goes on. Once the receiving side gets
# ~100 messages ahead of the queue manager, sessions stall for a second
# in some runs and not in others: with it on, two identical null
# milters (nullpol2 / nullpol) read 0.76-1.11x each other per round at
# 50 sessions, 0.96-1.08x with it off. The bench measures the receiving
# side, so the pacing goes; delivery still counts, in e2e and in the CPU
# (sampled once the queue is empty).
PF_MAIN_EXTRA="in_flow_delay = 0s"
pf_setup "$T/pf" || die "pf_setup failed"
for who in $CONTENDERS; do
	case $who in
	none) set -- "smtpd_milters=" ;;
	postfwd) set -- "smtpd_milters=" \
		"smtpd_recipient_restrictions=check_policy_service,inet:127.0.0.1:$P_PFW" ;;
	*) set -- "smtpd_milters=${MSOCK[$who]}" ;;
	esac
	pf_add_smtpd "${PORT[$who]}" "$who" "$@" || die "master.cf"
done
# The master and everything it forks are counted in the postfix cgroup.
(cg_join postfix && pf_start) || die "postfix did not start"
for who in $CONTENDERS; do
	wait_listening "${PORT[$who]}" 10 || die "postfix listener $who did not open"
done
MASTER=$(pf_master_pid)

say "# postfix_bench: nproc=$(nproc) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
say "# postfix $(postconf -d -h mail_version 2>/dev/null), rspamd $(rspamd --version 2>/dev/null | sed -n 's/.*version //p'), postfwd $(postfwd2 -V 2>/dev/null | head -1 | tr -s ' ' | cut -d' ' -f2), redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'); cpu method $CG_METHOD; rounds $ROUNDS, concurrency $CONCS, ~${SECS}s a run; rate limit $RATE_MAX per ${RATE_SECS}s; temp $T"
say "# contenders: $CONTENDERS"

# --- one run ------------------------------------------------------------
SENT=0		# messages accepted so far, all runs (smtp-sink's count must follow)
now_ns() { date +%s%N; }
sample() {
	local args=("postfix=$MASTER") who
	for who in ${!PID[@]}; do args+=("$who=${PID[$who]}"); done
	python3 "$T/sample.py" "${CG_ROOT:-/nonexistent}" "$P_REDIS" "${args[@]}"
}
uses_redis() { case $1 in wredis | rspamd*) echo 1 ;; *) echo 0 ;; esac; }
tree_of() { case $1 in rspamdu) echo rspamd ;; *) echo "$1" ;; esac; }

# drained: smtp-sink has every message and the queue is empty (bounded).
drained() {
	local i
	for ((i = 0; i < 600; i++)); do
		if [ "$(sink_count "$T/sink")" -ge "$SENT" ] &&
		    [ -z "$(find "$PF_DIR/spool/incoming" "$PF_DIR/spool/active" \
		    "$PF_DIR/spool/deferred" -type f 2>/dev/null | head -1)" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# perf_start/perf_stop WHO: when PERF_NOW is set, profile WHO's daemon
# during smtp-source (the perf process is stopped by its PID).
PERF_NOW=
perf_start() {
	[ -n "$PERF_NOW" ] && [ -n "${PID[$1]:-}" ] || return 0
	perf record -q -F 2999 -g -p "${PID[$1]}" -o "$T/perf.$1.data" \
	    >"$T/perf.$1.log" 2>&1 &
	PERF_PID=$!
	sleep 0.5	# perf attaches before the load starts
}
perf_stop() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null
	stop_pid "$PERF_PID" 10
	PERF_PID=
	{
		echo "# perf record -F 2999 -g -p $1 during one run (cpu-clock samples)"
		perf report -i "$T/perf.$1.data" --stdio --no-children \
		    --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$'
		perf report -i "$T/perf.$1.data" --stdio --no-children \
		    --sort dso,symbol --percent-limit 0.5 -g none 2>/dev/null |
		    grep -v '^#' | grep -v '^$'
	} >"$OUTDIR/postfix-perf-$1.txt"
}

# run CONTENDER CONC N: sets R_WALL_NS R_E2E_NS R_DELTA (delta.py) R_OK
run() {
	local who=$1 conc=$2 n=$3 t0 t1 rc before after got
	drained || say "# warning: queue not drained before $who c=$conc"
	before=$(sample)
	perf_start "$who"
	t0=$(now_ns)
	# Bounded: a wedged Postfix or daemon must not hang the bench.
	timeout $((SECS * 30 + n / 5 + 60)) \
	    smtp-source -4 -s "$conc" -m "$n" -M client.example.net \
	    -f bench@example.net -t rcpt@example.com \
	    "127.0.0.1:${PORT[$who]}" >"$T/source.out" 2>&1
	rc=$?
	t1=$(now_ns)
	perf_stop "$who"
	SENT=$((SENT + n))
	drained
	R_E2E_NS=$(($(now_ns) - t0))
	after=$(sample)
	got=$(sink_count "$T/sink")
	R_OK=1
	if [ "$rc" -ne 0 ] || [ "$got" -ne "$SENT" ]; then
		R_OK=0
		say "# FAILED: $who c=$conc n=$n: smtp-source exit $rc, sink has $got of $SENT: $(head -c 300 "$T/source.out")"
		SENT=$got
	fi
	R_WALL_NS=$((t1 - t0))
	R_DELTA=$(python3 "$T/delta.py" "$(tree_of "$who")" "$(uses_redis "$who")" "$before" "$after")
}

# --- warm-up and calibration ----------------------------------------------
# Every contender once per concurrency (Postfix spawns its smtpd pool,
# the daemons their threads and workers, the stores fill); its rate
# sets that contender's message count, so that each run lasts ~SECS s
# (rspamd at C=1 is ~20x slower than the others).
declare -A NMSG
for c in $CONCS; do
	for who in $CONTENDERS; do
		n=$((c < 10 ? 100 : 20 * c))
		[ -n "$QUICK" ] && n=$((c < 10 ? 50 : 10 * c))
		run "$who" "$c" "$n"
		[ "$R_OK" = 1 ] || die "warm-up failed ($who, c=$c); see above"
		rate=$((n * 1000000000 / R_WALL_NS))
		m=$((rate * SECS))
		((m < 50)) && m=50
		((m > 50000)) && m=50000
		NMSG[$who,$c]=$m
		say "# warm-up $who c=$c: $rate msg/s -> $m messages a run"
	done
done

# --- rounds -----------------------------------------------------------------
RUNS=$OUTDIR/postfix-runs.tsv
printf 'round\tcontender\tconcurrency\tmessages\twall_s\tmsg_per_s\te2e_msg_per_s\tpostfix_cpu_ms\tpolicy_cpu_ms\tredis_cpu_ms\tpostfix_cpu_ms_proc\tpolicy_cpu_ms_proc\tredis_cpu_ms_proc\tredis_client_calls\tredis_commands\tpolicy_rss_kb\tpolicy_pss_kb\tok\tredis_script_calls\n' >"$RUNS"
order=($CONTENDERS)
lost=0
for ((r = 1; r <= ROUNDS; r++)); do
	for c in $CONCS; do
		for ((k = 0; k < ${#order[@]}; k++)); do
			# Rotated each round, and backwards every other round: a
			# contender neither keeps its place nor its predecessor
			# (a run can leave work behind for the next one).
			i=$(((k + r - 1) % ${#order[@]}))
			[ $((r % 2)) -eq 0 ] && i=$((${#order[@]} - 1 - i))
			who=${order[$i]}
			n=${NMSG[$who,$c]}
			run "$who" "$c" "$n"
			[ "$R_OK" = 1 ] || lost=1
			read -r cpf cpol crd ppf ppol prd rcalls rscript rcmds rss pss <<<"$R_DELTA"
			if [ "$CG_METHOD" != cgroup ]; then
				cpf=$ppf cpol=$ppol crd=$prd
			fi
			awk -v r="$r" -v who="$who" -v c="$c" -v n="$n" \
			    -v w="$R_WALL_NS" -v e="$R_E2E_NS" -v pf="$cpf" \
			    -v pol="$cpol" -v rd="$crd" -v ppf="$ppf" -v ppol="$ppol" \
			    -v prd="$prd" -v rc="$rcalls" -v rcm="$rcmds" \
			    -v rss="$rss" -v pss="$pss" -v ok="$R_OK" -v rsc="$rscript" \
			    'BEGIN { printf "%d\t%s\t%d\t%d\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%s\t%d\t%d\t%d\t%d\n",
			    r, who, c, n, w / 1e9, n * 1e9 / w, n * 1e9 / e,
			    pf / 1e3, pol / 1e3, rd / 1e3, ppf / 1e3, ppol / 1e3,
			    prd / 1e3, rc, rcm, rss, pss, ok, rsc }' >>"$RUNS"
			tail -n 1 "$RUNS" | awk -F'\t' '{ printf "# round %s %-8s c=%-3s %6d msgs %7.1f msg/s  cpu ms/msg postfix %.3f policy %.3f redis %.3f  redis req/msg %.2f\n",
			    $1, $2, $3, $4, $6, $8 / $4, $9 / $4, $10 / $4, $14 / $4 }'
		done
	done
done

if [ -n "${PFB_PERF:-}" ] && command -v perf >/dev/null; then
	PERF_NOW=1
	for who in nullpol wmem; do
		has "$who" || continue
		run "$who" "${CONCS##* }" "${NMSG[$who,${CONCS##* }]}"
		say "# perf profile of $who: $OUTDIR/postfix-perf-$who.txt"
	done
	PERF_NOW=
fi

# --- SMTP reply time per stage -----------------------------------------------
# One session at a time, PFB_LAT sessions per contender, the order
# rotated: the time from sending each SMTP command to its reply (connect:
# until the banner; eom: the final "." until 250). A milter stage that
# waits for its reply adds its round trip here; a no-reply stage adds
# nothing at its own command, but what it leaves unacknowledged may
# delay the next one (delayed ACK + Nagle over TCP).
cat >"$T/lat.py" <<'EOF2'
import json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
STAGES = ("connect", "helo", "mail", "rcpt", "data", "eom")
out = {k: [] for k in STAGES}
BODY = (b"From: <bench@example.net>\r\nTo: <rcpt@example.com>\r\n"
        b"Subject: latency probe\r\n\r\nfour lines\r\nof a body\r\n"
        b"like smtp-source\r\nsends\r\n.\r\n")

def reply(f):
    while True:
        l = f.readline()
        if not l:
            raise EOFError("closed")
        if l[3:4] != b"-":
            return l[:3]

for i in range(n):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), 30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    code = reply(f)
    t = [time.perf_counter()]
    steps = [b"EHLO client.example.net\r\n", b"MAIL FROM:<bench@example.net>\r\n",
             b"RCPT TO:<rcpt@example.com>\r\n", b"DATA\r\n", BODY]
    want = [b"220", b"250", b"250", b"250", b"354", b"250"]
    codes = [code]
    for cmd in steps:
        a = time.perf_counter()
        s.sendall(cmd)
        codes.append(reply(f))
        t.append(time.perf_counter() - a)
    s.sendall(b"QUIT\r\n")
    s.close()
    if codes != want:
        print("unexpected replies %r" % codes, file=sys.stderr)
        sys.exit(1)
    t[0] -= t0
    for k, v in zip(STAGES, t):
        out[k].append(round(v * 1e6))
print(json.dumps(out))
EOF2
LATJ=$T/lat.json
: >"$LATJ"
LAT=${PFB_LAT:-300}
[ -n "$QUICK" ] && LAT=${PFB_LAT:-30}
# In 5 slices, the contenders' order rotated in each, so that a burst
# of load from elsewhere does not land on one contender only.
if [ "$LAT" -gt 0 ]; then
	slice=$(((LAT + 4) / 5))
	for ((sl = 0; sl < 5; sl++)); do
		for ((k = 0; k < ${#order[@]}; k++)); do
			who=${order[$(((k + sl) % ${#order[@]}))]}
			drained || say "# warning: queue not drained before latency $who"
			if j=$(timeout $((slice + 120)) python3 "$T/lat.py" \
			    "${PORT[$who]}" "$slice"); then
				echo "$who $j" >>"$LATJ"
			else
				say "# latency probe $who failed"
				lost=1
			fi
			SENT=$((SENT + slice))
		done
	done
	drained || say "# warning: latency probe messages not delivered"
fi

# --- Redis commands of one message, by key ---------------------------------
# MONITOR shows each command with its key; warden's keys carry the
# counter's (rule's) name, hence the stage. Pipelined commands are
# listed one by one: the count is commands, not round trips.
REDISTXT=$OUTDIR/postfix-redis.txt
: >"$REDISTXT"
for who in wredis rspamd; do
	has "$who" || continue
	timeout 60 redis-cli -p "$P_REDIS" MONITOR >"$T/monitor.$who" 2>&1 &
	MON_PID=$!
	sleep 0.5
	timeout 60 smtp-source -4 -s 1 -m 1 -M client.example.net \
	    -f bench@example.net -t rcpt@example.com \
	    "127.0.0.1:${PORT[$who]}" >"$T/source.out" 2>&1
	SENT=$((SENT + 1))
	drained || say "# warning: MONITOR message ($who) not delivered"
	sleep 0.5
	stop_pid "$MON_PID" 5
	MON_PID=
	{
		echo "== $who: Redis commands for one message (MONITOR; command key...)"
		# Commands a script runs show as "[0 lua]": not round trips.
		grep -v '^OK$' "$T/monitor.$who" | grep -iv '"info"\|"monitor"' |
		    sed -E 's/^[0-9.]+ \[[0-9]+ lua\] /(in script) /;
		    s/^[0-9.]+ \[[^]]*\] //; s/"[0-9a-f]{40}"/SHA/' |
		    awk '{ s = ""; if ($1 == "(in") { s = "(in script) "; $1 = $2 = ""; $0 = $0; }
		    k = s $1 " " ($2 == "SHA" ? $4 : $2); n[k]++ }
		    END { for (k in n) printf "   %d x %s\n", n[k], k }' | sort -k3
	} >>"$REDISTXT"
done

# --- warden's own counters ---------------------------------------------------
# SIGUSR1 writes the stats line; store_calls per message says how many
# store operations (Redis: script calls) a message cost warden.
STATSTXT=$T/stats.txt
: >"$STATSTXT"
for who in wmem wredis wunix wship; do
	has "$who" || continue
	kill -USR1 "${PID[$who]}" 2>/dev/null
	wait_grep 5 "$T/$who/warden.log" 'stats: uptime' >/dev/null
	sleep 0.3
	echo "$who $(grep 'stats: uptime' "$T/$who/warden.log" | tail -1)" >>"$STATSTXT"
done

# --- what each milter negotiates ----------------------------------------------
# An SMFIC_OPTNEG offering every step and no-reply flag (as Postfix 3.7
# with milter_protocol = 6 does); the answer says which steps the milter
# wants to see and which it wants sent without waiting for a reply.
cat >"$T/optneg.py" <<'EOF2'
import socket, struct, sys
NAMES = [(0x1, "NOCONNECT"), (0x2, "NOHELO"), (0x4, "NOMAIL"),
         (0x8, "NORCPT"), (0x10, "NOBODY"), (0x20, "NOHDRS"),
         (0x40, "NOEOH"), (0x80, "NR_HDR"), (0x100, "NOUNKNOWN"),
         (0x200, "NODATA"), (0x400, "SKIP"), (0x800, "RCPT_REJ"),
         (0x1000, "NR_CONN"), (0x2000, "NR_HELO"), (0x4000, "NR_MAIL"),
         (0x8000, "NR_RCPT"), (0x10000, "NR_DATA"), (0x20000, "NR_UNKN"),
         (0x40000, "NR_EOH"), (0x80000, "NR_BODY"),
         (0x100000, "HDR_LEADSPC")]
who, spec = sys.argv[1], sys.argv[2]
if spec.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(spec[5:])
else:
    s = socket.create_connection(("127.0.0.1", int(spec.rsplit(":", 1)[1])), 10)
body = b"O" + struct.pack("!III", 6, 0x1FF, 0x1FFFFF)
s.sendall(struct.pack("!I", len(body)) + body)
buf = b""
while len(buf) < 4 or len(buf) < 4 + struct.unpack("!I", buf[:4])[0]:
    c = s.recv(4096)
    if not c:
        break
    buf += c
s.sendall(struct.pack("!I", 1) + b"Q")
s.close()
if len(buf) < 17 or buf[4:5] != b"O":
    print("%-8s no OPTNEG answer" % who)
    sys.exit(0)
proto = struct.unpack("!I", buf[13:17])[0]
print("%-8s %s: %s" % (who, spec, " ".join(n for b, n in NAMES if proto & b)
                       or "(every step, each with a reply)"))
EOF2
OPTNEG=$T/optneg.txt
: >"$OPTNEG"
for who in nullfull nullpol wmem wredis wunix wship rspamd rspamdu; do
	has "$who" || continue
	timeout 20 python3 "$T/optneg.py" "$who" "${MSOCK[$who]}" >>"$OPTNEG" 2>&1
done

# --- 1,000 held milter sessions ----------------------------------------------
cat >"$T/hold.py" <<'EOF'
# hold.py PORT PID N: open N milter sessions (OPTNEG, connect macros,
# CONNECT) to the milter on 127.0.0.1:PORT, hold them, and print the
# milter's VmRSS (kB) and Threads idle, with N open, and after closing;
# then the RSS with N open again and closed again (a leak would grow it).
import os, socket, struct, sys, time

port, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def status():
    v = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            v[k] = rest.split()[0] if rest.split() else ""
    return int(v["VmRSS"]), int(v["Threads"])

def pkt(cmd, data=b""):
    return struct.pack("!I", len(data) + 1) + cmd + data

def reply(s):
    buf = b""
    while len(buf) < 4:
        c = s.recv(4 - len(buf))
        if not c:
            raise EOFError("closed")
        buf += c
    ln = struct.unpack("!I", buf)[0]
    body = b""
    while len(body) < ln:
        c = s.recv(ln - len(body))
        if not c:
            raise EOFError("closed")
        body += c
    return body[:1], body[1:]

def session(i):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(pkt(b"O", struct.pack("!III", 6, 0x1FF, 0x1FFFFF)))
    cmd, data = reply(s)
    if cmd != b"O" or len(data) < 12:
        raise RuntimeError("optneg answered %r" % cmd)
    noreply = struct.unpack("!III", data[:12])[2] & 0x1000   # SMFIP_NR_CONN
    cport = 20000 + i % 40000
    mac = (b"C" + b"j\0mx.example.test\0{daemon_name}\0mx.example.test\0"
           b"{daemon_port}\x0025\0{client_addr}\0" +
           ("192.0.2.%d" % (i % 250 + 1)).encode() + b"\0{client_port}\0" +
           str(cport).encode() + b"\0{client_name}\0unknown\0")
    s.sendall(pkt(b"D", mac) + pkt(b"C", b"unknown\0" + b"4" +
              struct.pack("!H", cport) +
              ("192.0.2.%d" % (i % 250 + 1)).encode() + b"\0"))
    if not noreply:
        cmd, _ = reply(s)
        if cmd != b"c":
            raise RuntimeError("connect answered %r" % cmd)
    return s

def cycle():
    socks = []
    t0 = time.time()
    for i in range(n):
        socks.append(session(i))
    t1 = time.time()
    time.sleep(2)
    rss1, thr1 = status()
    for s in socks:
        s.sendall(pkt(b"Q"))
        s.close()
    time.sleep(2)
    rss2, thr2 = status()
    return rss1, thr1, rss2, thr2, t1 - t0

time.sleep(1)
rss0, thr0 = status()
rss1, thr1, rss2, thr2, secs = cycle()
rss3, _, rss4, _, _ = cycle()
print(rss0, thr0, rss1, thr1, rss2, thr2, rss3, rss4, "%.2f" % secs)
EOF

SESS=$OUTDIR/postfix-sessions.tsv
printf 'milter\tsessions\tidle_rss_kb\topen_rss_kb\tkb_per_session\tclosed_rss_kb\tidle_threads\topen_threads\tclosed_threads\trss_target\tthreads_target\treopen_rss_kb\treclosed_rss_kb\n' >"$SESS"
LIMIT_THR=$((2 * $(nproc)))
for m in wmem nullpol; do
	[ "$SESSIONS" -gt 0 ] && has "$m" || continue
	port=${MSOCK[$m]##*:}
	out=$(timeout 120 python3 "$T/hold.py" "$port" "${PID[$m]}" "$SESSIONS" 2>&1)
	if ! read -r r0 t0 r1 t1 r2 t2 r3 r4 secs <<<"$out" || [ -z "$secs" ]; then
		say "# sessions test ($m) failed: $out"
		lost=1
		continue
	fi
	# Held sessions wait for the MTA's next command: none is busy.
	awk -v m="$m" -v n="$SESSIONS" -v r0="$r0" -v r1="$r1" -v r2="$r2" \
	    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v lt="$LIMIT_THR" \
	    -v r3="$r3" -v r4="$r4" \
	    'BEGIN { kb = (r1 - r0) / n
	    printf "%s\t%d\t%d\t%d\t%.2f\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n", m, n,
	    r0, r1, kb, r2, t0, t1, t2, kb <= 2 ? "PASS" : "BELOW",
	    t1 <= lt ? "PASS" : "BELOW", r3, r4 }' >>"$SESS"
done

# --- summary --------------------------------------------------------------------
python3 - "$RUNS" "$SESS" "$OUTDIR/postfix.tsv" "$LIMIT_THR" "$STATSTXT" \
    "$REDISTXT" "$OPTNEG" "$LATJ" "$OUTDIR/postfix-latency.tsv" <<'EOF' || lost=1
import json, statistics as st, sys
runs, sess, out, lthr, statstxt, redistxt, optneg, latj, latout = sys.argv[1:10]
lthr = int(lthr)
rows = [l.rstrip("\n").split("\t") for l in open(runs)][1:]
ORDER = ["none", "nullfull", "nullpol", "nullpol2", "wmem", "wredis", "wunix",
         "wship", "rspamd", "rspamdu", "postfwd"]
REDIS = ("wredis", "rspamd", "rspamdu")
by, rnd, msgs = {}, {}, {}
for r in rows:
    msgs[r[1]] = msgs.get(r[1], 0) + int(r[3])
    if r[17] != "1":
        continue
    n = int(r[3])
    x = {"rate": float(r[5]), "e2e": float(r[6]), "pf": float(r[7]) / n,
         "pol": float(r[8]) / n, "rd": float(r[9]) / n,
         "calls": int(r[13]) / n, "rss": int(r[15]), "pss": int(r[16])}
    x["tot"] = x["pf"] + x["pol"] + x["rd"]
    by.setdefault((r[1], int(r[2])), []).append(x)
    rnd[(r[1], int(r[2]), int(r[0]))] = x
concs = sorted({c for _, c in by})
who_all = [w for w in ORDER if any((w, c) in by for c in concs)]
def med(w, c, k):
    return st.median(x[k] for x in by[(w, c)])

hdr = ["contender", "concurrency", "runs", "msg_s_min", "msg_s_median",
       "msg_s_max", "e2e_msg_s_median", "cpu_ms_msg_postfix",
       "cpu_ms_msg_policy", "cpu_ms_msg_redis", "cpu_ms_msg_total",
       "redis_requests_msg", "policy_rss_kb_max", "policy_pss_kb_max",
       "added_ms_msg_vs_none"]
lines = []
for c in concs:
    for w in who_all:
        v = by.get((w, c))
        if not v:
            continue
        rate = [x["rate"] for x in v]
        added = ""
        if ("none", c) in by:
            # Per message and session: at C sessions each message takes
            # C / rate seconds; the difference to Postfix alone is what
            # the policy adds to a session end to end.
            added = "%.3f" % (1000.0 * c / med(w, c, "rate") -
                              1000.0 * c / med("none", c, "rate"))
        lines.append([w, c, len(v), "%.1f" % min(rate),
                      "%.1f" % med(w, c, "rate"), "%.1f" % max(rate),
                      "%.1f" % med(w, c, "e2e"), "%.3f" % med(w, c, "pf"),
                      "%.3f" % med(w, c, "pol"), "%.3f" % med(w, c, "rd"),
                      "%.3f" % med(w, c, "tot"), "%.2f" % med(w, c, "calls"),
                      max(x["rss"] for x in v), max(x["pss"] for x in v),
                      added])
with open(out, "w") as f:
    f.write("\t".join(hdr) + "\n")
    for row in lines:
        f.write("\t".join(str(x) for x in row) + "\n")

print()
print("Postfix + policy, one message per SMTP session: msg/s min/median/max;"
      " e2e = until smtp-sink has all;")
print("CPU = median ms per message of each process tree; rd req = Redis"
      " requests a message; added = ms a session")
print("takes longer than with Postfix alone (C / msg/s, medians); RSS/PSS ="
      " the policy daemon's tree, kB, max")
fmt = "%-8s %4s %4s %23s %7s %7s %7s %6s %7s %6s %7s %7s %8s"
print(fmt % ("who", "conc", "runs", "msg/s min/med/max", "e2e/s", "postfix",
             "policy", "redis", "total", "rd req", "RSS", "PSS", "added"))
for row in lines:
    print(fmt % (row[0], row[1], row[2], "%s/%s/%s" % (row[3], row[4], row[5]),
                 row[6], row[7], row[8], row[9], row[10], row[11], row[12],
                 row[13], row[14]))

def pairs(a, b, c):
    return [(rnd[k]["rate"] / rnd[(b, c, k[2])]["rate"],
             rnd[k]["tot"] - rnd[(b, c, k[2])]["tot"])
            for k in rnd if k[:2] == (a, c) and (b, c, k[2]) in rnd]

def paired(a, b, c):
    pr = pairs(a, b, c)
    if not pr:
        return None
    return st.median(p[0] for p in pr), st.median(p[1] for p in pr)

def cmp(a, b, c, rtarget=None, ctarget=None):
    if (a, c) not in by or (b, c) not in by:
        return None
    ratio = med(a, c, "rate") / med(b, c, "rate")
    delta = med(a, c, "tot") - med(b, c, "tot")
    p = paired(a, b, c)
    s = "c=%-3s %-8s/%-7s msg/s x%.3f" % (c, a, b, ratio)
    if rtarget is not None:
        s += " (>= %.2f: %s)" % (rtarget, "PASS" if ratio >= rtarget else "BELOW")
    s += "  CPU total %+.3f ms" % delta
    if ctarget is not None:
        s += " (<= +%.2f: %s)" % (ctarget, "PASS" if delta <= ctarget else "BELOW")
    if p:
        s += "  paired x%.3f %+.3f ms" % p
    return s

print()
print("Targets (medians; paired = median over rounds against the same"
      " round's run); A/A = a second null-policy milter against the"
      " first: what the bench reads between identical milters")
for c in concs:
    for a, rt, ct in (("wmem", 0.97, 0.10), ("wredis", 0.95, 0.20)):
        s = cmp(a, "nullpol", c, rt, ct)
        if s:
            print(s)
    s = cmp("nullpol2", "nullpol", c)
    if s:
        rs = sorted(p[0] for p in pairs("nullpol2", "nullpol", c))
        print("%s  A/A" % s + (", per round x%.3f..x%.3f" % (rs[0], rs[-1])
                                if rs else ""))
print()
print("warden vs the other policy daemons (target: faster than both, and"
      " less total CPU a message)")
for c in concs:
    for a in ("wmem", "wredis"):
        for b in ("postfwd", "rspamd", "rspamdu"):
            if (a, c) in by and (b, c) in by:
                ok = (med(a, c, "rate") > med(b, c, "rate") and
                      med(a, c, "tot") < med(b, c, "tot"))
                print(cmp(a, b, c) + ("  PASS" if ok else "  BELOW"))
print()
print("No-reply stages over TCP vs a unix socket; shipped rules (no"
      " no-reply stage) vs the bench policy; null milters")
for c in concs:
    for a, b in (("wunix", "wmem"), ("wship", "wmem"), ("rspamdu", "rspamd"),
                 ("nullfull", "nullpol"), ("nullpol", "none")):
        s = cmp(a, b, c)
        if s:
            print(s)

lat = {}
for l in open(latj):
    who, _, j = l.partition(" ")
    for k, v in json.loads(j).items():
        lat.setdefault(who, {}).setdefault(k, []).extend(v)
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] / 1000.0
if lat:
    STAGES = ("connect", "helo", "mail", "rcpt", "data", "eom")
    print()
    print("SMTP reply time per stage, one session at a time (%d sessions"
          " each), ms p50/p99; +added = p50 minus Postfix alone's" %
          len(next(iter(lat.values()))["helo"]))
    print("%-8s" % "who" + "".join(" %17s" % s for s in STAGES) + "   sum p50")
    with open(latout, "w") as f:
        f.write("contender\tstage\tsessions\tp50_ms\tp99_ms\tadded_p50_ms"
                "\tadded_p99_ms\n")
        for w in ORDER:
            if w not in lat:
                continue
            cells, tot = [], 0.0
            for s in STAGES:
                p50, p99 = pct(lat[w][s], 0.5), pct(lat[w][s], 0.99)
                tot += p50
                a50 = a99 = ""
                if "none" in lat:
                    a50 = "%.3f" % (p50 - pct(lat["none"][s], 0.5))
                    a99 = "%.3f" % (p99 - pct(lat["none"][s], 0.99))
                cells.append("%.2f/%.2f%s" % (p50, p99,
                             "" if w == "none" or not a50 else
                             " %+.2f" % float(a50)))
                f.write("%s\t%s\t%d\t%.3f\t%.3f\t%s\t%s\n" % (
                    w, s, len(lat[w][s]), p50, p99, a50, a99))
            print("%-8s" % w + "".join(" %17s" % c for c in cells) +
                  "   %.2f" % tot)

print()
print("What each milter asks for (SMFIC_OPTNEG offering every step and"
      " every no-reply flag)")
for l in open(optneg):
    print(l.rstrip("\n"))
print()
print("Redis requests per message (INFO commandstats over every run: client"
      " requests, then commands run inside scripts;")
print("target: 1 round trip per stage with a limit, 0 elsewhere)")
bad = 0
tot = {}
for r in rows:
    tot.setdefault(r[1], [0, 0, {}])
    tot[r[1]][0] += int(r[3])
    tot[r[1]][1] += int(r[13])
    for kv in r[14].split(","):
        if ":" in kv:
            k, v = kv.split(":")
            tot[r[1]][2][k] = tot[r[1]][2].get(k, 0) + int(v)
for w in who_all:
    n, calls, cmds = tot.get(w, [0, 0, {}])
    if not n:
        continue
    if w in REDIS or calls:
        print("%-8s %.3f client requests a message; all commands: %s" % (
            w, calls / n, ", ".join("%s %.3f" % (k, v / n)
                                    for k, v in sorted(cmds.items()))))
    # A Redis contender without script calls did not apply its limit;
    # another with them would have charged someone else's counters.
    # (Idle pool connections closing send QUIT at any time: not counted.)
    charges = sum(v for k, v in cmds.items()
                  if k in ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall"))
    if (w in REDIS) != (charges > 0):
        print("# INVALID: %s made %d Redis script calls" % (w, charges))
        bad = 1
    if w == "wredis":
        # One limit, at envrcpt, one recipient a message: one round trip.
        print("wredis   script calls a message %.3f (target: exactly 1, the"
              " envrcpt limit: %s)" % (charges / n, "PASS"
                                       if round(charges / n, 3) == 1 else "BELOW"))
for l in open(redistxt):
    print(l.rstrip("\n"))
print()
print("warden's own counters (SIGUSR1 stats line: store calls per message)")
for l in open(statstxt):
    f = l.split()
    kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
    try:
        m, sc = int(kv["messages"]), int(kv["store_calls"])
    except (KeyError, ValueError):
        print("%-8s no stats line" % f[0])
        continue
    print("%-8s messages=%d store_calls=%d (%.3f a message) store_errors=%s"
          " store_p99_us=%s" % (f[0], m, sc, sc / m if m else 0,
                                kv.get("store_errors", "?"),
                                kv.get("store_p99_us", "?")))
    if f[0] != "wship" and m and sc < m:
        print("# INVALID: %s charged its limit %d times for %d messages"
              % (f[0], sc, m))
        bad = 1
# The two CPU methods over every run (seconds): they should agree in
# total; single runs differ more with /proc (10 ms ticks, children
# reaped between the two reads).
sums = [0.0] * 6
for r in rows:
    for i in range(6):
        sums[i] += max(float(r[7 + i]), 0) / 1e3
print()
print("CPU over all runs, s, primary method / /proc: postfix %.1f / %.1f,"
      " policy daemons %.1f / %.1f, redis %.1f / %.1f" % (
          sums[0], sums[3], sums[1], sums[4], sums[2], sums[5]))
lines = list(open(sess))[1:]
if lines:
    print()
    print("Held milter sessions (VmRSS kB, Threads): idle -> open -> closed")
for l in lines:
    f = l.rstrip("\n").split("\t")
    print("%-8s %s sessions: RSS %s -> %s -> %s kB = %s kB/session "
          "(<= 2: %s); threads %s -> %s -> %s (<= %d + 0 busy: %s); "
          "again: %s -> %s kB" % (
              f[0], f[1], f[2], f[3], f[5], f[4], f[9], f[6], f[7], f[8],
              lthr, f[10], f[11], f[12]))
sys.exit(bad)
EOF
say "# results: $OUTDIR/postfix.tsv, postfix-runs.tsv, postfix-latency.tsv, postfix-sessions.tsv, postfix-redis.txt"
[ "$lost" -eq 0 ]
