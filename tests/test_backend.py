"""Backend selection: RINGLOOP_BACKEND=io_uring|epoll, the automatic fallback to
epoll when io_uring is refused (tested for real under a seccomp filter that fails
io_uring_setup with EPERM, as Docker's default profile does: tests/c/no_uring.c),
its one log line, and basic I/O on each backend chosen explicitly.

ringloop-only: asyncio has no backends. The whole suite also runs on epoll
(`make test-epoll`); these tests pin the backend themselves."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

import ringloop

pytestmark = pytest.mark.ringloop_only(reason="ringloop's I/O backends")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _uring_available():
    env = dict(os.environ, RINGLOOP_BACKEND="io_uring")
    proc = subprocess.run(
        [sys.executable, "-c", "import ringloop; ringloop.new_event_loop().close()"],
        env=env, capture_output=True, timeout=60)
    return proc.returncode == 0


URING = _uring_available()
BACKENDS = [
    pytest.param("io_uring", marks=pytest.mark.skipif(
        not URING, reason="io_uring is unavailable on this machine")),
    "epoll",
]


@pytest.fixture
def backend_loop(request, monkeypatch):
    monkeypatch.setenv("RINGLOOP_BACKEND", request.param)
    loop = ringloop.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


async def _echo_round_trips(n=20):
    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for i in range(n):
        msg = b"%d:" % i + b"x" * (i * 997)
        writer.write(msg)
        await writer.drain()
        got.append(await reader.readexactly(len(msg)) == msg)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return all(got) and len(got) == n


def test_default_backend_is_io_uring_when_available(monkeypatch):
    monkeypatch.delenv("RINGLOOP_BACKEND", raising=False)
    loop = ringloop.new_event_loop()
    try:
        assert loop._backend == ("io_uring" if URING else "epoll")
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["bogus", "IO_URING", "uring", " epoll"])
def test_unknown_backend_raises_value_error(monkeypatch, value):
    monkeypatch.setenv("RINGLOOP_BACKEND", value)
    with pytest.raises(ValueError, match="RINGLOOP_BACKEND"):
        ringloop.new_event_loop()


@pytest.mark.parametrize("backend_loop", BACKENDS, indirect=True)
def test_backend_is_the_one_asked_for(backend_loop):
    expected = os.environ["RINGLOOP_BACKEND"]
    assert backend_loop._backend == expected
    setup = backend_loop._ring_info()["setup"]
    assert (setup == "epoll") == (expected == "epoll")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend_loop", BACKENDS, indirect=True)
def test_stream_echo(backend_loop):
    assert backend_loop.run_until_complete(_echo_round_trips())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend_loop", BACKENDS, indirect=True)
def test_sock_ops_readers_timers_and_wakeups(backend_loop):
    loop = backend_loop
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main():
        # sock_* both ways, a large sendall that must wait for the peer
        big = os.urandom(4 << 20)
        send = asyncio.ensure_future(loop.sock_sendall(a, big))
        got = bytearray()
        while len(got) < len(big):
            got += await loop.sock_recv(b, 1 << 16)
        await send
        # add_reader / add_writer
        readable = loop.create_future()
        loop.add_reader(b, lambda: readable.done() or readable.set_result(1))
        await loop.sock_sendall(a, b"ping")
        await readable
        loop.remove_reader(b)
        assert await loop.sock_recv(b, 10) == b"ping"
        writable = loop.create_future()
        loop.add_writer(a, lambda: writable.done() or writable.set_result(1))
        await writable
        loop.remove_writer(a)
        # a sleeping loop woken from another thread, a timer
        woken = loop.create_future()
        threading.Timer(0.01, loop.call_soon_threadsafe, (woken.set_result, 2)).start()
        await asyncio.sleep(0.001)
        return bytes(got) == big, await woken

    try:
        assert loop.run_until_complete(main()) == (True, 2)
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend_loop", BACKENDS, indirect=True)
def test_cancelled_receive_keeps_the_data(backend_loop):
    loop = backend_loop
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0)
        task.cancel()
        a.send(b"kept")
        with pytest.raises(asyncio.CancelledError):
            await task
        return await loop.sock_recv(b, 100)

    try:
        assert loop.run_until_complete(main()) == b"kept"
    finally:
        a.close()
        b.close()


# ---- the automatic fallback, under a seccomp filter -------------------------

FALLBACK = textwrap.dedent("""
    import asyncio, logging, sys
    sys.path.insert(0, {tests!r})
    import ringloop
    from test_backend import _echo_round_trips

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    logging.getLogger("ringloop").addHandler(Keep())

    backends = []
    for _ in range(3):
        loop = ringloop.new_event_loop()
        backends.append(loop._backend)
        ok = loop.run_until_complete(_echo_round_trips(5))
        loop.close()
        assert ok
    print(backends)
    print(len(records))
    for r in records:
        print(r.name, r.levelname, r.getMessage())
