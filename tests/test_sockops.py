"""The loop's sock_* methods, beyond the shared networking suite: cancellation of
every call while it is pending, many times over and with the data or connection
arriving in the same step, without losing anything; errors against what stock
asyncio raises for the same call; large transfers; datagram addresses for IPv4,
IPv6 and Unix sockets (named, unnamed, abstract); sendfile's native and fallback
paths and the file position after a cancellation; closing a loop with operations
in flight; SystemExit/KeyboardInterrupt raised while a call completes.

The ringloop-only part checks how the calls wait (a direct ring operation on a
DEFER_TASKRUN ring, a readiness poll elsewhere), that every operation lets go of
its resources, and runs this file and test_fdwatch.py again under the fallback
ring setups, where completions arrive at other moments."""

from __future__ import annotations

import array
import asyncio
import errno
import hashlib
import io
import os
import socket
import subprocess
import sys

import pytest

TIMEOUT = 30
HERE = os.path.dirname(os.path.abspath(__file__))


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def nb(*socks):
    for s in socks:
        s.setblocking(False)
    return socks


@pytest.fixture
def tcp_pair():
    lsock = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(lsock.getsockname(), timeout=5)
    s, _ = lsock.accept()
    lsock.close()
    nb(c, s)
    yield c, s
    c.close()
    s.close()


@pytest.fixture
def udp_pair():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for x in (a, b):
        x.bind(("127.0.0.1", 0))
    nb(a, b)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener():
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    lsock.setblocking(False)
    yield lsock
    lsock.close()


async def pending(task, n=3):
    """Let `task` reach its wait (a few iterations), and check it did."""
    for _ in range(n):
        await asyncio.sleep(0)
    assert not task.done()


def drain(sock):
    """Everything sock has queued right now (non-blocking)."""
    out = bytearray()
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out)
        if not data:
            return bytes(out)
        out += data


def asyncio_outcome(coro_fn):
    """The exception type (or result) stock asyncio gives for coro_fn(loop)."""
    lp = asyncio.SelectorEventLoop()
    try:
        return lp.run_until_complete(coro_fn(lp))
    except Exception as exc:
        return type(exc)
    finally:
        lp.close()


# ------------------------------------------------------------ cancellation


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
@pytest.mark.parametrize("arrives", ["before_cancel", "after_cancel"])
def test_cancelled_stream_receive_never_loses_data(loop, tcp_pair, method, arrives):
    # 100 rounds: a receive waits, the peer's bytes arrive in the same step as
    # the cancellation (or just after it), and the next receive must see them.
    c, s = tcp_pair

    async def main():
        expected = bytearray()
        got = bytearray()
        for i in range(100):
            buf = bytearray(64)
            if method == "sock_recv":
                t = loop.create_task(loop.sock_recv(s, 64))
            else:
                t = loop.create_task(loop.sock_recv_into(s, buf))
            await pending(t)
            chunk = b"<%d>" % i
            expected += chunk
            if arrives == "before_cancel":
                c.send(chunk)
                t.cancel()
            else:
                t.cancel()
                c.send(chunk)
            with pytest.raises(asyncio.CancelledError):
                await t
            while len(got) < len(expected):
                got += await loop.sock_recv(s, 4096)
        assert bytes(got) == bytes(expected)
        assert drain(s) == b""

    run(loop, main())


@pytest.mark.parametrize("method", ["sock_recvfrom", "sock_recvfrom_into"])
def test_cancelled_datagram_receive_never_loses_datagrams(loop, udp_pair, method):
    a, b = udp_pair

    async def main():
        got = []
        for i in range(100):
            if method == "sock_recvfrom":
                t = loop.create_task(loop.sock_recvfrom(b, 100))
            else:
                t = loop.create_task(loop.sock_recvfrom_into(b, bytearray(100)))
            await pending(t)
            a.sendto(b"d%d" % i, b.getsockname())
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            data, addr = await loop.sock_recvfrom(b, 100)
            assert addr == a.getsockname()
            got.append(data)
        assert got == [b"d%d" % i for i in range(100)]

    run(loop, main())


