"""10,000 concurrent TCP connections, each exchanging a message, all closed at the
end: once with the server in the loop under test, once with the clients in it.

Why a helper process: the fd limit here is 20,000 (soft = hard), and a connection
whose both ends live in this process costs 2 fds, so 10,000 in-process connections
(20,000 fds plus the interpreter's own) cannot fit. The other end therefore runs in
a child process (plain selectors code), and the loop under test holds all 10,000
sockets of its side at once. The child is started with subprocess.Popen (ringloop
has no subprocess support yet) and polled from the loop."""

import asyncio
import resource
import subprocess
import sys

import pytest
from net_helpers import run

N = 10_000
CONNECT_CONCURRENCY = 500  # connects in flight at once (stays below the backlog)
BACKLOG = 4096

# The child processes are plain selectors (epoll) code, not asyncio: they only have
# to be a fast, simple peer, so that the time goes to the loop under test.

# Child: N clients against 127.0.0.1:<port>. Connects (at most <concurrency> in
# flight), holds all N open, then sends one line on each and waits for every echo,
# then closes everything and prints "ok <n>".
CLIENT_SCRIPT = r"""
import errno, selectors, socket, sys
port, n, concurrency = map(int, sys.argv[1:4])
sel = selectors.DefaultSelector()
socks = []
in_flight = connected = 0
while connected < n:
    while len(socks) < n and in_flight < concurrency:
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")
        sel.register(s, selectors.EVENT_WRITE)
        socks.append(s)
        in_flight += 1
    events = sel.select(timeout=30)
    if not events:
        sys.exit(f"timed out connecting ({connected} connected)")
    for key, _ in events:
        err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, "connect")
        sel.unregister(key.fileobj)
        in_flight -= 1
        connected += 1
# All N are connected at once; now one message each.
for i, s in enumerate(socks):
    s.send(b"hello %d\n" % i)
    sel.register(s, selectors.EVENT_READ, [i, b""])
remaining = n
while remaining:
    events = sel.select(timeout=30)
    if not events:
        sys.exit(f"timed out waiting for echoes ({remaining} missing)")
    for key, _ in events:
        data = key.fileobj.recv(100)
        if not data:
            sys.exit(f"EOF before the echo on connection {key.data[0]}")
        key.data[1] += data
        if key.data[1].endswith(b"\n"):
            if key.data[1] != b"hello %d\n" % key.data[0]:
                sys.exit(f"bad echo {key.data[1]!r} on connection {key.data[0]}")
            sel.unregister(key.fileobj)
            remaining -= 1
for s in socks:
    s.close()
print("ok", n, flush=True)
"""

# Child: an echo server on 127.0.0.1; prints its port; on stdin EOF prints the
# highest number of simultaneously open connections it saw, and exits.
SERVER_SCRIPT = r"""
import os, selectors, socket, sys
sel = selectors.DefaultSelector()
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(int(sys.argv[1]))
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ, "listen")
sel.register(0, selectors.EVENT_READ, "stdin")
print(ls.getsockname()[1], flush=True)
live = peak = 0
running = True
while running:
    for key, _ in sel.select():
        if key.data == "listen":
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, "conn")
                live += 1
                peak = max(peak, live)
        elif key.data == "stdin":
            if not os.read(0, 100):
                running = False
        else:
            c = key.fileobj
            try:
                data = c.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                c.sendall(data)  # a short line: fits in the socket buffer
            else:
                sel.unregister(c)
                c.close()
                live -= 1
print("peak", peak, flush=True)
"""


@pytest.fixture
def fd_limit():
    """Enough fds for N sockets plus headroom: raise the soft limit up to the hard
    one if needed (restored afterwards); skip only if the hard limit is too low."""
    need = N + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {need} fds needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _wait_process(proc):
    while proc.poll() is None:
        await asyncio.sleep(0.01)
    return proc.returncode


@pytest.mark.timeout(90)
def test_10k_connections_to_server_in_loop(loop, fd_limit):
    live = 0
    peak = 0
    messages = 0

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            nonlocal live, peak
            self.transport = transport
            live += 1
            peak = max(peak, live)

        def data_received(self, data):
            nonlocal messages
            messages += data.count(b"\n")
            self.transport.write(data)

        def connection_lost(self, exc):
            nonlocal live
            live -= 1

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=BACKLOG)
        port = server.sockets[0].getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLIENT_SCRIPT,
                str(port),
                str(N),
                str(CONNECT_CONCURRENCY),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            rc = await _wait_process(proc)
            out, err = proc.communicate()
            assert rc == 0, err.decode(errors="replace")[-3000:]
            assert out.split() == [b"ok", str(N).encode()]
            # The client closed everything: every server transport sees EOF and
            # closes (Echo's eof_received returns None).
            while live:
                await asyncio.sleep(0.01)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0)

    run(loop, main(), timeout=75)
    assert peak == N
    assert messages == N
    assert live == 0


@pytest.mark.timeout(90)
def test_10k_client_connections_from_loop(loop, fd_limit):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(BACKLOG)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    class Client(asyncio.Protocol):
        def __init__(self, i):
            self.i = i
            self.data = bytearray()
            self.echoed = loop.create_future()
            self.lost = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.data += data
            if self.data.endswith(b"\n") and not self.echoed.done():
                self.echoed.set_result(bytes(self.data))

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main(port):
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        clients = []

        async def connect(i):
            async with sem:
                _, p = await loop.create_connection(
                    lambda: Client(i), "127.0.0.1", port
                )
                clients.append(p)

        try:
            await asyncio.gather(*(connect(i) for i in range(N)))
            assert len(clients) == N
            # All N connections are open at once; now each exchanges a message.
            for p in clients:
                p.transport.write(b"hello %d\n" % p.i)
            for p in clients:
                assert await p.echoed == b"hello %d\n" % p.i
        finally:
            for p in clients:
                p.transport.close()
            for p in clients:
                await p.lost

    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read().decode(errors="replace")[
            -3000:
        ]
        run(loop, main(int(line)), timeout=75)
        proc.stdin.close()
        out = proc.stdout.read()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode(errors="replace")[
            -3000:
        ]
        assert out.split() == [b"peak", str(N).encode()]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if not f.closed:
                f.close()
