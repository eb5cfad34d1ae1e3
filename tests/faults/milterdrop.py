#!/usr/bin/env python3
"""milterdrop.py PORT ROUNDS - an MTA that hangs up on warden mid-stage.

Uses the milter client of tests/milter/milter_raw.py. Each round runs,
from 10 threads at once, one session per way of leaving: after
negotiation, after connect, helo, mail or rcpt, with the rcpt command
sent and its reply never read, in the middle of a packet (a length
header promising more than is sent), and after rcpt with a TCP reset
(SO_LINGER 0) instead of a close. Then one complete session must still
get the right answers: a plain recipient continues, blocked@example.com
gets "550 5.7.1 Blocked by the faults test".
Prints "dropped=N" and PASS, or FAIL lines; exit 0 / 1.
"""
import os
import socket
import struct
import sys
import threading

# No __pycache__ left in another suite's directory.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "milter"))
import milter_raw as mr  # noqa: E402

CONN_MACROS = [(b"j", b"mx.example.test"), (b"{daemon_port}", b"25"),
               (b"{client_addr}", b"192.0.2.77")]


def steps(c, upto):
    """Runs the stages up to UPTO on client C."""
    c.negotiate()
    if upto == "negotiate":
        return
    c.connect(b"drop.example", b"192.0.2.77", macros=CONN_MACROS)
    if upto == "connect":
        return
    c.helo(b"drop.example")
    if upto == "helo":
        return
    c.mail([b"<drop@acc.example>"], [(b"{mail_addr}", b"drop@acc.example")])
    if upto == "mail":
        return
    if upto == "rcpt-unread":
        c.macro(b"R", [(b"{rcpt_addr}", b"rcpt@example.com")])
        c.send(b"R", b"<rcpt@example.com>\0")
        return
    c.rcpt([b"<rcpt@example.com>"], [(b"{rcpt_addr}", b"rcpt@example.com")])


def leave(port, how):
    c = mr.Client(port)
    try:
        if how == "partial-packet":
            steps(c, "helo")
            # A MAIL packet that promises 100 bytes and brings 10.
            c.s.sendall(struct.pack("!I", 100) + b"M<drop@acc")
        elif how == "reset":
            steps(c, "rcpt")
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                           struct.pack("ii", 1, 0))
        else:
            steps(c, how)
    finally:
        c.s.close()


WAYS = ("negotiate", "connect", "helo", "mail", "rcpt", "rcpt-unread",
        "partial-packet", "reset")


def main():
    port, rounds = int(sys.argv[1]), int(sys.argv[2])
    fails, lock, done = [], threading.Lock(), [0]

    def worker(n):
        for r in range(rounds):
            for how in WAYS:
                try:
                    leave(port, how)
                    with lock:
                        done[0] += 1
                except Exception as e:
                    with lock:
                        fails.append("thread %d round %d %s: %s: %s" %
                                     (n, r, how, type(e).__name__, e))
                    return

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("dropped=%d" % done[0])

    try:
        c = mr.Client(port)
        c.negotiate()
        mr.reply_is("connect", c.connect(b"after.example", b"192.0.2.78",
                    macros=CONN_MACROS), "c")
        mr.reply_is("helo", c.helo(b"after.example"), "c")
        mr.reply_is("mail", c.mail([b"<after@acc.example>"]), "c")
        mr.reply_is("rcpt ok", c.rcpt([b"<ok@example.com>"],
                    [(b"{rcpt_addr}", b"ok@example.com")]), "c")
        mr.reply_is("rcpt blocked", c.rcpt(
            [b"<blocked@example.com>"],
            [(b"{rcpt_addr}", b"blocked@example.com")]),
            "y", b"550 5.7.1 Blocked by the faults test")
        c.quit()
    except Exception as e:
        fails.append("after the drops: %s: %s" % (type(e).__name__, e))
    fails += mr.FAILS
    for f in fails:
        print("FAIL: " + f)
    if fails:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
