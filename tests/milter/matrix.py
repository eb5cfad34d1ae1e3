#!/usr/bin/env python3
"""matrix.py - issue #4's "every action at every stage, macros present
and absent", through the real binary (tests/milter/matrix.sh runs it).

  matrix.py gen DIR                 write DIR/matrix.rules, DIR/owners.map
  matrix.py check BIN DIR USER      every (stage, action) pair: the allowed
                                    ones load, each other one is refused
                                    by `warden check` with FILE:LINE
  matrix.py wire PORT LOG enforce   every allowed pair, one session each:
  matrix.py wire PORT LOG dry-run   the answer of every stage, the eom
                                    modifications, the decision lines
  matrix.py macros PORT LOG         each macro-fed condition with its
                                    macro present, absent, malformed
  matrix.py stale PORT LOG          an unknown command after a refused
                                    MAIL/DATA (a known bug: TODO)

Which action is allowed where is written out below (ALLOWED), read from
DESIGN.md §3 and src/stage.c/rules.c/reply.c, and `check` compares it
with what the binary accepts for all stage x action pairs, so the table
and the code cannot drift apart unnoticed. What each stage must answer
is computed by a small model of DESIGN.md §3, §4, §4a (expect_session),
not taken from warden. One rule file holds every pair, each rule keyed
on its own client address, so one warden instance serves the matrix.
Prints "PASS" and exits 0, or "FAIL: ..." lines and exits 1.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

# No __pycache__ in the source tree for the import below.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import milter_raw as mr  # noqa: E402

STAGES = ["connect", "helo", "envfrom", "envrcpt", "data", "header", "eom",
          "unknown"]
MSG = {"envfrom", "envrcpt", "data", "header", "eom"}

# (variant, action, reply template or None). Replies use only variables
# every stage has (reply.c reply_var_stages).
VARIANTS = [
    ("accept", "accept", None),
    ("continue", "continue", None),
    ("log", "log", None),
    ("reject", "reject", "550 5.7.1 Refused by %{rule} for %{client_ip}"),
    ("reject-default", "reject", None),
    ("tempfail", "tempfail", "451 4.7.1 Later, %{rule} for %{client_ip}"),
    ("tempfail-default", "tempfail", None),
    ("tempfail-421", "tempfail", "421 4.7.0 Closing, %{rule}"),
    ("discard", "discard", None),
    ("quarantine", "quarantine", None),
    ("tag", "tag", None),
]
# reply.c reply_default: the text of a reject/tempfail without reply.
DEFAULT_REPLY = {"reject": "550 5.7.1 Message rejected by policy",
                 "tempfail": "450 4.7.1 Try again later"}
ACTIONS = ["accept", "continue", "log", "reject", "tempfail", "discard",
           "quarantine", "tag"]

# DESIGN.md §3: discard envfrom..eom, quarantine flagged in a message and
# applied at eom; stage.c: tag anywhere a message may follow (not at
# unknown); rules.c/reply.c: reject at unknown is refused (Postfix
# answers unknown commands itself and honours only a 4xx there).
ALLOWED = {a: set(STAGES) for a in ACTIONS}
ALLOWED["discard"] = set(MSG)
ALLOWED["quarantine"] = set(MSG)
ALLOWED["tag"] = set(STAGES) - {"unknown"}
ALLOWED["reject"] = set(STAGES) - {"unknown"}

HELO = "matrix.example"
FROM = "m@example.org"
RCPT = "r@example.net"
CPORT = 12345


def allowed(stage, action):
    return stage in ALLOWED[action]


def pairs():
    """The allowed (stage, variant) pairs, in a fixed order."""
    for si, st in enumerate(STAGES):
        for vi, (var, act, rep) in enumerate(VARIANTS):
            if allowed(st, act):
                yield si, st, vi, var, act, rep


def rule_name(st, var, dry):
    return "mx-%s-%s%s" % (st, var, "-dry" if dry else "")


def rule_ip(si, vi, dry):
    return "10.%d.%d.%d" % (101 if dry else 100, si, vi + 1)


def rule_text(name, st, act, rep, cond, dry):
    out = ['  { name = "%s"; stage = "%s";' % (name, st),
           "    match = { %s };" % cond,
           '    action = "%s";' % act]
    if rep is not None:
        out.append('    reply = "%s";' % rep)
    if act == "tag":
        out.append('    add_header = "X-Matrix: %{rule} %{client_ip}";')
    if dry:
        out.append('    mode = "dry-run";')
    out[-1] += " }"
    return "\n".join(out)


# --- macros present and absent --------------------------------------------

# (case, stage, condition, [(variant, session macros, want match)]).
# Each case has its own /24 in 10.102.0.0/16; variant k uses .k+1.
# Session macros: port/daemon/host (connect), tls/bits (helo), user/mech
# /qid (envfrom), mailer (envrcpt); missing keys are not sent at all.
MACRO_CASES = [
    ("port", "connect", "port = [587];",
     [("present", {"port": "587"}, True), ("absent", {}, False),
      ("malformed", {"port": "587x"}, False),
      ("out-of-range", {"port": "70000"}, False)]),
    ("daemon", "connect", 'daemon = "submission";',
     [("present", {"daemon": "submission"}, True), ("absent", {}, False)]),
    # Postfix says "unknown", Sendmail "[ip]" when the name is not known.
    ("client-name", "connect", 'client_name = "*.example.net";',
     [("present", {"host": "mx.example.net"}, True),
      ("postfix-unknown", {"host": "unknown"}, False),
      ("sendmail-literal", {"host": "[10.102.2.3]"}, False)]),
    ("tls", "helo", "tls = true;",
     [("present", {"tls": "TLSv1.3", "bits": "256"}, True),
      ("absent", {}, False), ("empty", {"tls": ""}, False)]),
    ("tls-version", "helo", 'tls_version = "TLSv1.3";',
     [("present", {"tls": "TLSv1.3", "bits": "256"}, True),
      ("absent", {}, False)]),
    # README: cipher_bits_below holds without TLS ("no TLS = 0").
    ("cipher-bits", "helo", "cipher_bits_below = 128;",
     [("weak", {"tls": "TLSv1.2", "bits": "56"}, True),
      ("strong", {"tls": "TLSv1.3", "bits": "256"}, False),
      ("no-tls", {}, True),
      ("malformed", {"tls": "TLSv1.3", "bits": "256x"}, True)]),
    ("auth", "envfrom", "auth = true;",
     [("present", {"user": "alice", "mech": "PLAIN"}, True),
      ("absent", {}, False), ("empty", {"user": "", "mech": "PLAIN"},
                              False)]),
    # engine.c: an absent value never matches a glob such as "*".
    ("auth-user", "envfrom", 'auth_user = "*";',
     [("present", {"user": "alice", "mech": "PLAIN"}, True),
      ("absent", {}, False)]),
    ("auth-mech", "envfrom", 'auth_mech = "PLAIN";',
     [("present", {"user": "alice", "mech": "PLAIN"}, True),
      ("absent", {}, False)]),
    ("sender-owned", "envfrom", "sender_owned = true;",
     [("present", {"user": "alice", "mech": "PLAIN"}, True),
      ("absent", {}, False)]),
    ("rcpt-rejected", "envrcpt", "rcpt_rejected = true;",
     [("present", {"mailer": "error"}, True), ("absent", {}, False),
      ("other", {"mailer": "smtp"}, False)]),
    ("bad-rcpt-count", "envrcpt", "bad_rcpt_count_over = 0;",
     [("present", {"mailer": "error"}, True), ("absent", {}, False)]),
    # The queue id (macro i): decision lines start with it, %{queue_id}
    # expands to it; without it NOQUEUE and "".
    ("queue-id", "envfrom", "",
     [("present", {"qid": "QMACQID"}, True), ("absent", {}, True)]),
]
MACRO_REPLY = {
    "queue-id": "550 5.7.1 Queue id <%{queue_id}> by %{rule}",
}


def macro_ip(ci, vi):
    return "10.102.%d.%d" % (ci, vi + 1)


def gen(d):
    rules = []
    for si, st, vi, var, act, rep in pairs():
        for dry in (False, True):
            rules.append(rule_text(rule_name(st, var, dry), st, act, rep,
                                   'client = ["%s"];' % rule_ip(si, vi, dry),
                                   dry))
    # Every eom of a matrix session gets this tag when the eom rules are
    # evaluated at all: it shows "nothing later evaluated" on the wire.
    rules.append(rule_text("mx-canary", "eom", "tag", None,
                           'client = ["10.100.0.0/15"];', False)
                 .replace("X-Matrix", "X-Canary"))
    for ci, (case, st, cond, _) in enumerate(MACRO_CASES):
        r = rule_text("mm-" + case, st, "reject",
                      MACRO_REPLY.get(case, "550 5.7.1 Macro case %{rule}"),
                      'client = ["10.102.%d.0/24"]; %s' % (ci, cond), False)
        if case == "sender-owned":
            r = r.replace('action =', 'owner_map = "file:owners.map";\n'
                          '    action =')
        rules.append(r)
    # stale(): a refused MAIL or DATA, then an unknown command
    rules.append(rule_text("ms-refuse-mail", "envfrom", "reject",
                           "550 5.7.1 Refused", 'client = ["10.103.0.0/24"]; '
                           'sender = "refused@example.org";', False))
    rules.append(rule_text("ms-refuse-data", "data", "reject",
                           "550 5.7.1 Refused", 'client = ["10.103.0.0/24"]; '
                           'sender = "refused-data@example.org";', False))
    # A discarded RCPT does not end the transaction (libmilter stays in
    # it): the next RCPT is still judged with its sender and queue id.
    rules.append(rule_text("ms-discard-rcpt", "envrcpt", "discard", None,
                           'client = ["10.103.0.3"]; '
                           'rcpt = "discard@example.org";', False))
    rules.append(rule_text("ms-log-rcpt", "envrcpt", "log", None,
                           'client = ["10.103.0.3"];', False))
    rules.append(rule_text("ms-unknown", "unknown", "tempfail",
                           "450 4.7.1 No %{rule}",
                           'client = ["10.103.0.0/24"];', False))
    with open(os.path.join(d, "matrix.rules"), "w") as f:
        f.write("# generated by tests/milter/matrix.py gen\nrules = (\n" +
                ",\n".join(rules) + "\n);\n")
    with open(os.path.join(d, "owners.map"), "w") as f:
        f.write("alice @example.org\n")
    return 0


# --- check: the table against the binary ---------------------------------

def check(binary, d, user):
    """One rule file per pair not allowed: `warden check` exits 1 and
    names FILE:LINE of the action setting, the action and the stage.
    The allowed pairs all sit in matrix.rules: it checks clean."""
    bad = os.path.join(d, "bad")
    os.makedirs(bad, exist_ok=True)
    for st in STAGES:
        for act in ACTIONS:
            if allowed(st, act):
                continue
            base = os.path.join(bad, "%s-%s" % (st, act))
            lines = ["rules = (", "  {", '    name = "bad";',
                     '    stage = "%s";' % st,
                     '    action = "%s";' % act]
            if act == "tag":
                lines.append('    add_header = "X-Bad: %{rule}";')
            lines += ["  }", ");"]
            with open(base + ".rules", "w") as f:
                f.write("\n".join(lines) + "\n")
            conf(base + ".conf", base + ".rules", user)
            rc, err = run_check(binary, base + ".conf")
            where = "%s.rules:5: action: " % base
            if rc != 1:
                FAILS.append("check %s at %s: exit %d, want 1" %
                             (act, st, rc))
            hit = [ln for ln in err.splitlines() if ln.startswith(where)]
            if not hit or act not in hit[0] or st not in hit[0]:
                FAILS.append("check %s at %s: no \"%s...\" naming both; "
                             "got %r" % (act, st, where, err[:300]))
            # reject at unknown with a 5xx reply: refused as well
            if act == "reject":
                with open(base + ".rules", "w") as f:
                    f.write("\n".join(lines[:-2] + [
                        '    reply = "550 5.7.1 No";'] + lines[-2:]) + "\n")
                rc, err = run_check(binary, base + ".conf")
                where = "%s.rules:6: reply: " % base
                hit = [ln for ln in err.splitlines() if ln.startswith(where)]
                if rc != 1 or not hit or st not in hit[0]:
                    FAILS.append("check reject with 550 reply at %s: exit "
                                 "%d, %r" % (st, rc, err[:300]))
    conf(os.path.join(bad, "ok.conf"), os.path.join(d, "matrix.rules"), user)
    rc, err = run_check(binary, os.path.join(bad, "ok.conf"))
    if rc != 0 or re.search(r":\d+: (?!warning)", err):
        FAILS.append("check of the allowed matrix: exit %d, %r" %
                     (rc, err[:600]))
    return 0


def conf(path, rules, user):
    with open(path, "w") as f:
        f.write('milter = { socket = "inet:9@127.0.0.1"; };\n'
                'daemon = { log = "stderr"; user = "%s"; };\n'
                'rules = { files = [ "%s" ]; };\n' % (user, rules))


def run_check(binary, path):
    p = subprocess.run([binary, "check", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stderr.decode("utf-8", "replace")


# --- the MTA side ---------------------------------------------------------

FAILS = []
FLOCK = threading.Lock()


def fail(msg):
    with FLOCK:
        FAILS.append(msg)


class MClient(mr.Client):
    """milter_raw's client plus the message stages."""

    def __init__(self, port, timeout=10.0):
        super().__init__(port, timeout)
        # A macro packet and its command go as two writes: without this
        # Nagle holds the second until the filter's delayed ACK (~40 ms
        # a step, DESIGN.md §4).
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data(self, macros=()):
        self.macro(b"T", macros)
        self.send(b"T")
        return self.reply("NR_DATA")

    def header(self, name, value):
        self.send(b"L", name + b"\0" + value + b"\0")
        return self.reply("NR_HDR")

    def eoh(self):
        self.send(b"N")
        return self.reply("NR_EOH")

    def eom(self, macros=()):
        self.macro(b"E", macros)
        self.send(b"E")
        return self.reply()


