"""Benchmark servers, one per process, on any loop:
``python -m benchmarks.echo.servers MODE LOOP [--cpu C] [--max-seconds T] [--unix PATH]``.

Echo modes (the client sends a message and waits for exactly its bytes back):

- ``streams``: ``asyncio.start_server``; ``reader.read()`` -> ``writer.write()`` + ``drain()``
- ``protocol``: ``asyncio.Protocol``; ``data_received`` -> ``transport.write``
- ``buffered``: ``asyncio.BufferedProtocol`` with a preallocated 256 KiB buffer;
  ``get_buffer`` / ``buffer_updated`` -> ``transport.write(bytes(view[:n]))``
- ``sock``: ``loop.sock_accept`` + a task per connection doing ``loop.sock_recv_into`` /
  ``loop.sock_sendall``
- ``udp``: ``loop.create_datagram_endpoint``; ``datagram_received`` ->
  ``transport.sendto(data, addr)`` (benchmarks/test_udp.py)

HTTP/1.1 modes (keep-alive, one fixed response ``Hello, World!``):

- ``http-raw``: an ``asyncio.Protocol`` with minimal request parsing
- ``http-aiohttp``: an aiohttp ``web.Application`` with one route (needs aiohttp)

The process pins itself to CPU C, allocates and frees 4 MiB (raises glibc's mmap
threshold alike for every loop, see BENCHMARKING.md), builds a fresh loop from the named
factory (``asyncio.new_event_loop``, ``uvloop.new_event_loop``,
``ringloop.new_event_loop``), listens on 127.0.0.1 port 0 (or a unix socket), and prints
one JSON line on stdout: ``{"port": P, "pid": PID}`` once it accepts connections, or
``{"error": "...", "type": "NotImplementedError"}`` if it cannot serve (then exits 2).
An unexpected exception while serving prints such an error line and exits the process
at once (exit status 3), so the load generator fails fast instead of stalling.
It stops by itself after --max-seconds, on SIGTERM (default action) or when its parent
dies (PR_SET_PDEATHSIG).

CPU time is not measured here: the load generator reads this process's CPU clock
(``clock_getcpuclockid``) at the edges of its measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import importlib
import json
import os
import signal
import socket
import sys

READ_SIZE = 256 * 1024
HTTP_BODY = b"Hello, World!"
HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(HTTP_BODY)).encode() + b"\r\n\r\n" + HTTP_BODY
)
HTTP_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)
# Errors a peer causes by going away mid-request (the load generators close their
# connections with messages in flight at the end of a run): not a server failure.
PEER_GONE = (ConnectionError, BrokenPipeError, TimeoutError)


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fatal(exc: BaseException, where: str) -> None:
    """Report an unexpected exception on stdout and exit at once (exit status 3)."""
    emit({"error": f"{where}: {type(exc).__name__}: {exc}", "type": type(exc).__name__})
    sys.stderr.flush()
    os._exit(3)


def exception_handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    exc = context.get("exception")
    if isinstance(exc, PEER_GONE):
        return
    if exc is None:  # a message only (e.g. "Unclosed ..."): log it like asyncio does
        loop.default_exception_handler(context)
        return
    fatal(exc, context.get("message", "loop exception handler"))


# --- echo modes ------------------------------------------------------------------


async def serve_streams(loop, host, port, unix):
    async def handle(reader, writer):
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except PEER_GONE:
            pass
        except Exception as exc:  # noqa: BLE001 - report anything else as fatal
            fatal(exc, "streams handler")
        finally:
            writer.close()

    if unix:
        return await asyncio.start_unix_server(handle, unix)
    return await asyncio.start_server(handle, host, port)


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    def __init__(self):
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        self.transport.write(bytes(self.view[:nbytes]))


async def serve_protocol(loop, host, port, unix, factory=EchoProtocol):
    if unix:
        return await loop.create_unix_server(factory, unix)
    return await loop.create_server(factory, host, port)


async def serve_buffered(loop, host, port, unix):
    return await serve_protocol(loop, host, port, unix, EchoBufferedProtocol)


class _SockServer:
    """What serve_sock returns: enough of asyncio.Server for main() to find the socket."""

    def __init__(self, lsock, task):
        self.sockets = [lsock]
        self.task = task


async def serve_sock(loop, host, port, unix):
    if unix:
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(unix)
    else:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((host, port))
    lsock.listen(1024)
    lsock.setblocking(False)
    conns = set()

    async def serve(conn):
        buf = bytearray(READ_SIZE)
        view = memoryview(buf)
        try:
            while True:
                n = await loop.sock_recv_into(conn, buf)
                if not n:
                    break
                await loop.sock_sendall(conn, view[:n])
        except PEER_GONE:
            pass
        except Exception as exc:  # noqa: BLE001
            fatal(exc, "sock handler")
        finally:
            conn.close()

    async def accept_loop():
        try:
            while True:
                conn, _ = await loop.sock_accept(lsock)
                conn.setblocking(False)
                if not unix:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                task = loop.create_task(serve(conn))
                conns.add(task)
                task.add_done_callback(conns.discard)
        except Exception as exc:  # noqa: BLE001
            fatal(exc, "sock_accept loop")

    task = loop.create_task(accept_loop())
    await asyncio.sleep(0)  # let the accept loop reach its first sock_accept
    await asyncio.sleep(0)
    return _SockServer(lsock, task)


# --- HTTP modes -------------------------------------------------------------------


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET/HEAD without bodies, one fixed response."""

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        buf = self.pending + data if self.pending else data
        start = 0
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            head = buf[start:end]
            start = end + 4
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            if not request_line.endswith((b" HTTP/1.1", b" HTTP/1.0")):
                self.transport.write(HTTP_BAD_REQUEST)
                self.transport.close()
                return
            self.transport.write(HTTP_RESPONSE)
            lower = head.lower()
            if b"connection: close" in lower or (
                    request_line.endswith(b"1.0") and b"keep-alive" not in lower):
                self.transport.close()
                return
        self.pending = buf[start:]
        if len(self.pending) > 65536:
            self.transport.close()


class UdpEchoProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class _Endpoint:
    def __init__(self, transport):
        self.sockname = transport.get_extra_info("sockname")
        self.transport = transport


async def serve_udp(loop, host, port, unix):
    if unix:
        raise ValueError("the udp mode serves on 127.0.0.1 only")
    transport, _ = await loop.create_datagram_endpoint(
        UdpEchoProtocol, local_addr=(host, port))
    return _Endpoint(transport)


async def serve_http_raw(loop, host, port, unix):
    return await serve_protocol(loop, host, port, unix, HttpProtocol)


class _AiohttpServer:
    def __init__(self, runner, sockname):
        self.runner = runner
        self.sockname = sockname


async def serve_http_aiohttp(loop, host, port, unix):
    from aiohttp import web

    async def hello(request):
        return web.Response(body=HTTP_BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.UnixSite(runner, unix) if unix else web.TCPSite(runner, host, port)
    await site.start()
    return _AiohttpServer(runner, runner.addresses[0])


MODES = {
    "streams": serve_streams,
    "protocol": serve_protocol,
    "buffered": serve_buffered,
    "sock": serve_sock,
    "udp": serve_udp,
    "http-raw": serve_http_raw,
    "http-aiohttp": serve_http_aiohttp,
}
ECHO_MODES = ("streams", "protocol", "buffered", "sock")
HTTP_MODES = ("http-raw", "http-aiohttp")


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.new_event_loop()
    return importlib.import_module(name).new_event_loop()


def die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("loop")
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--unix", default=None)
    args = ap.parse_args()

    die_with_parent()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    bytearray(4 << 20)  # allocate + free 4 MiB: raises glibc's mmap threshold, for every loop

    try:
        loop = new_loop(args.loop)
    except Exception as exc:  # noqa: BLE001 - not installed or broken: say so
        emit({"error": f"cannot create the {args.loop} loop: {type(exc).__name__}: {exc}",
              "type": type(exc).__name__})
        return 2
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(exception_handler)
    if args.unix:
        try:
            os.unlink(args.unix)
        except FileNotFoundError:
            pass
    try:
        server = loop.run_until_complete(
            MODES[args.mode](loop, args.host, args.port, args.unix))
    except Exception as exc:  # noqa: BLE001 - e.g. NotImplementedError from a loop
        emit({"error": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__})
        return 2
    if args.unix:
        where = {"unix": args.unix}
    else:
        sockname = getattr(server, "sockname", None) or server.sockets[0].getsockname()
        where = {"port": sockname[1]}
    gc.collect()
    emit({**where, "pid": os.getpid(), "loop": args.loop, "mode": args.mode})
    loop.call_later(args.max_seconds, loop.stop)
    loop.run_forever()
    sys.stdout.flush()
    os._exit(0)  # no teardown: connections may still be open; nothing to flush


if __name__ == "__main__":
    sys.exit(main())
