#!/usr/bin/env python3
"""smtpload.py - SMTP clients for tests/faults/run.sh.

smtp-source (Postfix's load client) stops at the first refused RCPT and
reports no per-message outcome, but a fault test has to count every
message as delivered, 4xx or 5xx and time each transaction. This client
does that: one message per SMTP session, N sessions at once.

  smtpload.py load PORT OUT STOPFILE [--conc 50] [--max-seconds 300]
      N workers send until STOPFILE exists (each finishes its current
      transaction). Senders rotate over load@acc.example,
      load@tf.example and load@mem.example (worker number in the local
      part). One TSV line per transaction to OUT, flushed at once:
      t_start t_end domain result stage code text tx_ms
      result: ok (250 after the final dot), t4 (4xx), p5 (5xx), err (no
      reply: closed, reset, timeout); stage: where it ended; tx_ms: MAIL
      FROM sent to the last reply of the transaction.
  smtpload.py one PORT FROM TO
      one transaction; prints "result stage code text".
  smtpload.py drop PORT STAGE N [--conc 50]
      N sessions that close the connection without QUIT after STAGE:
      ehlo, rcpt or data (half of the body sent); prints
      "dropped=N unexpected=M" and the first unexpected replies.
  smtpload.py summary OUT [--from T] [--to T]
      key=value lines over the transactions that ended in [from, to):
      n ok t4 p5 err, per domain, max/p99 tx_ms, max_session_ms (connect
      to QUIT's reply), codes seen, rate_ok
      (ok per second over the window), the first errors.

Every wait has a deadline (--timeout, default 60 s per reply), so a hung
server shows as result err, never as a hung test.
"""
import argparse
import asyncio
import os
import sys
import time

DOMAINS = ("acc.example", "tf.example", "mem.example")
RCPT = "rcpt@example.com"


class Closed(Exception):
    pass


class Session:
    def __init__(self, reader, writer, timeout):
        self.r, self.w, self.timeout = reader, writer, timeout

    async def reply(self):
        last = b""
        while True:
            line = await asyncio.wait_for(self.r.readline(), self.timeout)
            if not line:
                raise Closed("connection closed")
            last = line.rstrip(b"\r\n")
            if last[3:4] != b"-":
                break
        return (last[:3].decode("ascii", "replace"),
                last[4:].decode("utf-8", "replace"))

    async def cmd(self, line):
        self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        return await self.reply()

    def abort(self):
        self.w.close()


def body(sender, lines=20):
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: faults test\r\n"
            "Message-ID: <%d.%d@faults.example>\r\n\r\n" %
            (sender, RCPT, time.time_ns(), os.getpid()))
    return head + "".join("line %d of a test message body\r\n" % i
                          for i in range(lines))


def classify(code):
    if code[:1] == "4":
        return "t4"
    if code[:1] == "5":
        return "p5"
    return "err"