# One session: connect, HELO, an unknown command, two transactions on the
# connection (MAIL, RCPT, DATA, one header, end of headers, end of data).
# The client acts as an MTA does with the answers: a MAIL, DATA or header
# answered with anything but continue, or an accepted or discarded
# RCPT, ends the transaction (abort, no more of its steps), as does the
# refusal of its only RCPT; answers at connect, HELO and the unknown
# command do not stop it, so the rest of the session shows what warden
# answers after them (421 stickiness, accept at connect).
EVENTS = (["connect", "helo", "unknown"] +
          ["%s%d" % (e, t) for t in (1, 2)
           for e in ("envfrom", "envrcpt", "data", "header", "eoh", "eom")])


def ev_stage(ev):
    s = ev.rstrip("12")
    return None if s == "eoh" else s


def ends_message(stage, code):
    # libmilter, too, takes no more of a message after such an answer.
    return stage in ("envfrom", "envrcpt", "data", "header") and code != "c"


def qid_of(n, t):
    return "QM%dT%d" % (n, t)


def drive(port, ip, n):
    """Runs the session; returns [(event, Reply or None)]."""
    c = MClient(port)
    c.negotiate()
    out = []
    skip = 0

    def want(bit):
        return not c.prot & mr.SMFIP[bit]

    try:
        for ev in EVENTS:
            st = ev_stage(ev) or "eoh"
            t = int(ev[-1]) if ev[-1].isdigit() else 0
            if t and t == skip:
                continue
            q = qid_of(n, t).encode()
            if st == "connect":
                r = c.connect(b"client.example.net", ip.encode(), CPORT,
                              [(b"{daemon_port}", b"25")])
            elif st == "helo":
                r = c.helo(HELO.encode())
            elif st == "unknown":
                r = c.unknown(b"EXPN root") if want("NOUNKNOWN") else None
            elif st == "envfrom":
                r = c.mail([b"<" + FROM.encode() + b">"], [(b"i", q)])
            elif st == "envrcpt":
                r = c.rcpt([b"<" + RCPT.encode() + b">"],
                           [(b"{rcpt_mailer}", b"smtp")])
            elif st == "data":
                r = c.data([(b"i", q)])
            elif st == "header":
                r = c.header(b"Subject", b"matrix") if want("NOHDRS") \
                    else None
            elif st == "eoh":
                r = c.eoh() if want("NOEOH") else None
            else:
                r = c.eom([(b"i", q)])
            out.append((ev, r))
            if r is not None and ends_message(st, r.code):
                c.send(b"A")    # libmilter answers no abort
                out.append(("abort%d" % t, None))
                skip = t
    finally:
        c.quit()
    return out