def test_cancelled_accept_never_loses_connections(loop, listener):
    async def main():
        clients = []
        try:
            for i in range(50):
                t = loop.create_task(loop.sock_accept(listener))
                await pending(t)
                c = socket.socket()
                c.connect(listener.getsockname())  # lands in the backlog now
                clients.append(c)
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
                conn, addr = await loop.sock_accept(listener)
                with conn:
                    assert addr == c.getsockname()
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing left over
        finally:
            for c in clients:
                c.close()

    run(loop, main())


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_result_of_a_task_cancelled_as_it_completes_is_kept(loop, tcp_pair, method):
    # The data arrives, and a callback queued before the loop looks at the
    # socket cancels the task (what asyncio.wait_for's timeout does). asyncio
    # has not read the socket yet at that point; ringloop's ring may have:
    # the bytes must reach the next receive, in order.
    c, s = tcp_pair

    async def main():
        buf = bytearray(100)
        if method == "sock_recv":
            t = loop.create_task(loop.sock_recv(s, 100))
        else:
            t = loop.create_task(loop.sock_recv_into(s, buf))
        await pending(t)

        def arrive_then_cancel_soon():
            c.send(b"raced-data")
            loop.call_soon(t.cancel)

        loop.call_soon(arrive_then_cancel_soon)
        with pytest.raises(asyncio.CancelledError):
            await t
        c.send(b"|later")
        assert await loop.sock_recv(s, 3) == b"rac"
        buf2 = bytearray(4)
        assert await loop.sock_recv_into(s, buf2) == 4 and buf2 == b"ed-d"
        rest = b""
        while len(rest) < 9:
            rest += await loop.sock_recv(s, 100)
        assert rest == b"ata|later"

    run(loop, main())


def test_datagram_of_a_task_cancelled_as_it_completes_is_kept(loop, udp_pair):
    a, b = udp_pair

    async def main():
        t = loop.create_task(loop.sock_recvfrom_into(b, bytearray(10)))
        await pending(t)

        def arrive_then_cancel_soon():
            a.sendto(b"one-datagram", b.getsockname())
            a.sendto(b"two", b.getsockname())
            loop.call_soon(t.cancel)

        loop.call_soon(arrive_then_cancel_soon)
        with pytest.raises(asyncio.CancelledError):
            await t
        # the datagram the cancelled call read (truncated to its 10 bytes,
        # as the kernel did) comes first, whole datagrams after it
        first = await loop.sock_recvfrom(b, 100)
        assert first[1] == a.getsockname()
        assert first[0] in (b"one-datag", b"one-datagr", b"one-datagram")
        assert await loop.sock_recvfrom(b, 100) == (b"two", a.getsockname())

    run(loop, main())


@pytest.mark.ringloop_only(
    reason="asyncio's _sock_accept accepts into the cancelled future "
    "(InvalidStateError, connection lost)")
def test_connection_of_a_task_cancelled_as_it_completes_is_kept(loop, listener):
    async def main():
        t = loop.create_task(loop.sock_accept(listener))
        await pending(t)
        c = socket.socket()
        try:
            def arrive_then_cancel_soon():
                c.connect(listener.getsockname())
                loop.call_soon(t.cancel)

            loop.call_soon(arrive_then_cancel_soon)
            with pytest.raises(asyncio.CancelledError):
                await t
            conn, addr = await loop.sock_accept(listener)
            with conn:
                assert addr == c.getsockname()
                assert conn.getblocking() is False
        finally:
            c.close()

    run(loop, main())


def test_wait_for_timeout_on_recv_keeps_data(loop, tcp_pair):
    # asyncio.wait_for cancels the receive from a timer; bytes sent about then
    # stay for the next call.
    c, s = tcp_pair

    async def main():
        for i in range(30):
            loop.call_later(0.002, c.send, b"x%d;" % i)
            try:
                data = await asyncio.wait_for(loop.sock_recv(s, 100), 0.002)
            except asyncio.TimeoutError:
                data = b""
            while not data.endswith(b";"):
                data += await loop.sock_recv(s, 100)
            assert data == b"x%d;" % i

    run(loop, main())


def test_cancelled_sendall_then_more_data_in_order(loop, tcp_pair):
    c, s = tcp_pair
    payload = os.urandom(1 << 20) * 16

    async def main():
        t = loop.create_task(loop.sock_sendall(c, payload))
        await pending(t)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        reader = loop.create_task(read_to_eof(loop, s))
        await loop.sock_sendall(c, b"TAIL")
        c.shutdown(socket.SHUT_WR)
        got = await reader
        assert got.endswith(b"TAIL")
        sent = len(got) - 4
        assert 0 < sent < len(payload)
        assert got[:sent] == payload[:sent]

    run(loop, main())