async def transaction(port, sender, rcpt, timeout, drop=None):
    """One session, one message. Returns a dict (see the module doc)."""
    rec = {"t_start": time.time(), "result": "err", "stage": "connect",
           "code": "-", "text": "", "tx_ms": -1.0}
    s = None
    tx0 = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        s = Session(reader, writer, timeout)
        steps = [("banner", None, "220"), ("ehlo", "EHLO client.example.net",
                 "250"), ("mail", "MAIL FROM:<%s>" % sender, "250"),
                 ("rcpt", "RCPT TO:<%s>" % rcpt, "250"),
                 ("data", "DATA", "354")]
        for stage, line, want in steps:
            rec["stage"] = stage
            if stage == "mail":
                tx0 = time.monotonic()
            code, text = await (s.reply() if line is None else s.cmd(line))
            rec["code"], rec["text"] = code, text
            if code != want:
                rec["result"] = classify(code)
                break
            if drop == stage:
                rec["result"] = "dropped"
                break
        else:
            rec["stage"] = "dot"
            msg = body(sender)
            if drop == "data":
                s.w.write(msg[:len(msg) // 2].encode())
                await s.w.drain()
                rec["result"] = "dropped"
            else:
                code, text = await s.cmd(msg + ".")
                rec["code"], rec["text"] = code, text
                rec["result"] = "ok" if code == "250" else classify(code)
        if tx0 is not None:
            rec["tx_ms"] = (time.monotonic() - tx0) * 1000.0
        if rec["result"] != "dropped" and rec["code"] != "421":
            try:
                await asyncio.wait_for(s.cmd("QUIT"), 5)
            except (Closed, OSError, asyncio.TimeoutError):
                pass
    except asyncio.TimeoutError:
        rec["result"], rec["text"] = "err", "timeout"
    except (Closed, OSError) as e:
        rec["result"], rec["text"] = "err", "%s: %s" % (type(e).__name__, e)
    finally:
        if tx0 is not None and rec["tx_ms"] < 0:
            rec["tx_ms"] = (time.monotonic() - tx0) * 1000.0
        if s is not None:
            s.abort()
    rec["t_end"] = time.time()
    return rec


def tsv(domain, r):
    text = r["text"].replace("\t", " ").replace("\n", " ")
    return "%.6f\t%.6f\t%s\t%s\t%s\t%s\t%s\t%.1f\n" % (
        r["t_start"], r["t_end"], domain, r["result"], r["stage"],
        r["code"], text, r["tx_ms"])


async def run_load(a):
    out = open(a.out, "a", buffering=1)
    deadline = time.monotonic() + a.max_seconds

    async def worker(w):
        seq = 0
        while not os.path.exists(a.stop) and time.monotonic() < deadline:
            dom = DOMAINS[(w + seq) % len(DOMAINS)]
            sender = "load%d@%s" % (w, dom)
            r = await transaction(a.port, sender, RCPT, a.timeout)
            out.write(tsv(dom, r))
            seq += 1

    await asyncio.gather(*[worker(w) for w in range(a.conc)])
    out.close()


async def run_drop(a):
    sem = asyncio.Semaphore(a.conc)
    bad = []

    async def one(i):
        async with sem:
            r = await transaction(a.port, "drop%d@acc.example" % i, RCPT,
                                  a.timeout, drop=a.stage)
            if r["result"] != "dropped":
                bad.append(r)

    await asyncio.gather(*[one(i) for i in range(a.n)])
    print("dropped=%d unexpected=%d" % (a.n - len(bad), len(bad)))
    for r in bad[:5]:
        print("# unexpected: %s %s %s %s" % (r["result"], r["stage"],
                                             r["code"], r["text"]))


def summary(a):
    rows = []
    with open(a.out) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) != 8:
                continue
            t_end = float(p[1])
            if a.t_from is not None and t_end < a.t_from:
                continue
            if a.t_to is not None and t_end >= a.t_to:
                continue
            rows.append(p)
    res = {"ok": 0, "t4": 0, "p5": 0, "err": 0}
    dom = {}
    codes = {}
    txs = []
    sess = 0.0
    errs = []
    for p in rows:
        r = p[3]
        res[r] = res.get(r, 0) + 1
        d = p[2].split(".")[0]
        dom[(d, r)] = dom.get((d, r), 0) + 1
        if r in ("t4", "p5"):
            key = "%s:%s:%s %s" % (d, p[4], p[5], p[6].split(" ")[0])
            codes[key] = codes.get(key, 0) + 1
        if r in ("err", "p5") and len(errs) < 5:
            errs.append("%s %s %s %s" % (r, p[4], p[5], p[6]))
        if float(p[7]) >= 0:
            txs.append(float(p[7]))
        sess = max(sess, float(p[1]) - float(p[0]))
    txs.sort()
    print("n=%d" % len(rows))
    for k in ("ok", "t4", "p5", "err"):
        print("%s=%d" % (k, res[k]))
    for d in (x.split(".")[0] for x in DOMAINS):
        for k in ("ok", "t4", "p5", "err"):
            print("%s_%s=%d" % (d, k, dom.get((d, k), 0)))
    print("max_tx_ms=%d" % (int(txs[-1]) if txs else 0))
    # connect to the end of QUIT: includes the greeting, which waits for
    # the MTA's milter connect stage
    print("max_session_ms=%d" % int(sess * 1000))
    print("p99_tx_ms=%d" % (int(txs[int(len(txs) * 0.99) - 1])
                            if len(txs) >= 100 else (int(txs[-1]) if txs
                                                     else 0)))
    if a.t_from is not None and a.t_to is not None and a.t_to > a.t_from:
        print("rate_ok=%.1f" % (res["ok"] / (a.t_to - a.t_from)))
    # refusals as "domain:stage:code_enhanced=count"
    print("codes=%s" % ",".join("%s=%d" % (k.replace(" ", "_"), v)
                                for k, v in sorted(codes.items())))
    for e in errs:
        print("# %s" % e)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("load")
    p.add_argument("port", type=int)
    p.add_argument("out")
    p.add_argument("stop")
    p.add_argument("--conc", type=int, default=50)
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("one")
    p.add_argument("port", type=int)
    p.add_argument("sender")
    p.add_argument("rcpt")
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("drop")
    p.add_argument("port", type=int)
    p.add_argument("stage", choices=("ehlo", "rcpt", "data"))
    p.add_argument("n", type=int)
    p.add_argument("--conc", type=int, default=50)
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("summary")
    p.add_argument("out")
    p.add_argument("--from", dest="t_from", type=float)
    p.add_argument("--to", dest="t_to", type=float)
    a = ap.parse_args()
    if a.mode == "load":
        asyncio.run(run_load(a))
    elif a.mode == "one":
        r = asyncio.run(transaction(a.port, a.sender, a.rcpt, a.timeout))
        print("%s %s %s %s" % (r["result"], r["stage"], r["code"], r["text"]))
    elif a.mode == "drop":
        asyncio.run(run_drop(a))
    else:
        summary(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
