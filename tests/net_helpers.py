"""Shared helpers for the networking behaviour tests (tests/test_net_*.py).

Everything runs on loopback (127.0.0.1, ::1) or on Unix sockets in tmp_path, and every
coroutine a test runs is bounded by ``run()``'s timeout so that a lost wake-up fails
the test instead of hanging it.  Tests never assert on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
import sys

import pytest

# Generous bound for one test's coroutine: nothing here should take more than a few
# seconds; the bound only turns a hang into a failure.
TIMEOUT = 30

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


def run(loop, coro, timeout=TIMEOUT):
    """Run ``coro`` on ``loop`` to completion, failing after ``timeout`` seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


@contextlib.contextmanager
def raises_exactly(exc_type, match=None):
    """pytest.raises that rejects subclasses: e.g. RuntimeError but not
    NotImplementedError (a RuntimeError subclass) from an unimplemented method."""
    with pytest.raises(exc_type, match=match) as info:
        yield info
    assert (
        type(info.value) is exc_type
    ), f"expected exactly {exc_type.__name__}, got {info.value!r}"


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()

requires_ipv6 = pytest.mark.skipif(
    not HAS_IPV6, reason="this host has no IPv6 loopback (::1 cannot be bound)"
)


def free_port_refused(family=socket.AF_INET, host="127.0.0.1"):
    """An address on which nothing listens: bound (so no one else takes the port
    while the socket lives) but not listening, so connecting is refused.

    Returns ``(sock, addr)``; the caller closes ``sock``."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s, s.getsockname()[:2]


class RecordingProtocol(asyncio.Protocol):
    """Records every callback in ``events`` (in order) and the received bytes in
    ``data``; futures resolve on connection_made / eof_received / connection_lost."""

    eof_result = None  # what eof_received returns

    def __init__(self, loop=None):
        loop = loop or asyncio.get_running_loop()
        self.loop = loop
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        assert isinstance(data, bytes), type(data)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_result

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)

    def pause_writing(self):
        self.paused += 1
        self.events.append("pause_writing")

    def resume_writing(self):
        self.resumed += 1
        self.events.append("resume_writing")

    def simple_events(self):
        """events with ("lost", exc) reduced to "lost" and pause/resume dropped."""
        out = []
        for e in self.events:
            if isinstance(e, tuple):
                out.append(e[0])
            elif e not in ("pause_writing", "resume_writing"):
                out.append(e)
        return out


class HalfCloseProtocol(RecordingProtocol):
    """eof_received returns True: the transport stays open for writing."""

    eof_result = True


async def wait_for_data(proto, n):
    """Wait until ``proto`` (a RecordingProtocol) has received at least n bytes."""
    while len(proto.data) < n:
        if proto.lost.done():
            raise AssertionError(
                f"connection lost after {len(proto.data)} of {n} bytes: "
                f"{proto.lost.result()!r}"
            )
        await asyncio.sleep(0.001)


async def tcp_pair(
    loop,
    host="127.0.0.1",
    client_cls=RecordingProtocol,
    server_cls=RecordingProtocol,
    **server_kwargs,
):
    """A server on ``host`` and one connection to it: returns
    ``(server, client_transport, client_protocol, server_protocol)`` once both ends
    have seen connection_made."""
    accepted = []

    def factory():
        p = server_cls(loop)
        accepted.append(p)
        return p

    server = await loop.create_server(factory, host, 0, **server_kwargs)
    addr = server.sockets[0].getsockname()
    tr, pr = await loop.create_connection(lambda: client_cls(loop), host, addr[1])
    while not accepted:
        await asyncio.sleep(0.001)
    await accepted[0].made
    return server, tr, pr, accepted[0]


async def close_pair(server, *transports):
    """Close transports and the server and wait until everything is released."""
    for t in transports:
        if t is not None:
            t.close()
    server.close()
    await server.wait_closed()
    # Let connection_lost callbacks (scheduled with call_soon) run.
    for _ in range(3):
        await asyncio.sleep(0)


# ------------------------------------------------------------------ bulk data

CHUNK = 65521  # a prime: chunk boundaries never line up with kernel/loop buffers
_BASE = bytes((i * 7 + 3) & 0xFF for i in range(CHUNK - 8))


def pattern_chunk(i):
    """Chunk ``i`` of the deterministic test stream: its index, then fixed filler.
    Lost, duplicated or reordered chunks change the stream digest."""
    return struct.pack(">Q", i) + _BASE


def pattern_stream(total):
    """Yield chunks (bytes) of the deterministic stream, ``total`` bytes in all."""
    i = 0
    sent = 0
    while sent < total:
        c = pattern_chunk(i)
        if sent + len(c) > total:
            c = c[: total - sent]
        yield c
        sent += len(c)
        i += 1


def pattern_digest(total):
    h = hashlib.sha1()
    for c in pattern_stream(total):
        h.update(c)
    return h.hexdigest()


class DigestSink:
    """Accumulates a running digest and byte count of received data."""

    def __init__(self):
        self.h = hashlib.sha1()
        self.n = 0

    def update(self, data):
        self.h.update(data)
        self.n += len(data)

    def hexdigest(self):
        return self.h.hexdigest()
