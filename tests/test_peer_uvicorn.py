"""uvicorn + FastAPI with the loop under test as uvicorn's loop.

uvicorn runs in a subprocess (it owns its loop: ``asyncio.run(...,
loop_factory=...)``) with ``--loop ringloop:new_event_loop`` (uvicorn imports a
"module:attr" loop option and calls it as a zero-argument loop factory), or
``--loop asyncio`` for the reference; the app is tests/peers/fastapi_app.py. The
client is httpx's AsyncClient on the test's loop of the same kind (httpx runs on
anyio's asyncio backend), over 127.0.0.1 TCP (uvicorn's own port choice, read from
its log) or a unix socket (``--uds``).

Shutdown: uvicorn installs its SIGINT/SIGTERM handlers with ``signal.signal`` (not
``loop.add_signal_handler``) and polls a flag from its main loop, so it needs nothing
from the loop for signals beyond waking up on timers. After a graceful shutdown it
restores the previous handlers and re-raises the signal it got: SIGINT ends as a
KeyboardInterrupt that uvicorn.main catches (exit status 0), SIGTERM kills the
process with the default action (status -SIGTERM). Both are checked after a complete
graceful shutdown (lifespan shutdown ran, "Finished server process" logged).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from peers import run_on

PEERS_DIR = Path(__file__).parent / "peers"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

LOOP_OPTION = {"asyncio": "asyncio", "ringloop": "ringloop:new_event_loop"}


def _expected_loop_class(kind: str) -> str:
    if kind == "asyncio":
        import asyncio as mod

        cls = mod.SelectorEventLoop
    else:
        import ringloop

        cls = ringloop.EventLoop
    return f"{cls.__module__}.{cls.__qualname__}"


class Uvicorn:
    """``python -m uvicorn`` serving fastapi_app:app in a subprocess."""

    def __init__(self, kind: str, tmp_path: Path, *, uds: str | None = None):
        self.kind = kind
        self.log = tmp_path / "uvicorn.log"
        self.marker = tmp_path / "lifespan.txt"
        argv = [
            sys.executable, "-m", "uvicorn",
            "--app-dir", str(PEERS_DIR),
            "--loop", LOOP_OPTION[kind],
            "--http", "h11",
            "--lifespan", "on",
            "--no-access-log",
            "--timeout-graceful-shutdown", "10",
        ]  # fmt: skip
        if uds is None:
            argv += ["--host", "127.0.0.1", "--port", "0"]
        else:
            argv += ["--uds", uds]
        argv.append("fastapi_app:app")
        env = dict(os.environ, PYTHONUNBUFFERED="1", RINGLOOP_PEER_MARKER=str(self.marker))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.address = self._wait_started()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def fail(self, why: str):
        tail = self.log_text()[-6000:]
        pytest.fail(f"uvicorn --loop {LOOP_OPTION[self.kind]}: {why}\n--- log ---\n{tail}", pytrace=False)

    def _wait_started(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        pattern = re.compile(r"Uvicorn running on (http://\S+|unix socket \S+)")
        while True:
            m = pattern.search(self.log_text())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                self.fail(f"exited with status {self.proc.returncode} during start-up")
            if time.monotonic() > deadline:
                self.kill()
                self.fail(f"not serving after {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def check_graceful_shutdown(self, returncode: int) -> None:
        log = self.log_text()
        if self.proc.returncode != returncode:
            self.fail(f"exit status {self.proc.returncode}, expected {returncode}")
        for line in ("Shutting down", "Application shutdown complete.", "Finished server process"):
            if line not in log:
                self.fail(f"{line!r} not logged: no graceful shutdown")
        if "Traceback" in log or "ERROR" in log:
            self.fail("errors logged")
        marks = self.marker.read_text().splitlines()
        assert marks == [f"startup {_expected_loop_class(self.kind)}", "shutdown"]


async def _wait_exit(server: Uvicorn) -> None:
    """Wait for the process to exit while the loop keeps running (the client's
    idle keep-alive connection is open: the server must close it)."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while not server.exited():
        if time.monotonic() > deadline:
            server.kill()
            server.fail(f"still running {STOP_TIMEOUT:.0f} s after the stop signal")
        await asyncio.sleep(0.05)


async def _exercise(client: httpx.AsyncClient, kind: str) -> None:
    r = await client.get("/info")
    assert r.status_code == 200
    assert r.json()["loop"] == _expected_loop_class(kind)

    r = await client.post("/items", json={"name": "n", "values": list(range(100))})
    assert r.status_code == 200
    assert r.json() == {"name": "n", "count": 100, "sum": 4950}
    r = await client.post("/items", json={"name": "n"})
    assert r.status_code == 422  # FastAPI's validation error, served normally

    body = os.urandom(4 * 1024 * 1024)
    r = await client.post("/upload", content=body)
    assert r.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    n, size = 300, 1000
    received = bytearray()
    async with client.stream("GET", "/stream", params={"n": n, "size": size}) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        async for piece in r.aiter_bytes():
            received += piece
    assert len(received) == n * size
    assert [bytes(received[i * size : i * size + 8]) for i in range(n)] == [
        f"{i:08d}".encode() for i in range(n)
    ]

    # Concurrent requests over several connections.
    results = await asyncio.gather(*(client.get("/info") for _ in range(50)))
    assert {r.status_code for r in results} == {200}


def test_uvicorn_fastapi_tcp_sigint(loop, loop_kind, tmp_path):
    server = Uvicorn(loop_kind, tmp_path)
    try:
        assert server.address.startswith("http://127.0.0.1:")

        async def main():
            async with httpx.AsyncClient(base_url=server.address, trust_env=False, timeout=30) as c:
                await _exercise(c, loop_kind)
                server.proc.send_signal(signal.SIGINT)
                await _wait_exit(server)
                with pytest.raises(httpx.ConnectError):
                    await c.get("/info")

        run_on(loop, main())
        server.check_graceful_shutdown(0)
    finally:
        server.kill()


def test_uvicorn_fastapi_unix_socket_sigterm(loop, loop_kind, tmp_path):
    path = str(tmp_path / "uvicorn.sock")
    server = Uvicorn(loop_kind, tmp_path, uds=path)
    try:
        assert server.address == f"unix socket {path}"

        async def main():
            transport = httpx.AsyncHTTPTransport(uds=path)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://uvicorn", trust_env=False, timeout=30
            ) as c:
                await _exercise(c, loop_kind)
            server.proc.send_signal(signal.SIGTERM)
            await _wait_exit(server)

        run_on(loop, main())
        server.check_graceful_shutdown(-signal.SIGTERM)
    finally:
        server.kill()
