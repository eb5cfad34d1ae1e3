#!/usr/bin/env python3
"""milter_raw.py - a minimal MTA side of the milter protocol (version 6),
for what miltertest cannot do (tests/milter/run.sh uses it):

  * show the reply text of a 'y' (SMFIR_REPLYCODE) packet before EOM
    (miltertest only shows its length, with -v);
  * send values over ~1 KB (Debian 12's miltertest overflows a stack
    buffer at about 1,018 bytes per argument);
  * show the macro lists the filter asks for (smfi_setsymlist).

Usage: milter_raw.py PORT SCENARIO
Prints "PASS" and exits 0, or prints "FAIL: ..." lines and exits 1.
"""
import os
import socket
import struct
import sys

SMFI_VERSION = 6
ACTS_ALL = 0x1FF          # SMFI_CURR_ACTS, SETSYMLIST included
PROT_ALL = 0x1FFFFF       # SMFI_CURR_PROT: every SMFIP_* an MTA may offer
SMFIP = {
    "NOCONNECT": 0x1, "NOHELO": 0x2, "NOMAIL": 0x4, "NORCPT": 0x8,
    "NOBODY": 0x10, "NOHDRS": 0x20, "NOEOH": 0x40, "NR_HDR": 0x80,
    "NOUNKNOWN": 0x100, "NODATA": 0x200, "SKIP": 0x400, "RCPT_REJ": 0x800,
    "NR_CONN": 0x1000, "NR_HELO": 0x2000, "NR_MAIL": 0x4000,
    "NR_RCPT": 0x8000, "NR_DATA": 0x10000, "NR_UNKN": 0x20000,
    "NR_EOH": 0x40000, "NR_BODY": 0x80000, "HDR_LEADSPC": 0x100000,
}
# smfi_setsymlist stage numbers (SMFIM_*) and their names here.
SMFIM = {0: "connect", 1: "helo", 2: "envfrom", 3: "envrcpt", 4: "data",
         5: "eom", 6: "eoh"}
FINAL = set(b"cyadrt")    # replies that end a command (not 'h', 'q', ...)


class Reply:
    def __init__(self, code, data, mods, noreply=False):
        self.code = chr(code)   # 'c', 'y', ...
        self.data = data        # bytes: the reply text of a 'y', NUL cut
        self.mods = mods        # [(cmd char, bytes)] before it, at EOM
        self.noreply = noreply  # SMFIP_NR_* negotiated: none was sent

    def __repr__(self):
        return "%s %r%s" % (self.code, self.data,
                            " (no reply)" if self.noreply else "")


# A step whose SMFIP_NR_* bit was negotiated gets no reply: it counts as
# continue (that is what the MTA does with it).
NOREPLY = Reply(ord("c"), b"", [], True)


