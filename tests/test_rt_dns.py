"""rt.resolve: getaddrinfo in C off the loop; the same answers and errors as
socket.getaddrinfo, on both loops."""

from __future__ import annotations

import asyncio
import socket

import pytest

from conftest import import_ringloop

CASES = [
    ("localhost", 80),
    ("127.0.0.1", "http"),
    ("::1", 0),
    (None, 8080, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    ("localhost", b"443", socket.AF_INET, socket.SOCK_STREAM),
    (b"127.0.0.1", None, 0, socket.SOCK_DGRAM),
    ("localhost", 80, 0, 0, 0, socket.AI_CANONNAME),
    ("nonexistent.invalid", 80),
    ("localhost", "no-such-service"),
    ("localhost", 80, 12345),
    (1234, 80),
    ("localhost", 1.5),
]


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - compared below
        return "err", type(exc), getattr(exc, "errno", None)


@pytest.fixture
def rt():
    return import_ringloop().rt


@pytest.mark.parametrize("args", CASES, ids=[repr(c) for c in CASES])
def test_same_as_socket_getaddrinfo(loop, rt, args):
    async def main():
        try:
            return "ok", await rt.resolve(*args)
        except Exception as exc:  # noqa: BLE001
            return "err", type(exc), getattr(exc, "errno", None)

    assert loop.run_until_complete(main()) == _outcome(socket.getaddrinfo, *args)


def test_loop_getaddrinfo_same_as_socket(loop):
    async def main():
        return await loop.getaddrinfo("localhost", "http", type=socket.SOCK_STREAM)

    assert loop.run_until_complete(main()) == socket.getaddrinfo(
        "localhost", "http", type=socket.SOCK_STREAM)


def test_many_concurrent_and_cancelled(loop, rt):
    async def main():
        tasks = [asyncio.ensure_future(rt.resolve("localhost", i)) for i in range(1, 201)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await rt.resolve("localhost", 1)
        return done

    done = loop.run_until_complete(main())
    for i, r in enumerate(done):
        if i % 2 == 0:
            assert isinstance(r, asyncio.CancelledError)
        else:
            assert r == socket.getaddrinfo("localhost", i + 1)
