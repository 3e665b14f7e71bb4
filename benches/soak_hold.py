#!/usr/bin/env python3
"""Hold N mTLS keep-alive connections open against certgate and send a request on each every
INTERVAL seconds for DURATION seconds; count every request sent, answered 200, or failed.

Used by benches/soak.sh. Prints one JSON object on stdout at the end:
  {"connections": opened, "connect_failed": n, "sent": n, "ok": n, "failed": n,
   "failures": {reason: count}, "p50_ms":, "p99_ms":, "max_ms":}
A request is "lost" when it was sent and no 200 came back (failed = sent - ok).
"""

import argparse
import asyncio
import json
import random
import ssl
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--servername", default="localhost")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("-n", "--connections", type=int, default=10000)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=90.0)
    p.add_argument("--open-parallel", type=int, default=256)
    p.add_argument("--ready-file", help="touched once every connection is open")
    return p.parse_args()


class Stats:
    def __init__(self):
        self.opened = 0
        self.connect_failed = 0
        self.sent = 0
        self.ok = 0
        self.failures = {}
        self.latencies = []

    def fail(self, reason):
        self.failures[reason] = self.failures.get(reason, 0) + 1


async def read_response(reader):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns the status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"


async def open_one(args, ctx, stats, sem):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(
                    args.host, args.port, ssl=ctx, server_hostname=args.servername
                ),
                30,
            )
        except Exception as e:  # noqa: BLE001 - every failure is counted by kind
            stats.connect_failed += 1
            stats.fail("connect: " + type(e).__name__)
            return None
        stats.opened += 1
        return r, w


async def hold(args, conn, stats, deadline, idx):
    r, w = conn
    request = (
        f"GET /held/{idx} HTTP/1.1\r\nHost: {args.servername}\r\n\r\n"
    ).encode()
    # Spread the first requests over one interval so the load is even.
    await asyncio.sleep(random.uniform(0, args.interval))
    while time.monotonic() < deadline:
        stats.sent += 1
        t0 = time.monotonic()
        try:
            w.write(request)
            await w.drain()
            status, close = await asyncio.wait_for(read_response(r), 30)
        except Exception as e:  # noqa: BLE001
            stats.fail("request: " + type(e).__name__)
            break
        if status == 200:
            stats.ok += 1
            stats.latencies.append(time.monotonic() - t0)
        else:
            stats.fail(f"status {status}")
        if close:
            stats.fail("server closed the connection")
            break
        await asyncio.sleep(args.interval)
    try:
        w.close()
    except Exception:  # noqa: BLE001
        pass


async def main():
    args = parse_args()
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    stats = Stats()
    sem = asyncio.Semaphore(args.open_parallel)
    t0 = time.monotonic()
    conns = await asyncio.gather(
        *(open_one(args, ctx, stats, sem) for _ in range(args.connections))
    )
    print(
        f"soak_hold: {stats.opened} connections open in {time.monotonic() - t0:.1f}s "
        f"({stats.connect_failed} failed)",
        file=sys.stderr,
        flush=True,
    )
    if args.ready_file:
        open(args.ready_file, "w").close()
    deadline = time.monotonic() + args.duration
    await asyncio.gather(
        *(hold(args, c, stats, deadline, i) for i, c in enumerate(conns) if c)
    )
    lat = sorted(stats.latencies)

    def pct(p):
        return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None

    print(
        json.dumps(
            {
                "connections": stats.opened,
                "connect_failed": stats.connect_failed,
                "sent": stats.sent,
                "ok": stats.ok,
                "failed": stats.sent - stats.ok,
                "failures": stats.failures,
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "max_ms": round(lat[-1] * 1000, 2) if lat else None,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