def expect_session(st, var, act, rep, dry, ip, n):
    """What warden must answer at each event and log, by DESIGN.md §3,
    §4, §4a: [(event, code, text, eom modifications)], [decision lines].
    The events are those drive() sends to a warden answering so."""
    name = rule_name(st, var, dry)
    text = None
    if act in ("reject", "tempfail"):
        text = (rep or DEFAULT_REPLY[act]).replace("%{rule}", name) \
            .replace("%{client_ip}", ip)
    S = {"conn_acc": False, "msg_acc": False, "quar": False,
         "closed": None, "tags_conn": [], "tags_msg": [], "helo": False,
         "msg": False, "t": 0}
    wire, log = [], []

    def line(action, stage, reply=None, rule=name, would=False):
        q = qid_of(n, S["t"]) if S["msg"] else "NOQUEUE"
        s = "%s: %s%s rule=%s stage=%s client=[%s]:%d port=25" % (
            q, "dryrun would=" if would else "", action, rule, stage, ip,
            CPORT)
        if S["helo"]:
            s += " helo=<%s>" % HELO
        if S["msg"]:
            s += " from=<%s>" % FROM
        if stage == "envrcpt":
            s += " to=<%s>" % RCPT
        if stage == "unknown":
            s += " command=EXPN"
        if reply is not None:
            s += ' reply="%s"' % reply
        log.append(s)

    def reset_msg():
        S["msg_acc"] = S["quar"] = False
        S["tags_msg"] = []

    def answer(stage):
        """The engine's verdict at stage: (code, eom modifications)."""
        code, terminal = "c", False
        if S["conn_acc"] or (S["msg_acc"] and stage in MSG):
            terminal = True     # accepted: no rule evaluated
        elif stage == st and dry:
            line(act, stage, text, would=True)
        elif stage == st:
            terminal = act in ("accept", "reject", "tempfail", "discard",
                               "quarantine")
            if act != "continue":   # DESIGN.md §5: no line for continue
                line(act, stage, text)
            if act == "accept":
                code = "a"
                if st in ("connect", "helo"):
                    S["conn_acc"] = True
                elif st in MSG:
                    S["msg_acc"] = True
            elif act in ("reject", "tempfail"):
                code = "y"
                if text.startswith("421 "):
                    S["closed"] = text
            elif act == "discard":
                code = "d"
            elif act == "quarantine":
                S["quar"] = True
            elif act == "tag":
                hdr = ("X-Matrix", "%s %s" % (name, ip))
                S["tags_conn" if st in ("connect", "helo")
                  else "tags_msg"].append(hdr)
        mods = []
        if stage == "eom":
            if not terminal:
                # the canary, last in the file, tags every evaluated eom
                S["tags_msg"].append(("X-Canary", "mx-canary %s" % ip))
                line("tag", "eom", rule="mx-canary")
            if code in ("c", "a"):
                mods = [("h", b"%s\0%s\0" % (k.encode(), v.encode()))
                        for k, v in S["tags_conn"] + S["tags_msg"]]
                if S["quar"]:
                    mods.append(("q", name.encode() + b"\0"))
        return code, mods

    skip = 0
    for ev in EVENTS:
        stage = ev_stage(ev)
        if ev[-1] in "12" and int(ev[-1]) == skip:
            continue
        if stage == "envfrom":
            # a new MAIL: the last message's state is gone (session.c)
            S["t"] += 1
            S["msg"] = True
            reset_msg()
        if stage == "helo":
            S["helo"] = True
        if stage is None:
            wire.append((ev, "c", None, []))
            continue
        if S["closed"] is not None:
            # DESIGN.md §4a: once closed, every later callback the same
            line("tempfail", stage, S["closed"])
            code, mods, ytext = "y", [], S["closed"]
        else:
            code, mods = answer(stage)
            ytext = text if code == "y" else None
        wire.append((ev, code, ytext, mods))
        if stage == "eom":
            S["msg"] = False
            reset_msg()
        if ends_message(stage, code):
            wire.append(("abort%d" % S["t"], None, None, []))
            skip, S["msg"] = S["t"], False
            reset_msg()
    return wire, log


