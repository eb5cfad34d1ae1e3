#!/bin/bash
# postfix_bench.sh [BINARY] - warden behind a real Postfix, against the
# floor (doc/performance.md "Postfix-level benchmark"). Needs root (it
# starts a private Postfix and smtp-sink -u postfix). Called by
# tests/bench/run.sh; BINARY defaults to src/warden.
#
# Contenders, all through one private Postfix 3.7 (tests/lib/postfix.sh)
# relaying to smtp-sink, each on its own smtpd listener of that instance:
#   none    smtpd_milters empty
#   null    tests/bench/nullmilter.c (libmilter, continue everywhere,
#           headers/body/unknown negotiated away, DATA kept with a reply)
#   warden  BINARY with the shipped rules/*.rules and the memory store
# Load: smtp-source from 127.0.0.1, one message per SMTP session, at each
# concurrency of PFB_CONC; PFB_ROUNDS rounds, and in each round every
# contender once per concurrency, in an order rotated every round so
# machine noise spreads over all of them. Message counts are calibrated
# so a run lasts about PFB_SECS seconds.
#
# CPU per process tree: the Postfix master and everything it forks, and
# each milter, run in their own cgroup v2 (cpu.stat usage_usec, threads
# and reaped children included). Without a writable cgroup2 mount the
# fallback reads /proc: the master's own and cumulative-children times
# plus those of its live descendants, and each milter's utime+stime.
#
# Then PFB_SESSIONS (1,000) milter connections are opened straight to
# warden (and to the null milter) and held: VmRSS and Threads, idle vs open.
#
# Output: a table on stdout, build/bench/postfix.tsv (summary),
# build/bench/postfix-runs.tsv (every run), build/bench/postfix-sessions.tsv.
# Missed targets print BELOW; the exit status is non-zero only when the
# bench could not run (setup failed, mail lost or refused).
# Env: PFB_ROUNDS (5) PFB_CONC ("1 10 50") PFB_SECS (3) PFB_SESSIONS (1000)
#      PFB_CPU=proc forces the /proc method; PFB_KEEP=1 keeps the temp dir; PFB_PERF=1 adds, after the rounds,
#      one uncounted run per milter at the highest concurrency under
#      `perf record -g -p` and writes build/bench/postfix-perf-{null,warden}.txt.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
BIN=${1:-src/warden}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac
ROUNDS=${PFB_ROUNDS:-5}
CONCS=${PFB_CONC:-"1 10 50"}
SECS=${PFB_SECS:-3}
SESSIONS=${PFB_SESSIONS:-1000}
OUTDIR=$REPO/build/bench
CONTENDERS="none null warden"

. tests/lib/servers.sh
. tests/lib/postfix.sh