""")


@pytest.fixture(scope="module")
def no_uring(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("a C compiler is needed to build tests/c/no_uring.c")
    exe = tmp_path_factory.mktemp("no_uring") / "no_uring"
    subprocess.run([cc, "-O1", "-o", str(exe),
                    os.path.join(ROOT, "tests", "c", "no_uring.c")],
                   check=True, capture_output=True)
    return str(exe)


def _run_without_uring(no_uring, code, **env):
    full = {k: v for k, v in os.environ.items() if k != "RINGLOOP_BACKEND"}
    full.update(env)
    return subprocess.run([no_uring, sys.executable, "-c", code], env=full,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(150)
def test_fallback_to_epoll_logs_once(no_uring):
    code = FALLBACK.format(tests=os.path.join(ROOT, "tests"))
    proc = _run_without_uring(no_uring, code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['epoll', 'epoll', 'epoll']"
    assert lines[1] == "1"
    name, level, message = lines[2].split(" ", 2)
    assert (name, level) == ("ringloop", "WARNING")
    assert "io_uring is unavailable" in message and "epoll" in message
    assert "errno 1" in message  # EPERM, as the filter answers


@pytest.mark.timeout(150)
def test_forced_io_uring_without_io_uring_raises(no_uring):
    code = textwrap.dedent("""
        import ringloop
        try:
            ringloop.new_event_loop()
        except OSError as e:
            print(type(e).__name__, e.errno, e)
    """)
    proc = _run_without_uring(no_uring, code, RINGLOOP_BACKEND="io_uring")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PermissionError 1 ")
    assert "RINGLOOP_BACKEND=io_uring" in proc.stdout


@pytest.mark.timeout(150)
def test_forced_epoll_under_the_filter_does_not_log(no_uring):
    code = FALLBACK.format(tests=os.path.join(ROOT, "tests"))
    proc = _run_without_uring(no_uring, code, RINGLOOP_BACKEND="epoll")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:2] == ["['epoll', 'epoll', 'epoll']", "0"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend_loop", BACKENDS, indirect=True)
def test_socket_closed_under_a_pending_receive(backend_loop):
    # The fd number is reused at once; the old receive must neither steal the new
    # socket's data nor spin; it ends when cancelled, as on asyncio.
    loop = backend_loop
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 10))
        await asyncio.sleep(0.01)
        fd = b.fileno()
        b.close()
        c, d = socket.socketpair()
        c.setblocking(False)
        d.setblocking(False)
        try:
            reused = fd in (c.fileno(), d.fileno())
            c.send(b"to d")
            d.send(b"to c")
            got = await asyncio.gather(loop.sock_recv(c, 10), loop.sock_recv(d, 10))
            await asyncio.sleep(0.05)
            still_pending = not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return reused, got, still_pending
        finally:
            c.close()
            d.close()

    try:
        assert loop.run_until_complete(main()) == (True, [b"to c", b"to d"], True)
    finally:
        a.close()