def compare(label, got, want):
    gev = [ev for ev, r in got if not (ev.startswith("eoh") and r is None)]
    wev = [w[0] for w in want]
    if gev != wev:
        fail("%s steps %s, want %s" % (label, " ".join(gev),
                                       " ".join(wev)))
    byev = dict(got)
    for ev, code, text, mods in want:
        r = byev.get(ev)
        if ev.startswith("abort") or (ev.startswith("eoh") and r is None):
            continue
        if r is None:
            fail("%s %s: not sent (negotiated away), want '%s'" %
                 (label, ev, code))
            continue
        if r.code != code:
            fail("%s %s: reply '%s' %r, want '%s'" % (label, ev, r.code,
                                                      r.data, code))
            continue
        if text is not None and r.data != text.encode():
            fail("%s %s: text %r, want %r" % (label, ev, r.data, text))
        if r.mods != mods:
            fail("%s %s: modifications %r, want %r" % (label, ev, r.mods,
                                                       mods))


def log_lines(path, ips):
    """Decision lines per client address (without "warden[PID]: ")."""
    out = {ip: [] for ip in ips}
    pat = re.compile(r"^warden\[\d+\]: (.*) client=\[([0-9.]+)\]:")
    with open(path, "rb") as f:
        for raw in f:
            ln = raw.decode("ascii", "replace").rstrip("\n")
            m = pat.match(ln)
            if m and m.group(2) in out:
                out[m.group(2)].append(ln.split(": ", 1)[1])
            if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", ln):
                fail("log: raw control byte in %r" % ln[:200])
    return out