class Client:
    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""
        self.prot = 0
        self.acts = 0
        self.symlists = {}

    def send(self, cmd, data=b""):
        global LAST
        LAST = "%s %r" % (cmd.decode(), data[:40])
        self.s.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("filter closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self):
        (n,) = struct.unpack("!I", self._read(4))
        body = self._read(n)
        return body[0], body[1:]

    def reply(self, nr=None):
        if nr is not None and self.prot & SMFIP[nr]:
            return NOREPLY
        mods = []
        while True:
            cmd, data = self.packet()
            if cmd in FINAL:
                return Reply(cmd, data.split(b"\0", 1)[0], mods)
            mods.append((chr(cmd), data))

    def negotiate(self, acts=ACTS_ALL, prot=PROT_ALL):
        self.send(b"O", struct.pack("!III", SMFI_VERSION, acts, prot))
        cmd, data = self.packet()
        if cmd != ord("O"):
            raise ValueError("negotiate: reply %r" % chr(cmd))
        _, self.acts, self.prot = struct.unpack("!III", data[:12])
        rest = data[12:]
        while len(rest) >= 4:
            (stage,) = struct.unpack("!I", rest[:4])
            names, _, rest = rest[4:].partition(b"\0")
            self.symlists[SMFIM.get(stage, stage)] = names.decode()

    def macro(self, cmd, pairs):
        data = cmd
        for k, v in pairs:
            data += k + b"\0" + v + b"\0"
        self.send(b"D", data)

    def connect(self, host, ip, port=12345, macros=()):
        self.macro(b"C", macros)
        self.send(b"C", host + b"\0" + (b"6" if b":" in ip else b"4") +
                  struct.pack("!H", port) + ip + b"\0")
        return self.reply("NR_CONN")

    def helo(self, name, macros=()):
        self.macro(b"H", macros)
        self.send(b"H", name + b"\0")
        return self.reply("NR_HELO")

    def mail(self, args, macros=()):
        self.macro(b"M", macros)
        self.send(b"M", b"".join(a + b"\0" for a in args))
        return self.reply("NR_MAIL")

    def rcpt(self, args, macros=()):
        self.macro(b"R", macros)
        self.send(b"R", b"".join(a + b"\0" for a in args))
        return self.reply("NR_RCPT")

    def unknown(self, cmd):
        self.send(b"U", cmd + b"\0")
        return self.reply("NR_UNKN")

    def data(self):
        self.send(b"T")
        return self.reply("NR_DATA")

    def pending(self, timeout=0.5):
        """True when the filter sent something no command asked for."""
        if self.buf:
            return True
        self.s.settimeout(timeout)
        try:
            return len(self.s.recv(1, socket.MSG_PEEK)) > 0
        except socket.timeout:
            return False
        finally:
            self.s.settimeout(10.0)

    def quit(self):
        try:
            self.send(b"Q")
        finally:
            self.s.close()


FAILS = []
LAST = "(nothing sent)"   # the last command sent, for error messages


def check(what, got, want):
    if got != want:
        FAILS.append("%s: got %r, want %r" % (what, got, want))


def reply_is(what, r, code, text=None):
    check(what + " reply", r.code, code)
    if text is not None:
        check(what + " text", r.data, text)


def greeted(port, name, ip, sender=b"<x@example.com>"):
    """A new session through MAIL, every step answered continue."""
    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(name, ip), "c")
    reply_is("helo", c.helo(name), "c")
    reply_is("mail", c.mail([sender]), "c")
    return c


# --- scenarios -------------------------------------------------------------

