#!/usr/bin/env python3
"""rtproxy.py PORTFILE COUNTFILE UPSTREAM-PORT - counts round trips.

Listens on 127.0.0.1 (a free port, written to PORTFILE), forwards every
connection to 127.0.0.1:UPSTREAM-PORT and counts turns: each time bytes
come back to a client after it sent some. However the kernel splits the
segments, one request/answer exchange is one turn. The running total is
rewritten to COUNTFILE after each turn. Stopped by its PID (tests/redis).
"""
import os
import selectors
import socket
import sys


def main():
    portfile, countfile, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(lsn, selectors.EVENT_READ, None)
    peer, sent, turns = {}, {}, 0
    with open(countfile, "w") as f:
        f.write("0\n")
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lsn.getsockname()[1])
    os.rename(tmp, portfile)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsn:
                c, _ = lsn.accept()
                u = socket.create_connection(("127.0.0.1", upstream))
                peer[c], peer[u] = u, c
                sent[c] = False
                sel.register(c, selectors.EVENT_READ, "client")
                sel.register(u, selectors.EVENT_READ, "server")
                continue
            if s not in peer:
                continue
            data = s.recv(65536)
            other = peer[s]
            if not data:
                for x in (s, other):
                    sel.unregister(x)
                    x.close()
                    peer.pop(x, None)
                    sent.pop(x, None)
                continue
            if key.data == "client":
                sent[s] = True
            elif sent.get(other):
                sent[other] = False
                turns += 1
                with open(countfile, "w") as f:
                    f.write("%d\n" % turns)
            other.sendall(data)


if __name__ == "__main__":
    main()