def check_logs(path, want):
    """want: {ip: [lines]}. The last line of a session is written before
    its reply left, but stderr may lag: wait (bounded) for the count."""
    deadline = time.time() + 20
    while True:
        got = log_lines(path, want)
        if all(len(got[ip]) >= len(w) for ip, w in want.items()) or \
                time.time() > deadline:
            break
        time.sleep(0.1)
    for ip, w in want.items():
        if got[ip] != w:
            fail("log for %s:\n      got:  %s\n      want: %s" %
                 (ip, "\n            ".join(got[ip]) or "(none)",
                  "\n            ".join(w) or "(none)"))


def parallel(jobs, threads=4):
    """Runs the callables in jobs on a few threads; errors become FAILs.
    After a timeout the rest is not started: a hung filter would
    otherwise cost every remaining session its full read timeout."""
    lock = threading.Lock()
    todo = list(jobs)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                job = todo.pop(0)
            try:
                job()
            except Exception as e:  # a dead filter, a protocol error
                fail("%s: %s (%s)" % (getattr(job, "label", "?"),
                                      type(e).__name__, e))
                if isinstance(e, socket.timeout):
                    with lock:
                        if todo:
                            fail("%d sessions not run after the timeout" %
                                 len(todo))
                        todo.clear()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def wire(port, logpath, mode):
    dry = mode == "dry-run"
    wantlog = {}
    jobs = []
    for n, (si, st, vi, var, act, rep) in enumerate(pairs()):
        ip = rule_ip(si, vi, dry)
        w, lg = expect_session(st, var, act, rep, dry, ip, n)
        wantlog[ip] = lg

        def job(st=st, var=var, ip=ip, n=n, w=w):
            compare("%s at %s%s:" % (var, st, " (dry-run)" if dry else ""),
                    drive(port, ip, n), w)
        job.label = "%s at %s" % (var, st)
        jobs.append(job)
    parallel(jobs)
    check_logs(logpath, wantlog)
    return 0