say() { printf '%s\n' "$*"; }
die() { say "postfix_bench: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	say "postfix_bench: SKIP (needs root: postfix start, smtp-sink -u)"
	exit 0
fi
[ -x "$BIN" ] || die "no warden binary $BIN (run make)"
PKGS="postfix sasl2-bin libsasl2-modules"
WARDEN_EXTRA_PKGS=$PKGS tests/lib/deps.sh >/dev/null 2>&1 ||
    die "cannot install $PKGS"
for t in postfix smtp-source smtp-sink python3 gcc; do
	command -v "$t" >/dev/null || die "$t not found"
done

mkdir -p "$OUTDIR" || exit 1
NULLM=$OUTDIR/nullmilter
# Not a bench_*.c: the Makefile's bench glob would link it with libwarden.
gcc -std=c11 -O2 -g -Wall -Wextra -Werror -Wformat=2 -Wshadow \
    -Wstrict-prototypes -Wold-style-definition -Wvla -pthread \
    -o "$NULLM" tests/bench/nullmilter.c \
    $(pkg-config --libs milter 2>/dev/null || echo -lmilter) ||
    die "cannot build tests/bench/nullmilter.c"

# 1,000 held sessions need 1,000 descriptors in the milter and the client.
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null

# --- temp dir, cgroups, cleanup -------------------------------------
T=$(mktemp -d /tmp/warden-pfbench.XXXXXX) || exit 1
chmod 755 "$T"		# warden runs as nobody; Postfix wants no writable parents
WARDEN_PID= NULL_PID= PERF_PID= CG_ROOT= CG_METHOD=proc
cleanup() {
	set +e
	stop_pid "$PERF_PID" 5
	pf_stop
	stop_pid "$WARDEN_PID" 10
	stop_pid "$NULL_PID" 10
	sink_stop
	if [ -n "$CG_ROOT" ]; then
		for g in postfix warden null; do
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
	if mkdir "$CG_ROOT/postfix" "$CG_ROOT/warden" "$CG_ROOT/null" &&
	    [ -r "$CG_ROOT/postfix/cpu.stat" ]; then
		CG_METHOD=cgroup
	fi
fi
# cg_join GROUP: move this (sub)shell into GROUP's cgroup; whatever it
# starts from then on is counted there.
cg_join() {
	[ "$CG_METHOD" != cgroup ] || echo "$BASHPID" >"$CG_ROOT/$1/cgroup.procs"
}

# sample.py: CPU microseconds of the three trees, both methods.
cat >"$T/sample.py" <<'EOF'
import os, sys
HZ = os.sysconf("SC_CLK_TCK")
cgroot, master, warden, null = sys.argv[1:5]

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

def tree(root):
    # The master's own and reaped children's times plus every live
    # descendant's (its own reaped children included).
    kids, t = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            ppid, own, ch = stat(p)
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(p))
        t[int(p)] = own + ch
    if not root or int(root) not in t:
        return -1
    total, todo = 0, [int(root)]
    while todo:
        p = todo.pop()
        total += t.get(p, 0)
        todo += kids.get(p, [])
    return total * 1000000 // HZ

def own(pid):
    try:
        return stat(pid)[1] * 1000000 // HZ
    except (OSError, ValueError, IndexError):
        return -1

print(cg("postfix"), cg("warden"), cg("null"),
      tree(master), own(warden), own(null))
EOF

# --- servers ----------------------------------------------------------
P_SMTP=$(free_port) P_SUB=$(free_port) P_SINK=$(free_port)
P_MILTER=$(free_port) P_NULL=$(free_port)
P_NONE_SMTP=$(free_port) P_NULL_SMTP=$(free_port)
declare -A PORT=([none]=$P_NONE_SMTP [null]=$P_NULL_SMTP [warden]=$P_SMTP)

W=$T/warden
mkdir -p "$W"
cp -r rules "$W/rules"		# the shipped rules, byte for byte
cat >"$W/warden.conf" <<EOF
milter = { socket = "inet:$P_MILTER@127.0.0.1"; };
daemon = { user = "nobody"; log = "stderr"; stats_interval = 0; };
rules = { files = [ "rules/*.rules" ]; };
store = { backend = "memory"; };
EOF
chmod -R a+rX "$W"
"$BIN" check -c "$W/warden.conf" >"$T/check.out" 2>&1 ||
    die "warden check failed: $(tail -5 "$T/check.out")"
sed -n '/^postfix main.cf/,/^sendmail/p' "$T/check.out" |
    sed -n 's/^ *\(milter_[a-z_]*_macros = .*\)$/\1/p' >"$T/macros.cf"

(cg_join warden && exec "$BIN" run -c "$W/warden.conf") >"$T/warden.log" 2>&1 &
WARDEN_PID=$!
(cg_join null && exec "$NULLM" "$P_NULL") >"$T/null.log" 2>&1 &
NULL_PID=$!
sink_start_count "$T/sink" "$P_SINK" || die "smtp-sink does not listen"
wait_listening "$P_MILTER" 10 || die "warden does not listen: $(tail -3 "$T/warden.log")"
wait_listening "$P_NULL" 10 || die "nullmilter does not listen: $(tail -3 "$T/null.log")"

PF_SMTP=$P_SMTP PF_SUB=$P_SUB PF_SINK=$P_SINK PF_MILTER=$P_MILTER PF_BLOCK=
PF_MACROS=$T/macros.cf
PF_RELAY_DOMAINS="example.com example.net"
PF_RELAY_RCPTS="@example.com ok
@example.net ok"
pf_setup "$T/pf" || die "pf_setup failed"
pf_add_smtpd "$P_NONE_SMTP" none "smtpd_milters=" || die "master.cf"
pf_add_smtpd "$P_NULL_SMTP" null "smtpd_milters=inet:127.0.0.1:$P_NULL" ||
    die "master.cf"
# The master and everything it forks are counted in the postfix cgroup.
(cg_join postfix && pf_start) || die "postfix did not start"
wait_listening "$P_NONE_SMTP" 10 && wait_listening "$P_NULL_SMTP" 10 ||
    die "postfix listeners did not open"
MASTER=$(pf_master_pid)

say "# postfix_bench: nproc=$(nproc) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\""
say "# postfix $(postconf -d -h mail_version 2>/dev/null), cpu method $CG_METHOD, rounds $ROUNDS, concurrency $CONCS, ~${SECS}s a run, temp $T"

# --- one run ------------------------------------------------------------
SENT=0		# messages accepted so far, all runs (smtp-sink's count must follow)
now_ns() { date +%s%N; }
sample() { python3 "$T/sample.py" "$CG_ROOT" "$MASTER" "$WARDEN_PID" "$NULL_PID"; }

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

# perf_start/perf_stop WHO: when PERF_NOW is set, profile WHO's milter
# during smtp-source (the perf process is stopped by its PID).
PERF_NOW=
perf_start() {
	local pid
	[ -n "$PERF_NOW" ] || return 0
	case $1 in warden) pid=$WARDEN_PID ;; null) pid=$NULL_PID ;; *) return 0 ;; esac
	perf record -q -F 2999 -g -p "$pid" -o "$T/perf.$1.data" \
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

