#!/usr/bin/env python3
"""slowproxy.py LISTEN_PORT UPSTREAM_PORT FLAGFILE DELAY_MS COUNTFILE

A TCP proxy on 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT that
makes Redis slow on demand (tests/faults/run.sh, "Redis slow"): while
FLAGFILE exists, every chunk Redis sends back is held DELAY_MS before it
is passed on, so each reply arrives later than warden's
command_timeout_ms; without FLAGFILE it forwards at once. Requests pass
through unchanged. Deterministic, unlike a server made slow by load
(DEBUG SLEEP would stall all connections at once, which is the SIGSTOP
case). COUNTFILE is rewritten with the number of delayed chunks, so the
test can show that the slowness was really applied.
"""
import asyncio
import os
import sys

listen_port, up_port = int(sys.argv[1]), int(sys.argv[2])
flag, delay, countfile = sys.argv[3], int(sys.argv[4]) / 1000.0, sys.argv[5]
delayed = 0


def note():
    tmp = countfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % delayed)
    os.replace(tmp, countfile)


async def pipe(reader, writer, slow):
    global delayed
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if slow and os.path.exists(flag):
                await asyncio.sleep(delay)
                delayed += 1
                note()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def client(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", up_port)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw, False), pipe(ur, cw, True))


async def main():
    note()
    srv = await asyncio.start_server(client, "127.0.0.1", listen_port)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