def sc_wire_replies(port):
    """Exact reply bytes on the wire at MAIL and RCPT ('%' doubled for
    Sendmail, multi-line as 550-...CRLF550 ...)."""
    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"wire.example", b"192.0.2.44",
             macros=[(b"{daemon_port}", b"587")]), "c")
    reply_is("helo", c.helo(b"wire.example"), "c")
    reply_is("mail 587 no auth", c.mail([b"<a@example.com>"],
             [(b"i", b"QWIRE1")]), "y", b"530 5.7.0 Authentication required")
    c.quit()

    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"wire.example", b"192.0.2.45",
             macros=[(b"{daemon_port}", b"587")]), "c")
    reply_is("helo", c.helo(b"wire.example"), "c")
    reply_is("mail auth no tls", c.mail([b"<a@example.com>"],
             [(b"i", b"QWIRE2"), (b"{auth_type}", b"PLAIN"),
              (b"{auth_authen}", b"alice")]), "y",
             b"538 5.7.11 Encryption required for requested authentication"
             b" mechanism")
    c.quit()

    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"wire.example", b"192.0.2.46"), "c")
    reply_is("helo", c.helo(b"wire.example"), "c")
    reply_is("mail multi-line", c.mail([b"<multi@example.org>"],
             [(b"i", b"QWIRE3")]), "y",
             b"550-5.7.1 first line\r\n550 5.7.1 second line for "
             b"multi@example.org")
    reply_is("mail after rset", c.mail([b"<pct-mail@example.org>"],
             [(b"i", b"QWIRE4")]), "y",
             b"550 5.7.1 100%% sure, t-percent-mail at 50%%")
    c.quit()

    # rate limit: three pass, the fourth gets 450 4.7.1 ... retry in 20s
    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"wire.example", b"192.0.2.47",
             macros=[(b"{daemon_port}", b"587")]), "c")
    reply_is("helo", c.helo(b"wire.example", [(b"{tls_version}",
             b"TLSv1.3"), (b"{cipher_bits}", b"256")]), "c")
    reply_is("mail", c.mail([b"<w@example.com>"], [(b"i", b"QWIRE5"),
             (b"{auth_type}", b"PLAIN"), (b"{auth_authen}", b"wirerate")]),
             "c")
    for i in range(1, 4):
        reply_is("rcpt %d" % i, c.rcpt([b"<r%d@example.net>" % i],
                 [(b"{rcpt_mailer}", b"smtp")]), "c")
    reply_is("rcpt 4", c.rcpt([b"<r4@example.net>"],
             [(b"{rcpt_mailer}", b"smtp")]), "y",
             b"450 4.7.1 Too many recipients from wirerate, retry in 20s")
    c.quit()

    # harvest: the 4th unknown command closes the session with 421
    c = greeted(port, b"wire.example", b"100.64.3.99")
    for i in range(1, 4):
        reply_is("unknown %d" % i, c.unknown(b"EXPN root"), "c")
    want = b"421 4.7.0 Too many unrecognized commands, closing connection"
    reply_is("unknown 4", c.unknown(b"EXPN root"), "y", want)
    reply_is("rcpt after 421", c.rcpt([b"<y@example.net>"]), "y", want)
    reply_is("mail after 421", c.mail([b"<x@example.com>"]), "y", want)
    c.quit()

    # harvest: the 6th recipient the MTA refused closes the session
    c = greeted(port, b"wire.example", b"100.64.4.99")
    for i in range(1, 6):
        reply_is("refused rcpt %d" % i, c.rcpt([b"<n%d@example.net>" % i],
                 [(b"{rcpt_mailer}", b"error")]), "c")
    want = b"421 4.7.0 Too many invalid recipients, closing connection"
    reply_is("refused rcpt 6", c.rcpt([b"<n6@example.net>"],
             [(b"{rcpt_mailer}", b"error")]), "y", want)
    reply_is("valid rcpt after 421", c.rcpt([b"<ok@example.net>"],
             [(b"{rcpt_mailer}", b"smtp")]), "y", want)
    reply_is("unknown after 421", c.unknown(b"NOOP"), "y", want)
    reply_is("mail after 421", c.mail([b"<x@example.com>"]), "y", want)
    c.quit()


def sc_hostile(port):
    """10 KB HELO and MAIL FROM full of CR, LF, 0x01, 0x7f, 0xff and a
    NUL: warden answers, and the next connection is served."""
    junk = (b"ab\r\ncd\x01ef\x7f\xff\tgh" * 1000)[:10240]
    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"hostile." + junk[:200], b"192.0.2.66",
             macros=[(b"{daemon_port}", b"587")]), "c")
    reply_is("helo", c.helo(junk, [(b"{tls_version}", junk)]), "c")
    r = c.mail([b"<" + junk + b"@example.com>", b"SIZE=" + junk,
                b"X-" + junk], [(b"i", b"QHOSTILE2"),
                                (b"{auth_authen}", b"")])
    reply_is("mail", r, "y", b"530 5.7.0 Authentication required")
    r = c.mail([b"<" + junk + b"\0" + junk + b">"],
               [(b"i", b"QHOSTILE3")])
    reply_is("mail with NUL", r, "y", b"530 5.7.0 Authentication required")
    c.quit()
    # Client text in a reply template: control bytes become '?', so a
    # HELO cannot add a line to the SMTP reply; '%' is doubled.
    c = Client(port)
    c.negotiate()
    reply_is("connect", c.connect(b"echo.example", b"192.0.2.67"), "c")
    reply_is("helo", c.helo(b"x%s%n\r\n250 2.0.0 Ok\x01\x80"), "c")
    reply_is("mail echo", c.mail([b"<echo@example.org>"],
             [(b"i", b"QHOSTILE4")]), "y",
             b"550 5.7.1 Go away x%%s%%n??250 2.0.0 Ok??")
    c.quit()

    c = Client(port)
    c.negotiate()
    reply_is("connect after", c.connect(b"after.example", b"192.0.2.67"),
             "c")
    c.quit()