def macros(port, logpath):
    wantlog = {}
    jobs = []
    for ci, (case, st, _, variants) in enumerate(MACRO_CASES):
        for vi, (var, m, match) in enumerate(variants):
            ip = macro_ip(ci, vi)
            jobs.append(macro_job(port, case, st, var, m, match, ip,
                                  wantlog))
    parallel(jobs)
    check_logs(logpath, wantlog)
    return 0


def macro_job(port, case, st, var, m, match, ip, wantlog):
    name = "mm-" + case
    qid = m.get("qid", "") if case == "queue-id" else "QMAC%s" % ip.replace(
        ".", "")
    text = MACRO_REPLY.get(case, "550 5.7.1 Macro case %{rule}") \
        .replace("%{rule}", name).replace("%{queue_id}", qid)
    order = ["connect", "helo", "envfrom", "envrcpt"]
    want = {ev: "c" for ev in order}
    if match:
        want[st] = "y"
        fields = " client=[%s]:%d" % (ip, CPORT)
        if "port" in m and m["port"].isdigit() and int(m["port"]) < 65536:
            fields += " port=%s" % m["port"]
        if order.index(st) >= 1:
            fields += " helo=<%s>" % HELO
        if order.index(st) >= 2:
            fields += " from=<%s>" % FROM
        if st == "envrcpt":
            fields += " to=<%s>" % RCPT
        if order.index(st) >= 2 and m.get("user"):
            fields += " user=%s" % m["user"]
        wantlog[ip] = ["%s: reject rule=%s stage=%s%s reply=\"%s\"" %
                       (qid if order.index(st) >= 2 and qid else "NOQUEUE",
                        name, st, fields, text)]
    else:
        wantlog[ip] = []

    def job():
        label = "macro %s %s:" % (case, var)
        c = MClient(port)
        c.negotiate()
        got = []
        host = m.get("host", "client.example.net").encode()
        cm = [(b"{daemon_port}", m["port"].encode())] if "port" in m \
            else []
        if "daemon" in m:
            cm.append((b"{daemon_name}", m["daemon"].encode()))
        hm = [(b"{tls_version}", m["tls"].encode())] if "tls" in m else []
        if "bits" in m:
            hm.append((b"{cipher_bits}", m["bits"].encode()))
        fm = [(b"i", qid.encode())] if qid else []
        if "user" in m:
            fm.append((b"{auth_authen}", m["user"].encode()))
        if "mech" in m:
            fm.append((b"{auth_type}", m["mech"].encode()))
        rm = [(b"{rcpt_mailer}", m["mailer"].encode())] \
            if "mailer" in m else []
        steps = [
            lambda: c.connect(host, ip.encode(), CPORT, cm),
            lambda: c.helo(HELO.encode(), hm),
            lambda: c.mail([b"<" + FROM.encode() + b">"], fm),
            lambda: c.rcpt([b"<" + RCPT.encode() + b">"], rm)]
        try:
            # like an MTA: a refused MAIL or RCPT ends the transaction
            for ev, step in zip(order, steps):
                got.append((ev, step()))
                if got[-1][1].code != "c":
                    break
        finally:
            c.quit()
        gev = [ev for ev, _ in got]
        wev = order[:order.index(st) + 1] if match else order
        if gev != wev:
            fail("%s steps %s, want %s" % (label, gev, wev))
        for ev, r in got:
            if r.code != want[ev]:
                fail("%s %s: reply '%s' %r, want '%s'" % (label, ev, r.code,
                                                          r.data, want[ev]))
            elif r.code == "y" and r.data != text.encode():
                fail("%s %s: text %r, want %r" % (label, ev, r.data, text))
    job.label = "macro %s %s" % (case, var)
    return job