# run CONTENDER CONC N: sets R_WALL_NS R_E2E_NS R_CPU (6 numbers, µs) R_OK
run() {
	local who=$1 conc=$2 n=$3 t0 t1 t2 rc before after got
	drained || say "# warning: queue not drained before $who c=$conc"
	before=$(sample)
	perf_start "$who"
	t0=$(now_ns)
	# Bounded: a wedged Postfix must not hang the bench.
	timeout $((SECS * 20 + 60)) \
	    smtp-source -4 -s "$conc" -m "$n" -M client.example.net \
	    -f bench@example.net -t rcpt@example.com \
	    "127.0.0.1:${PORT[$who]}" >"$T/source.out" 2>&1
	rc=$?
	t1=$(now_ns)
	perf_stop "$who"
	SENT=$((SENT + n))
	drained
	t2=$(now_ns)
	after=$(sample)
	got=$(sink_count "$T/sink")
	R_OK=1
	if [ "$rc" -ne 0 ] || [ "$got" -ne "$SENT" ]; then
		R_OK=0
		say "# FAILED: $who c=$conc n=$n: smtp-source exit $rc, sink has $got of $SENT: $(head -c 300 "$T/source.out")"
		SENT=$got
	fi
	R_WALL_NS=$((t1 - t0)) R_E2E_NS=$((t2 - t0))
	R_CPU=$(paste -d' ' <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after") |
	    awk '{ printf "%s%d", (NR > 1 ? " " : ""), ($1 < 0 || $2 < 0) ? -1 : $2 - $1 }')
}

# --- warm-up and calibration ----------------------------------------------
# Every contender once per concurrency: Postfix spawns its smtpd pool,
# the milters their threads, warden's store fills. Then one more null
# run; the fastest of these four sets the message count per concurrency
# (noise only slows runs down: the fastest is the best estimate).
declare -A NMSG
for c in $CONCS; do
	best=0
	for who in $CONTENDERS null; do
		n=$((c < 10 ? 200 : 30 * c))
		run "$who" "$c" "$n"
		[ "$R_OK" = 1 ] || die "warm-up failed ($who, c=$c); see above"
		rate=$((n * 1000000000 / R_WALL_NS))
		((rate > best)) && best=$rate
	done
	n=$((best * SECS))
	((n < 100)) && n=100
	((n > 50000)) && n=50000
	NMSG[$c]=$n
	say "# calibration c=$c: best warm-up $best msg/s -> $n messages a run"