async def read_to_eof(loop, sock):
    got = bytearray()
    while data := await loop.sock_recv(sock, 1 << 20):
        got += data
    return bytes(got)


def test_cancelled_connect_leaves_loop_usable(loop, listener):
    async def main():
        c = socket.socket()
        c.setblocking(False)
        try:
            t = loop.create_task(loop.sock_connect(c, listener.getsockname()))
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        finally:
            c.close()
        c = socket.socket()
        c.setblocking(False)
        with c:
            await loop.sock_connect(c, listener.getsockname())
            conn, _ = await loop.sock_accept(listener)
            conn.close()

    run(loop, main())


@pytest.mark.ringloop_only(reason="asyncio's reader stays and takes the data")
def test_closed_coroutine_cancels_its_operation(loop, tcp_pair):
    # A sock_recv coroutine closed while it waits (nobody will take its
    # result) must not take the data either.
    c, s = tcp_pair

    async def main():
        coro = loop.sock_recv(s, 100)
        fut = coro.send(None)  # runs up to the wait, returns the future
        assert isinstance(fut, asyncio.Future)
        coro.close()
        assert fut.cancelled()
        c.send(b"kept")
        assert await loop.sock_recv(s, 100) == b"kept"

    run(loop, main())


# ------------------------------------------------------------ errors: as asyncio


def test_errors_match_asyncio(loop, tmp_path):
    # Each call runs on a stock asyncio loop first; ringloop must raise the same.
    def cases(lp):
        async def recv_closed(lp):
            s, t = socket.socketpair()
            t.close()
            s.close()
            return await lp.sock_recv(s, 10)

        async def sendall_shut(lp):
            s, t = socket.socketpair()
            with s, t:
                s.setblocking(False)
                s.shutdown(socket.SHUT_WR)
                return await lp.sock_sendall(s, b"x")

        async def accept_not_listening(lp):
            with socket.socket() as s:
                s.setblocking(False)
                return await lp.sock_accept(s)

        async def connect_missing_unix(lp):
            with socket.socket(socket.AF_UNIX) as s:
                s.setblocking(False)
                return await lp.sock_connect(s, str(tmp_path / "nope"))

        async def connect_bad_address(lp):
            with socket.socket() as s:
                s.setblocking(False)
                return await lp.sock_connect(s, ("127.0.0.1", "not-a-port", 3))

        async def sendto_no_address(lp):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                return await lp.sock_sendto(s, b"x", None)

        async def recv_negative(lp):
            a, b = socket.socketpair()
            with a, b:
                b.setblocking(False)
                return await lp.sock_recv(b, -1)

        async def recvfrom_into_too_much(lp):
            a, b = socket.socketpair(type=socket.SOCK_DGRAM)
            with a, b:
                b.setblocking(False)
                return await lp.sock_recvfrom_into(b, bytearray(4), 10)

        async def recv_into_readonly(lp):
            a, b = socket.socketpair()
            with a, b:
                b.setblocking(False)
                return await lp.sock_recv_into(b, b"readonly")

        return [recv_closed, sendall_shut, accept_not_listening,
                connect_missing_unix, connect_bad_address, sendto_no_address,
                recv_negative, recvfrom_into_too_much, recv_into_readonly]

    for case in cases(None):
        expected = asyncio_outcome(case)
        assert isinstance(expected, type) and issubclass(expected, Exception), case
        with pytest.raises(expected):
            loop.run_until_complete(case(loop))


