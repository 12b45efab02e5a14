"""TLS echo: one server process and one client process per measurement.

``python -m benchmarks.tls_echo server LOOP CERTDIR [--cpu C]``: a TLS echo server
(``asyncio.Protocol``: ``data_received`` -> ``transport.write``, under the
loop's ``ssl=`` support) on 127.0.0.1 port 0, on the named loop, pinned to
CPU C; prints ``{"port": P, "pid": PID}`` once listening; stops on SIGTERM or
when its parent dies.

``python -m benchmarks.tls_echo client PORT CERTDIR SIZE CONNS SECONDS [--cpu C]``:
the load: CONNS TLS connections on uvloop (asyncio if uvloop is missing), each
keeping one SIZE-byte message in flight and checking every echoed byte, for
SECONDS after a warm-up; prints ``{"requests": N, "seconds": S, "bad": B}``.
A Python client is slower than a C one: at 1 KiB it limits throughput, so
the server's CPU per request is the figure that compares loops (the runner in
benchmarks/test_tls.py reads it from /proc around the measured window).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import sys
import time

from benchmarks import _harness
from benchmarks.echo.servers import EchoProtocol, die_with_parent, emit, new_loop

WARMUP = 0.5  # seconds


def helpers():
    """The test suite's certificate helpers (tests/tls_helpers.py)."""
    path = _harness.REPO / "tests" / "tls_helpers.py"
    spec = importlib.util.spec_from_file_location("_tls_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def certs(directory: str):
    """The certificates helpers().make_certs(directory) wrote."""
    return helpers().Certs(*(os.path.join(directory, f)
                             for f in ("ca.pem", "server.pem", "server.key")))


def serve(args) -> int:
    die_with_parent()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    bytearray(4 << 20)  # raise glibc's mmap threshold alike for every loop
    ctx = helpers().server_context(certs(args.certdir))
    loop = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        EchoProtocol, "127.0.0.1", 0, ssl=ctx))
    emit({"port": server.sockets[0].getsockname()[1], "pid": os.getpid()})
    loop.run_forever()  # until SIGTERM (default action)
    return 0


async def load(port, ctx, size, conns, seconds):
    msg = bytes(range(256)) * (size // 256) + bytes(size % 256)
    state = {"count": False, "requests": 0, "bad": 0, "stop": False}

    async def one():
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        while not state["stop"]:
            writer.write(msg)
            got = await reader.readexactly(size)
            if got != msg:
                state["bad"] += 1
            if state["count"]:
                state["requests"] += 1
        writer.close()

    tasks = [asyncio.ensure_future(one()) for _ in range(conns)]
    await asyncio.sleep(WARMUP)
    state["count"] = True
    t0 = time.perf_counter()
    print(json.dumps({"window": "start"}), flush=True)
    await asyncio.sleep(seconds)
    state["count"] = False
    elapsed = time.perf_counter() - t0
    print(json.dumps({"window": "end"}), flush=True)
    state["stop"] = True
    await asyncio.wait(tasks, timeout=5)
    return {"requests": state["requests"], "seconds": elapsed, "bad": state["bad"]}


def client(args) -> int:
    die_with_parent()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    ctx = helpers().client_context(certs(args.certdir))
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    result = loop.run_until_complete(
        load(args.port, ctx, args.size, args.conns, args.seconds))
    print(json.dumps(result), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("server")
    s.add_argument("loop")
    s.add_argument("certdir")
    s.add_argument("--cpu", type=int)
    c = sub.add_parser("client")
    c.add_argument("port", type=int)
    c.add_argument("certdir")
    c.add_argument("size", type=int)
    c.add_argument("conns", type=int)
    c.add_argument("seconds", type=float)
    c.add_argument("--cpu", type=int)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return serve(args) if args.what == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