done

# --- rounds -----------------------------------------------------------------
RUNS=$OUTDIR/postfix-runs.tsv
printf 'round\tcontender\tconcurrency\tmessages\twall_s\tmsg_per_s\te2e_msg_per_s\tpostfix_cpu_ms\tmilter_cpu_ms\tpostfix_cpu_ms_proc\tmilter_cpu_ms_proc\tok\n' >"$RUNS"
order=($CONTENDERS)
lost=0
for ((r = 1; r <= ROUNDS; r++)); do
	for c in $CONCS; do
		for ((k = 0; k < ${#order[@]}; k++)); do
			who=${order[$(((k + r - 1) % ${#order[@]}))]}
			run "$who" "$c" "${NMSG[$c]}"
			[ "$R_OK" = 1 ] || lost=1
			read -r cg_pf cg_w cg_n pr_pf pr_w pr_n <<<"$R_CPU"
			case $who in
			warden) cg_m=$cg_w pr_m=$pr_w ;;
			null) cg_m=$cg_n pr_m=$pr_n ;;
			*) cg_m=0 pr_m=0 ;;
			esac
			if [ "$CG_METHOD" != cgroup ]; then
				cg_pf=$pr_pf cg_m=$pr_m
			fi
			awk -v r="$r" -v who="$who" -v c="$c" -v n="${NMSG[$c]}" \
			    -v w="$R_WALL_NS" -v e="$R_E2E_NS" -v pf="$cg_pf" \
			    -v m="$cg_m" -v ppf="$pr_pf" -v pm="$pr_m" -v ok="$R_OK" \
			    'BEGIN { printf "%d\t%s\t%d\t%d\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\n",
			    r, who, c, n, w / 1e9, n * 1e9 / w, n * 1e9 / e,
			    pf / 1e3, m / 1e3, ppf / 1e3, pm / 1e3, ok }' >>"$RUNS"
			tail -n 1 "$RUNS" | awk -F'\t' '{ printf "# round %s %-6s c=%-3s %6d msgs %7.1f msg/s  cpu ms/msg postfix %.3f milter %.3f\n",
			    $1, $2, $3, $4, $6, $8 / $4, $9 / $4 }'
		done
	done
done

if [ -n "${PFB_PERF:-}" ] && command -v perf >/dev/null; then
	PERF_NOW=1
	for who in null warden; do
		run "$who" "${CONCS##* }" "${NMSG[${CONCS##* }]}"
		say "# perf profile of $who: $OUTDIR/postfix-perf-$who.txt"
	done
	PERF_NOW=
fi

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
for m in warden null; do
	if [ "$m" = warden ]; then
		pid=$WARDEN_PID port=$P_MILTER
	else
		pid=$NULL_PID port=$P_NULL
	fi
	out=$(timeout 120 python3 "$T/hold.py" "$port" "$pid" "$SESSIONS" 2>&1)
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
python3 - "$RUNS" "$SESS" "$OUTDIR/postfix.tsv" "$LIMIT_THR" <<'EOF'
import statistics as st, sys
runs, sess, out, lthr = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [l.rstrip("\n").split("\t") for l in open(runs)][1:]
by, rnd = {}, {}
for r in rows:
    if r[11] != "1":
        continue
    n = int(r[3])
    x = (float(r[5]), float(r[6]), float(r[7]) / n, float(r[8]) / n)
    by.setdefault((r[1], int(r[2])), []).append(x)
    rnd[(r[1], int(r[2]), int(r[0]))] = x
concs = sorted({c for _, c in by})
med = {k: (st.median(x[0] for x in v), st.median(x[2] for x in v),
           st.median(x[3] for x in v), st.median(x[2] + x[3] for x in v))
       for k, v in by.items()}
hdr = ["contender", "concurrency", "runs", "msg_s_min", "msg_s_median",
       "msg_s_max", "e2e_msg_s_median", "cpu_ms_msg_postfix",
       "cpu_ms_msg_milter", "cpu_ms_msg_total", "msg_s_vs_null",
       "msg_s_target", "cpu_ms_vs_null", "cpu_target",
       "paired_msg_s_ratio", "paired_cpu_ms_delta", "milter_cpu_ms_delta"]
lines = []
for c in concs:
    for who in ("none", "null", "warden"):
        v = by.get((who, c))
        if not v:
            continue
        m = med[(who, c)]
        rate = [x[0] for x in v]
        row = [who, c, len(v), "%.1f" % min(rate), "%.1f" % m[0],
               "%.1f" % max(rate), "%.1f" % st.median(x[1] for x in v),
               "%.3f" % m[1], "%.3f" % m[2], "%.3f" % m[3]]
        nm = med.get(("null", c))
        if who == "warden" and nm:
            ratio, delta = m[0] / nm[0], m[3] - nm[3]
            # Against the same round's null run (minutes apart at most).
            pr = []
            for k in rnd:
                nk = ("null", c, k[2])
                if k[:2] == ("warden", c) and nk in rnd:
                    w, n = rnd[k], rnd[nk]
                    pr.append((w[0] / n[0], w[2] + w[3] - n[2] - n[3]))
            row += ["%.3f" % ratio, "PASS" if ratio >= 0.97 else "BELOW",
                    "%+.3f" % delta, "PASS" if delta <= 0.10 else "BELOW",
                    "%.3f" % st.median(p[0] for p in pr) if pr else "",
                    "%+.3f" % st.median(p[1] for p in pr) if pr else "",
                    "%+.3f" % (m[2] - nm[2])]
        else:
            row += [""] * 7
        lines.append(row)
with open(out, "w") as f:
    f.write("\t".join(hdr) + "\n")
    for row in lines:
        f.write("\t".join(str(x) for x in row) + "\n")

print()
print("Postfix + milter, one message per SMTP session: msg/s min/median/max,"
      " e2e = until smtp-sink has all;")
print("CPU = median ms per message of the Postfix tree, the milter, both")
print("%-7s %4s %4s %21s %6s %7s %7s %7s" % (
    "who", "conc", "runs", "msg/s min/med/max", "e2e/s", "postfix",
    "milter", "total"))
for row in lines:
    print("%-7s %4s %4s %21s %6s %7s %7s %7s" % (
        row[0], row[1], row[2], "%s/%s/%s" % (row[3], row[4], row[5]),
        row[6], row[7], row[8], row[9]))
print()
print("Targets, warden vs null (medians; paired = median over rounds of"
      " warden vs the same round's null)")
for row in lines:
    if row[10]:
        print("c=%-3s msg/s x%s (>= 0.97: %s; paired x%s)  CPU total %s ms"
              " (<= +0.10: %s; paired %s; milter alone %s)" % (
                  row[1], row[10], row[11], row[14], row[12], row[13],
                  row[15], row[16]))
print()
print("Held milter sessions (VmRSS kB, Threads): idle -> open -> closed")
for l in list(open(sess))[1:]:
    f = l.rstrip("\n").split("\t")
    print("%-7s %s sessions: RSS %s -> %s -> %s kB = %s kB/session "
          "(<= 2: %s); threads %s -> %s -> %s (<= %d + 0 busy: %s); "
          "again: %s -> %s kB" % (
              f[0], f[1], f[2], f[3], f[5], f[4], f[9], f[6], f[7], f[8],
              lthr, f[10], f[11], f[12]))
EOF
say "# results: $OUTDIR/postfix.tsv, postfix-runs.tsv, postfix-sessions.tsv"
[ "$lost" -eq 0 ]