def stale(port, logpath):
    """After warden refuses a MAIL (or DATA), libmilter leaves the
    transaction and drops the MTA's abort, so xxfi_abort never runs. An
    unknown command then must not be logged with the ended transaction's
    queue id and sender (DESIGN.md §5: the queue id when known)."""
    wantlog = {}
    jobs = []
    for i, (sender, stop) in enumerate((("refused", "envfrom"),
                                        ("refused-data", "data"))):
        ip = "10.103.0.%d" % (i + 1)
        qid = "QSTALE%d" % (i + 1)
        wantlog[ip] = [
            '%s: reject rule=ms-refuse-%s stage=%s client=[%s]:%d '
            'helo=<%s> from=<%s@example.org> reply="550 5.7.1 Refused"' %
            (qid, "mail" if stop == "envfrom" else "data", stop, ip, CPORT,
             HELO, sender),
            'NOQUEUE: tempfail rule=ms-unknown stage=unknown client=[%s]:%d '
            'helo=<%s> command=EXPN reply="450 4.7.1 No ms-unknown"' %
            (ip, CPORT, HELO)]

        def job(ip=ip, qid=qid, sender=sender, stop=stop):
            c = MClient(port)
            c.negotiate()
            try:
                c.connect(b"client.example.net", ip.encode(), CPORT)
                c.helo(HELO.encode())
                r = c.mail([b"<%s@example.org>" % sender.encode()],
                           [(b"i", qid.encode())])
                if stop == "data":
                    c.rcpt([b"<" + RCPT.encode() + b">"])
                    r = c.data()
                if r.code != "y":
                    fail("%s: %s answered '%s', want 'y'" % (ip, stop,
                                                             r.code))
                c.send(b"A")    # RSET, as the MTA does
                r = c.unknown(b"EXPN root")
                if r.code != "y" or r.data != b"450 4.7.1 No ms-unknown":
                    fail("%s: unknown answered %r" % (ip, r))
            finally:
                c.quit()
        job.label = "stale " + stop
        jobs.append(job)
    ip, qid = "10.103.0.3", "QSTALE3"
    pre = '%s: %%s stage=envrcpt client=[%s]:%d helo=<%s> ' \
        'from=<kept@example.org> to=<%%s>' % (qid, ip, CPORT, HELO)
    wantlog[ip] = [pre % ("discard rule=ms-discard-rcpt",
                          "discard@example.org"),
                   pre % ("log rule=ms-log-rcpt", RCPT)]

    def job_discard():
        c = MClient(port)
        c.negotiate()
        try:
            c.connect(b"client.example.net", ip.encode(), CPORT)
            c.helo(HELO.encode())
            c.mail([b"<kept@example.org>"], [(b"i", qid.encode())])
            r = c.rcpt([b"<discard@example.org>"])
            if r.code != "d":
                fail("%s: rcpt answered '%s', want 'd'" % (ip, r.code))
            c.rcpt([b"<" + RCPT.encode() + b">"])
        finally:
            c.quit()
    job_discard.label = "stale discard at rcpt"
    jobs.append(job_discard)
    parallel(jobs)
    check_logs(logpath, wantlog)
    return 0


def main():
    a = sys.argv[1:]
    try:
        if len(a) == 2 and a[0] == "gen":
            return gen(a[1])
        if len(a) == 4 and a[0] == "check":
            check(a[1], a[2], a[3])
        elif len(a) == 4 and a[0] == "wire" and a[3] in ("enforce",
                                                          "dry-run"):
            wire(int(a[1]), a[2], a[3])
        elif len(a) == 3 and a[0] == "macros":
            macros(int(a[1]), a[2])
        elif len(a) == 3 and a[0] == "stale":
            stale(int(a[1]), a[2])
        else:
            sys.stderr.write(__doc__)
            return 2
    except Exception as e:
        FAILS.append("%s: %s" % (type(e).__name__, e))
    for f in FAILS:
        print("FAIL: " + f)
    if FAILS:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
