"""Helpers for the real-peer integration tests (tests/test_peer_*.py).

- ``servers``: session-scoped fixtures running a real redis-server and a real
  PostgreSQL on loopback TCP and unix sockets, started once per test session and
  stopped at its end.
- ``fastapi_app``: the tiny FastAPI app that test_peer_uvicorn.py serves with uvicorn
  in a subprocess.
- ``run_on``: run a coroutine on a test's loop the way ``asyncio.run`` finishes
  (async generators and the default executor shut down), so that the conftest's
  fd/thread leak check sees only real leaks.
"""

from __future__ import annotations

import asyncio
import socket


# A guard against hangs, not a time limit on behaviour: every peer test finishes in
# a few seconds (ASan build included). A test still running after this is cancelled
# on its loop, so its connections are closed by its own clean-up code, and it fails
# saying so instead of running into pytest-timeout.
HANG_GUARD = 40.0


def run_on(loop, coro, *, what: str = "the test's main coroutine"):
    """Run ``coro`` to completion on ``loop`` (cancelled after HANG_GUARD seconds),
    then shut down its async generators and default executor as ``asyncio.run``
    does (the ``loop`` fixture closes the loop)."""
    try:
        return loop.run_until_complete(wait_for(coro, what, HANG_GUARD))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (for servers that
    cannot be told to pick one themselves: their start-up retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def wait_for(aw, what: str, timeout: float = 20.0):
    """``asyncio.wait_for`` with a message saying what was awaited: a hang in a peer
    test fails with that name instead of pytest-timeout's stack dump."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