def test_pending_recv_fails_on_reset(loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        t = loop.create_task(loop.sock_recv_into(s, bytearray(10)))
        await pending(t)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()
        with pytest.raises(ConnectionResetError) as info:
            await t
        assert info.value.errno == errno.ECONNRESET

    run(loop, main())


def test_pending_sendall_fails_when_peer_resets(loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        t = loop.create_task(loop.sock_sendall(c, b"z" * (32 << 20)))
        await pending(t)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.close()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            await t

    run(loop, main())


def test_pending_recv_sees_local_shutdown(loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        t = loop.create_task(loop.sock_recv(s, 10))
        await pending(t)
        s.shutdown(socket.SHUT_RD)
        assert await t == b""

    run(loop, main())


def test_zero_length_calls(loop, tcp_pair, udp_pair):
    c, s = tcp_pair
    a, b = udp_pair

    async def main():
        assert await loop.sock_recv(s, 0) == b""
        assert await loop.sock_sendall(c, b"") is None
        assert await loop.sock_recv_into(s, bytearray()) == 0
        assert await loop.sock_sendto(a, b"", b.getsockname()) == 0
        assert await loop.sock_recvfrom(b, 10) == (b"", a.getsockname())

    run(loop, main())


# ------------------------------------------------------------ large transfers


def test_big_sendall_and_recv_into(loop, tcp_pair):
    c, s = tcp_pair
    payload = os.urandom(1 << 20) * 48  # 48 MiB
    digest = hashlib.sha256(payload).hexdigest()

    async def main():
        sender = loop.create_task(loop.sock_sendall(c, memoryview(payload)))
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        h = hashlib.sha256()
        n = 0
        while n < len(payload):
            k = await loop.sock_recv_into(s, view)
            assert k > 0
            h.update(view[:k])
            n += k
        assert await sender is None
        assert h.hexdigest() == digest

    run(loop, main(), timeout=60)


def test_recv_into_typed_buffer(loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        arr = array.array("i", [0] * 4)
        t = loop.create_task(loop.sock_recv_into(s, arr))
        await pending(t)
        c.send(array.array("i", [1, 2, 3, 4]).tobytes())
        n = await t
        while n < 16:
            n += await loop.sock_recv_into(s, memoryview(arr).cast("B")[n:])
        assert arr.tolist() == [1, 2, 3, 4]

    run(loop, main())


# ------------------------------------------------------------ datagrams and addresses


def _has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _unix_dgram_cases(tmp_path):
    yield "named", str(tmp_path / "sender.sock")
    yield "abstract", b"\0ringloop-test-%d" % os.getpid()
    yield "unnamed", None


def _family_cases():
    return [
        pytest.param(socket.AF_INET, "127.0.0.1", id="ipv4"),
        pytest.param(
            socket.AF_INET6, "::1", id="ipv6",
            marks=pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")),
    ]


@pytest.mark.parametrize("family,host", _family_cases())
@pytest.mark.parametrize("method", ["sock_recvfrom", "sock_recvfrom_into"])
def test_datagram_address_as_socket_module(loop, family, host, method):
    a = socket.socket(family, socket.SOCK_DGRAM)
    b = socket.socket(family, socket.SOCK_DGRAM)
    with a, b:
        a.bind((host, 0))
        b.bind((host, 0))
        nb(a, b)

        async def main():
            if method == "sock_recvfrom":
                t = loop.create_task(loop.sock_recvfrom(b, 100))
            else:
                buf = bytearray(100)
                t = loop.create_task(loop.sock_recvfrom_into(b, buf))
            await pending(t)
            a.sendto(b"first", b.getsockname())
            a.sendto(b"second", b.getsockname())
            res = await t
            b.setblocking(True)
            _, expected_addr = b.recvfrom(100)  # the socket module's answer
            assert res[1] == expected_addr == a.getsockname()
            if method == "sock_recvfrom":
                assert res[0] == b"first"
            else:
                assert res[0] == 5 and buf[:5] == b"first"

        run(loop, main())


@pytest.mark.parametrize("kind", ["named", "abstract", "unnamed"])
def test_unix_datagram_addresses(loop, tmp_path, kind):
    rpath = str(tmp_path / "r.sock")
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with r, w:
        r.bind(rpath)
        name = dict(_unix_dgram_cases(tmp_path))[kind]
        if name is not None:
            w.bind(name)
        nb(r, w)

        async def main():
            t = loop.create_task(loop.sock_recvfrom(r, 100))
            await pending(t)
            await loop.sock_sendto(w, b"one", rpath)
            await loop.sock_sendto(w, b"two", rpath)
            data, addr = await t
            r.setblocking(True)
            data2, expected = r.recvfrom(100)
            assert (data, data2) == (b"one", b"two")
            assert addr == expected
            if kind == "named":
                assert addr == name
            elif kind == "abstract":
                assert addr == name

        run(loop, main())


def test_unix_stream_accept_addresses(loop, tmp_path):
    path = str(tmp_path / "l.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with lsock:
        lsock.bind(path)
        lsock.listen(4)
        lsock.setblocking(False)

        async def main():
            for client_name in (None, str(tmp_path / "c.sock"), b"\0rl-cli-%d" % os.getpid()):
                t = loop.create_task(loop.sock_accept(lsock))
                await pending(t)
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                with c:
                    if client_name is not None:
                        c.bind(client_name)
                    c.connect(path)
                    conn, addr = await t
                    with conn:
                        assert addr == (client_name if client_name else "")
                        assert conn.getblocking() is False
                        assert conn.family == socket.AF_UNIX
                        assert conn.type == socket.SOCK_STREAM

        run(loop, main())


def test_sendto_waits_for_space(loop, tmp_path):
    # A Unix datagram receiver that does not read: sendto has to wait, and
    # goes through once the receiver drains its queue.
    rpath = str(tmp_path / "r.sock")
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with r, w:
        r.bind(rpath)
        nb(r, w)

        async def main():
            sent = 0
            while True:
                try:
                    w.sendto(b"%06d" % sent, rpath)
                    sent += 1
                except BlockingIOError:
                    break
            t = loop.create_task(loop.sock_sendto(w, b"LAST", rpath))
            await pending(t)
            got = []
            while len(got) < sent:
                got.append(await loop.sock_recv(r, 100))
            assert await t == 4
            assert await loop.sock_recv(r, 100) == b"LAST"
            assert got == [b"%06d" % i for i in range(sent)]

        run(loop, main())


# ------------------------------------------------------------ sendfile


@pytest.fixture
def data_file(tmp_path):
    content = os.urandom((1 << 20) * 24 + 777)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f, content


def test_sendfile_cancelled_sends_a_prefix(loop, tcp_pair, data_file):
    c, s = tcp_pair
    f, content = data_file

    async def main():
        f.seek(100)
        t = loop.create_task(loop.sock_sendfile(c, f, 100))
        await pending(t)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        c.shutdown(socket.SHUT_WR)
        got = await read_to_eof(loop, s)
        assert 0 < len(got) < len(content) - 100
        assert got == content[100 : 100 + len(got)]
        # asyncio leaves the file position alone when cancelled
        assert f.tell() == 100

    run(loop, main())


def test_sendfile_fallback_for_file_like_objects(loop, tcp_pair):
    c, s = tcp_pair
    content = os.urandom(300_000)

    async def main():
        bio = io.BytesIO(content)
        sender = loop.create_task(loop.sock_sendfile(c, bio, 1000, 200_000))
        got = bytearray()
        while len(got) < 200_000:
            got += await loop.sock_recv(s, 1 << 20)
        assert await sender == 200_000
        assert bytes(got) == content[1000:201_000]
        assert bio.tell() == 201_000
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(c, io.BytesIO(content), fallback=False)

    run(loop, main())


def test_sendfile_empty_file(loop, tcp_pair, tmp_path):
    c, s = tcp_pair
    (tmp_path / "empty").write_bytes(b"")

    async def main():
        with open(tmp_path / "empty", "rb") as f:
            assert await loop.sock_sendfile(c, f) == 0
            assert f.tell() == 0

    run(loop, main())


# ------------------------------------------------------------ lifetime and interrupts


@pytest.mark.expect_handler_calls
def test_close_loop_with_operations_pending(loop, tcp_pair, listener, udp_pair, exc_contexts):
    c, s = tcp_pair
    a, b = udp_pair

    async def start():
        tasks = [
            loop.create_task(loop.sock_recv(c, 10)),  # s never sends
            loop.create_task(loop.sock_recv_into(c, bytearray(10))),
            loop.create_task(loop.sock_recvfrom(b, 10)),
            loop.create_task(loop.sock_accept(listener)),
            loop.create_task(loop.sock_sendall(c, b"q" * (64 << 20))),
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        return tasks

    tasks = run(loop, start())
    assert [t for t in tasks if t.done()] == []
    loop.close()
    # The sockets are still ours and usable; nothing was consumed by the loop.
    a.sendto(b"after", b.getsockname())
    b.setblocking(True)
    assert b.recvfrom(10)[0] == b"after"
    del tasks
    exc_contexts.clear()  # "Task was destroyed but it is pending!"


class _FlakyDatagramSocket:
    """A UDP socket whose sendto would block once, then raises `exc` once."""

    def __init__(self, sock, exc):
        self._sock = sock
        self._exc = exc
        self.calls = 0
        self.family = sock.family

    def fileno(self):
        return self._sock.fileno()

    def gettimeout(self):
        return self._sock.gettimeout()

    def sendto(self, *args):
        self.calls += 1
        if self.calls == 1:
            raise BlockingIOError
        if self.calls == 2:
            raise self._exc
        return self._sock.sendto(*args)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_exit_exception_while_completing_propagates(loop, udp_pair, exc):
    # As in asyncio: the exception leaves run_until_complete; the call keeps
    # waiting and completes when the loop runs again.
    a, b = udp_pair
    flaky = _FlakyDatagramSocket(a, exc())
    task = loop.create_task(loop.sock_sendto(flaky, b"hello", b.getsockname()))
    with pytest.raises(exc):
        loop.run_until_complete(task)
    assert not task.done()
    assert loop.run_until_complete(task) == 5
    assert flaky.calls == 3
    assert b.recvfrom(10) == (b"hello", a.getsockname())


def test_mock_like_socket_for_sendto(loop, udp_pair):
    # CPython's test_sendto_blocking pattern: only fileno/gettimeout/sendto.
    a, b = udp_pair
    flaky = _FlakyDatagramSocket(a, BlockingIOError())

    async def main():
        assert await loop.sock_sendto(flaky, b"mocked", b.getsockname()) == 6
        assert await loop.sock_recvfrom(b, 10) == (b"mocked", a.getsockname())

    run(loop, main())


# ------------------------------------------------------------ name resolution


def test_numeric_getaddrinfo_needs_no_thread(loop):
    async def main():
        for host, port in [("127.0.0.1", 80), ("::1", "443"), (None, 0), (b"10.1.2.3", None)]:
            got = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            assert got == socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        assert await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV) == ("127.0.0.1", "80")

    run(loop, main())
    if not isinstance(loop, asyncio.SelectorEventLoop):
        assert loop._default_executor is None


def test_getaddrinfo_in_debug_mode_logs_as_asyncio(loop, caplog):
    loop.set_debug(True)
    caplog.set_level("DEBUG", logger="asyncio")
    got = run(loop, loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))
    assert got == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert any("Getting address info" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------ ringloop only


ringloop_only = pytest.mark.ringloop_only(reason="how ringloop waits")


def _op_of(task):
    return task._fut_waiter._rl_op


@ringloop_only
def test_how_each_call_waits(loop, tcp_pair, udp_pair, listener):
    c, s = tcp_pair
    a, b = udp_pair
    defer = loop._ring_info()["setup"] == "single_issuer|defer_taskrun"  # epoll: polled

    async def main():
        cases = {
            "recv": (loop.sock_recv(s, 10), defer),
            "recv_into": (loop.sock_recv_into(s, bytearray(10)), defer),
            "recvfrom": (loop.sock_recvfrom(b, 10), defer),
            "accept": (loop.sock_accept(listener), defer),
            "sendall": (loop.sock_sendall(c, b"w" * (64 << 20)), True),
        }
        for name, (coro, direct) in cases.items():
            t = loop.create_task(coro)
            await pending(t)
            op = _op_of(t)
            assert op.direct is direct, name
            assert not op.done
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            for _ in range(3):
                await asyncio.sleep(0)
            assert op.done, name  # the kernel let go: resources released
        assert loop._ring_info()["inflight"] == 1  # the doorbell only

    run(loop, main())


@ringloop_only
def test_completed_operations_release_everything(loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        buf = bytearray(8)
        t = loop.create_task(loop.sock_recv_into(s, buf))
        await pending(t)
        op = _op_of(t)
        c.send(b"12345678")
        assert await t == 8
        assert op.done
        buf.extend(b"resizable again")  # no buffer export left behind
        assert loop._ring_info()["inflight"] == 1

    run(loop, main())


@ringloop_only
@pytest.mark.skipif(os.environ.get("RINGLOOP_SOCKOPS_SUBRUN") == "1",
                    reason="already inside the fallback-ring run")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("setup", ["coop_taskrun", "plain"])
def test_files_again_under_fallback_ring_setups(setup):
    env = dict(os.environ, RINGLOOP_RING_SETUP=setup, RINGLOOP_SOCKOPS_SUBRUN="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "ringloop",
         os.path.join(HERE, "test_sockops.py"), os.path.join(HERE, "test_fdwatch.py")],
        env=env, capture_output=True, text=True, timeout=280, cwd=os.path.dirname(HERE),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]
