#!/usr/bin/env python3
"""fakesmtp.py LOGDIR MODE=PORT... - scripted SMTP servers for
tests/probe/run.sh (stdlib only). One process serves every MODE on its
own 127.0.0.1 port, one thread per connection, and writes "ready" to
stdout once all are bound. Every line a client sends is appended to
LOGDIR/MODE.log, so tests can assert what was (never) sent. The process
ends by itself after LIFETIME seconds; the test stops it by PID before.
LOGDIR/MODE.raw has the same lines with their CR, if any, kept.

Modes: good harvest escape ctrl longline endless garbage codechange
barelf silent drip stallehlo close busy inject tlsjunk authclear
datagood datastall datagarbage dataearly."""
import os
import socket
import sys
import threading
import time

LIFETIME = 300
EHLO = [b"fake.example", b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME"]
GOOD = {
    b"VRFY": b"252 2.0.0 Cannot VRFY user, but will accept message",
    b"EXPN": b"502 5.5.1 EXPN not available",
    b"MAIL": b"250 2.1.0 Ok",
    b"RCPT": b"554 5.7.1 Relay access denied",
    b"RSET": b"250 2.0.0 Ok",
    b"QUIT": b"221 2.0.0 Bye",
    b"STARTTLS": b"454 4.7.0 TLS not available",
    b"AUTH": b"535 5.7.8 Authentication failed",
}


def multi(code, lines):
    out = b""
    for i, l in enumerate(lines):
        sep = b" " if i == len(lines) - 1 else b"-"
        out += code + sep + l + b"\r\n"
    return out


def lines_of(conn, log):
    """Yields the client's lines (without CRLF), logging each."""
    buf = b""
    while True:
        try:
            data = conn.recv(4096)
        except OSError:
            return
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            with open(log[:-4] + ".raw", "ab") as f:
                f.write(line + b"\n")
            line = line.rstrip(b"\r")
            with open(log, "ab") as f:
                f.write(line + b"\n")
            yield line
        if len(buf) > 65536:
            return


def dialogue(conn, log, banner, ehlo=EHLO, replies=None, on=None):
    """A well-formed server: banner, EHLO, then replies by verb. on maps a
    verb to a function(conn) that takes over the connection."""
    rep = dict(GOOD)
    rep.update(replies or {})
    conn.sendall(banner)
    for line in lines_of(conn, log):
        verb = line.split(b" ", 1)[0].upper()
        if on and verb in on:
            on[verb](conn)
            return
        if verb in (b"EHLO", b"HELO"):
            conn.sendall(multi(b"250", ehlo))
        elif verb in rep:
            r = rep[verb]
            conn.sendall(r if r.endswith(b"\r\n") else r + b"\r\n")
            if verb == b"QUIT":
                return
        else:
            conn.sendall(b"500 5.5.2 Error: command not recognized\r\n")


def data_dialogue(conn, log, after354):
    """Accepts MAIL and every RCPT but the relay test; DATA gets 354, then
    after354(conn, lines) runs and says whether the dialogue goes on."""
    conn.sendall(b"220 fake.example ESMTP\r\n")
    lines = lines_of(conn, log)
    for line in lines:
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"EHLO":
            conn.sendall(multi(b"250", EHLO))
        elif verb == b"RCPT" and b"warden-probe.example" not in line:
            conn.sendall(b"250 2.1.5 Ok\r\n")
        elif verb == b"DATA":
            conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            if not after354(conn, lines):
                return
        elif verb in GOOD:
            conn.sendall(GOOD[verb] + b"\r\n")
            if verb == b"QUIT":
                return


def to_dot(lines):
    """Reads the message up to its "." line."""
    for line in lines:
        if line == b".":
            return True
    return False


def forever(conn, data, pause):
    """Sends data again and again until the client goes away."""
    try:
        while True:
            conn.sendall(data)
            if pause:
                time.sleep(pause)
    except OSError:
        pass


def hold(conn):
    """Says nothing; returns when the client closes."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


def serve(mode, conn, log):
    banner = b"220 fake.example ESMTP\r\n"
    if mode == "good":
        dialogue(conn, log, banner)
    elif mode == "harvest":
        dialogue(conn, log, banner, replies={
            b"VRFY": b"250 2.1.5 John Doe <john@fake.example>",
            b"EXPN": multi(b"250", [b"2.1.5 <a@fake.example>",
                                    b"2.1.5 <b@fake.example>"]),
            b"RCPT": b"250 2.1.5 Ok"})
    elif mode == "escape":
        dialogue(conn, log, b'220 caf\xc3\xa9 "quoted" back\\slash\r\n',
                 ehlo=EHLO + [b"AUTH PLAIN X\xc3\xa9"])
    elif mode == "ctrl":
        conn.sendall(b"220 evil\x1b[2J\x07 text\r\n")
        hold(conn)
    elif mode == "longline":
        conn.sendall(b"220 " + b"x" * 100000 + b"\r\n")
        hold(conn)
    elif mode == "endless":
        forever(conn, b"220-x\r\n" * 64, 0)
    elif mode == "garbage":
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        hold(conn)
    elif mode == "codechange":
        conn.sendall(b"220-fake.example\r\n250 fake.example\r\n")
        hold(conn)
    elif mode == "barelf":
        conn.sendall(b"220 fake.example ESMTP\n")
        hold(conn)
    elif mode == "silent":
        hold(conn)
    elif mode == "drip":
        conn.sendall(b"220-")
        forever(conn, b"x", 0.2)
    elif mode == "stallehlo":
        dialogue(conn, log, banner, on={b"EHLO": hold})
    elif mode == "close":
        pass
    elif mode == "busy":
        conn.sendall(b"421 4.3.2 System busy, try later\r\n")
    elif mode == "inject":
        dialogue(conn, log, banner, ehlo=EHLO + [b"STARTTLS"], replies={
            b"STARTTLS": b"220 2.0.0 Ready\r\n250 2.0.0 injected\r\n"},
            on={})
    elif mode == "tlsjunk":
        def junk(c):
            c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            time.sleep(0.2)
            c.sendall(b"this is not a TLS record\r\n")
        dialogue(conn, log, banner, ehlo=EHLO + [b"STARTTLS"],
                 on={b"STARTTLS": junk})
    elif mode == "datagood":
        def queued(c, lines):
            if to_dot(lines):
                c.sendall(b"250 2.0.0 Ok: queued as 4FAKE1\r\n")
                return True
            return False
        data_dialogue(conn, log, queued)
    elif mode == "datastall":
        data_dialogue(conn, log, lambda c, lines: hold(c))
    elif mode == "datagarbage":
        def junk(c, lines):
            if to_dot(lines):
                c.sendall(b"\x16\x03\x01garbage\x00\xff\r\n")
                hold(c)
            return False
        data_dialogue(conn, log, junk)
    elif mode == "dataearly":
        conn.sendall(b"220 fake.example ESMTP\r\n")
        for line in lines_of(conn, log):
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                conn.sendall(multi(b"250", EHLO))
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n250 2.0.0 queued early\r\n")
            elif verb == b"RCPT":
                conn.sendall(b"250 2.1.5 Ok\r\n")
            elif verb in GOOD:
                conn.sendall(GOOD[verb] + b"\r\n")
                if verb == b"QUIT":
                    return
    elif mode == "authclear":
        dialogue(conn, log, banner, ehlo=EHLO + [b"AUTH PLAIN LOGIN"])


def handle(mode, conn, log):
    try:
        serve(mode, conn, log)
    except OSError:
        pass
    finally:
        conn.close()


def listen(mode, port, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def main():
    logdir = sys.argv[1]
    socks = []
    for arg in sys.argv[2:]:
        mode, port = arg.split("=")
        log = os.path.join(logdir, mode + ".log")
        socks.append((mode, listen(mode, int(port), log), log))
    for mode, s, log in socks:
        def loop(mode=mode, s=s, log=log):
            while True:
                c, _ = s.accept()
                threading.Thread(target=handle, args=(mode, c, log),
                                 daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()
    print("ready", flush=True)
    time.sleep(LIFETIME)


if __name__ == "__main__":
    main()
