#!/usr/bin/env python3
"""hostile_milter.py PORT - a fake milter on 127.0.0.1:PORT whose Nth
connection gets the Nth malformed answer below, then is closed; for
tests/load/run.sh, which checks that miltergen counts each as a failed
session and neither crashes nor hangs. Exits after len(CASES)
connections or 60 s without one."""
import socket
import struct
import sys

OK_NEG = struct.pack(">I", 13) + b"O" + struct.pack(">III", 6, 0, 0)


def pkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


# (name, answer to OPTNEG, answer to the first command after it); the
# connection stays open until miltergen closes it, but for the last case.
CASES = [
    ("length 2^32-1", struct.pack(">I", 0xFFFFFFFF) + b"O", None),
    ("length 0", struct.pack(">I", 0), None),
    ("length over 1 MiB", struct.pack(">I", 2 * 1024 * 1024) + b"O" + b"x" * 64, None),
    ("OPTNEG too short", pkt(b"O", struct.pack(">I", 6)), None),
    ("OPTNEG asks for an action not offered",
     pkt(b"O", struct.pack(">III", 6, 0x400, 0)), None),
    ("symlist index out of range",
     pkt(b"O", struct.pack(">IIII", 6, 0x100, 0, 99) + b"{x}\0"), None),
    ("symlist without NUL",
     pkt(b"O", struct.pack(">IIII", 6, 0x100, 0, 0) + b"{daemon_port}"), None),
    ("reply code 999", OK_NEG, pkt(b"y", b"999 no\0")),
    ("reply code without NUL", OK_NEG, pkt(b"y", b"550 5.7.1 x")),
    ("unknown reply", OK_NEG, pkt(b"Z")),
    ("add header before eom", OK_NEG, pkt(b"h", b"X-A\0b\0")),
    ("stalls inside a packet (miltergen's reply timeout)", OK_NEG,
     struct.pack(">I", 10) + b"c"),
    ("closed inside a packet", OK_NEG, struct.pack(">I", 10) + b"c"),
]


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    srv.settimeout(60)
    for i, (_name, neg, reply) in enumerate(CASES):
        try:
            c, _ = srv.accept()
        except socket.timeout:
            return 1
        c.settimeout(10)
        try:
            c.recv(4096)            # OPTNEG
            c.sendall(neg)
            if reply is not None:
                c.recv(4096)        # macros + CONNECT
                c.sendall(reply)
            while i < len(CASES) - 1 and c.recv(4096):
                pass                # until miltergen gives up on us
        except OSError:
            pass
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