def sc_symlist(port):
    """What the filter asks for: macro lists and protocol bits (instance
    A: shipped + test rules)."""
    c = Client(port)
    c.negotiate()
    want = {
        "connect": ["{daemon_port}"],
        "helo": ["{tls_version}", "{cipher_bits}"],
        "envfrom": ["i", "{auth_authen}", "{auth_type}"],
        "envrcpt": ["{rcpt_mailer}"],
        "eom": ["i"],
    }
    for stage, names in want.items():
        have = c.symlists.get(stage, "").split()
        for n in names:
            if n not in have:
                FAILS.append("symlist %s: %s missing from %r" %
                             (stage, n, c.symlists.get(stage)))
    for bit in ("NODATA", "NR_DATA", "NR_CONN", "NR_HELO", "NR_MAIL",
                "NR_RCPT", "NR_UNKN"):
        if c.prot & SMFIP[bit]:
            FAILS.append("asked for SMFIP_%s" % bit)
    for bit in ("NOHDRS", "NOEOH", "NOBODY", "RCPT_REJ"):
        if not c.prot & SMFIP[bit]:
            FAILS.append("did not ask for SMFIP_%s" % bit)
    if c.prot & SMFIP["NOUNKNOWN"]:
        FAILS.append("asked for SMFIP_NOUNKNOWN with unknown-stage rules")
    c.quit()


def sc_storm(port, threads=8, sessions=40):
    """Many sessions at once while run.sh reloads instance B: every one
    gets a complete, valid answer from one ruleset or the other."""
    import threading
    ok = (b"550 5.7.1 Reload version one", b"550 5.7.1 Reload version two")
    lock = threading.Lock()

    def worker(n):
        for i in range(sessions):
            try:
                c = Client(port)
                c.negotiate()
                r = [c.connect(b"storm.example", b"192.0.2.%d" % (100 + n)),
                     c.helo(b"storm.example"),
                     c.mail([b"<reload@example.org>"],
                            [(b"i", b"QSTORM%d" % n)])]
                c.quit()
                if [x.code for x in r] != ["c", "c", "y"] or \
                        r[2].data not in ok:
                    with lock:
                        FAILS.append("thread %d session %d: %r" % (n, i, r))
                        return
            except Exception as e:
                with lock:
                    FAILS.append("thread %d session %d: %s: %s" %
                                 (n, i, type(e).__name__, e))
                return

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def sc_oom(port):
    """Out of memory for a callback's scratch (failmalloc.c, armed while
    the file $OOM_ARM exists): the command gets 451 4.3.0, and so does
    every later one of that connection once memory is back (its facts
    are lost); the next connection is served."""
    arm = os.environ["OOM_ARM"]
    want = b"451 4.3.0 Temporary local problem, try again later"
    open(arm, "w").close()
    c = Client(port)
    c.negotiate()
    reply_is("armed: connect", c.connect(b"oom.example", b"192.0.2.90"),
             "y", want)
    reply_is("armed: helo", c.helo(b"oom.example"), "y", want)
    os.unlink(arm)
    reply_is("after: helo", c.helo(b"oom.example"), "y", want)
    reply_is("after: mail", c.mail([b"<s@example.com>"]), "y", want)
    c.quit()
    greeted(port, b"ok.example", b"192.0.2.91").quit()


def sc_oom_noreply(port):
    """The same where the MTA asked no reply at connect, HELO and MAIL
    (rules at RCPT only): none is sent there, armed or not; RCPT gets
    451 4.3.0, and DATA still does once memory is back; nothing else
    arrives; the next connection is served."""
    arm = os.environ["OOM_ARM"]
    want = b"451 4.3.0 Temporary local problem, try again later"
    open(arm, "w").close()
    c = Client(port)
    c.negotiate()
    for nr in ("NR_CONN", "NR_HELO", "NR_MAIL"):
        check("negotiated " + nr, bool(c.prot & SMFIP[nr]), True)
    c.connect(b"oom.example", b"192.0.2.92")
    c.helo(b"oom.example")
    c.mail([b"<s@example.com>"])
    reply_is("armed: rcpt", c.rcpt([b"<r@example.net>"]), "y", want)
    os.unlink(arm)
    reply_is("after: data", c.data(), "y", want)
    check("a reply no command asked for", c.pending(), False)
    c.quit()
    c = Client(port)
    c.negotiate()
    c.connect(b"ok.example", b"192.0.2.93")
    c.helo(b"ok.example")
    c.mail([b"<s@example.com>"])
    reply_is("next: rcpt", c.rcpt([b"<r@example.net>"]), "c")
    reply_is("next: data", c.data(), "c")
    check("next: a reply no command asked for", c.pending(), False)
    c.quit()


def sc_one(port):
    """One storm session: instance B still answers."""
    sc_storm(port, threads=1, sessions=1)


def wait_end(c, what):
    """The connection's end after warden stopped: whole packets, then a
    close (EOF or reset); never a cut packet, never a hang."""
    try:
        while True:
            c.packet()
    except EOFError:
        if c.buf:
            FAILS.append("%s: %d bytes of a cut packet" % (what, len(c.buf)))
        return "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except socket.timeout:
        FAILS.append("%s: still open 30 s after the stop" % what)
        return "open"


def sc_stop_open(port):
    """Two sessions in a transaction while run.sh SIGTERMs warden: A
    waits, B sends RCPT when the file $STOP_GO appears (run.sh creates
    it right after the signal). Each must end cleanly: B with its whole
    answer or none, then both connections closed."""
    import os
    import time
    cs = []
    for n in (b"a", b"b"):
        c = Client(port, timeout=30.0)
        c.negotiate()
        r = [c.connect(b"stop-%s.example" % n, b"192.0.2.78"),
             c.helo(b"stop.example"),
             c.mail([b"<stop-%s@example.org>" % n], [(b"i", b"QSTOP")])]
        check("session %s before the stop" % n.decode(),
              [x.code for x in r], ["c", "c", "c"])
        cs.append(c)
    print("READY", flush=True)
    end = time.time() + 30
    while not os.path.exists(os.environ["STOP_GO"]) and time.time() < end:
        time.sleep(0.02)
    b = cs[1]
    try:
        b.send(b"R", b"<late@example.org>\0")
        r = b.reply("NR_RCPT")
        print("B: answered %s" % r.code)
    except EOFError:
        if b.buf:
            FAILS.append("B: %d bytes of a cut packet" % len(b.buf))
        print("B: closed before an answer")
    except (ConnectionResetError, BrokenPipeError):
        print("B: reset before an answer")
    print("B: then " + wait_end(b, "B"))
    print("A: " + wait_end(cs[0], "A"))


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: milter_raw.py PORT SCENARIO\n")
        return 2
    port, name = int(sys.argv[1]), sys.argv[2]
    fn = globals().get("sc_" + name.replace("-", "_"))
    if fn is None:
        sys.stderr.write("milter_raw.py: no scenario %s\n" % name)
        return 2
    try:
        fn(port)
    except Exception as e:  # a dead filter or a protocol error
        FAILS.append("%s: %s (after sending %s)" % (type(e).__name__, e,
                                                     LAST))
    for f in FAILS:
        print("FAIL: " + f)
    if FAILS:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
