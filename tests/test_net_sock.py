"""The loop's low-level socket API: sock_recv / sock_recv_into / sock_sendall /
sock_accept / sock_connect (IPv4, IPv6, Unix, errors), sock_recvfrom /
sock_recvfrom_into / sock_sendto (UDP), sock_sendfile and loop.sendfile, blocking
sockets in debug mode, and cancellation of every call while it is pending: nothing
the kernel delivered may be lost."""

import asyncio
import contextlib
import errno
import os
import socket

import pytest
from net_helpers import (
    RecordingProtocol,
    free_port_refused,
    raises_exactly,
    requires_ipv6,
    run,
    wait_for_data,
)


@contextlib.contextmanager
def nb_socketpair(family=socket.AF_UNIX, type=socket.SOCK_STREAM):
    a, b = socket.socketpair(family, type)
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@contextlib.contextmanager
def listener(family=socket.AF_INET, host="127.0.0.1", backlog=16):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        s.listen(backlog)
        s.setblocking(False)
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def tcp_socket_pair():
    """Two connected non-blocking TCP sockets on 127.0.0.1 (plain calls)."""
    with listener() as lsock:
        c = socket.create_connection(lsock.getsockname(), timeout=5)
        lsock.setblocking(True)
        s, _ = lsock.accept()
    c.setblocking(False)
    s.setblocking(False)
    try:
        yield c, s
    finally:
        c.close()
        s.close()


@contextlib.contextmanager
def udp_pair(family=socket.AF_INET, host="127.0.0.1"):
    a = socket.socket(family, socket.SOCK_DGRAM)
    b = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for s in (a, b):
            s.bind((host, 0))
            s.setblocking(False)
        yield a, b
    finally:
        a.close()
        b.close()


async def recv_all(loop, sock, n):
    """sock_recv until n bytes arrived (or EOF)."""
    buf = bytearray()
    while len(buf) < n:
        data = await loop.sock_recv(sock, min(n - len(buf), 1 << 20))
        if not data:
            break
        buf += data
    return bytes(buf)


async def settle():
    """Give the loop a few iterations (and the kernel a moment)."""
    for _ in range(3):
        await asyncio.sleep(0.005)


# ------------------------------------------------------------------ recv / send


def test_sock_recv_and_sendall(loop):
    async def main():
        with nb_socketpair() as (a, b):
            await loop.sock_sendall(a, b"hello")
            assert await loop.sock_recv(b, 100) == b"hello"
            # A pending recv is completed when data arrives.
            t = loop.create_task(loop.sock_recv(b, 100))
            await settle()
            assert not t.done()
            assert await loop.sock_sendall(a, bytearray(b"later")) is None
            assert await t == b"later"
            # recv returns at most n bytes; the rest stays.
            await loop.sock_sendall(a, memoryview(b"0123456789"))
            await settle()
            assert await loop.sock_recv(b, 4) == b"0123"
            assert await loop.sock_recv(b, 100) == b"456789"
            # EOF: b"".
            a.shutdown(socket.SHUT_WR)
            assert await loop.sock_recv(b, 100) == b""
            assert await loop.sock_recv(b, 100) == b""

    run(loop, main())


def test_sock_recv_into(loop):
    async def main():
        with nb_socketpair() as (a, b):
            buf = bytearray(10)
            t = loop.create_task(loop.sock_recv_into(b, buf))
            await settle()
            await loop.sock_sendall(a, b"abc")
            assert await t == 3
            assert buf[:3] == b"abc"
            view = memoryview(buf)[5:8]
            await loop.sock_sendall(a, b"XYZW")
            await settle()
            assert await loop.sock_recv_into(b, view) == 3
            assert bytes(buf) == b"abc\0\0XYZ\0\0"
            assert await loop.sock_recv_into(b, buf) == 1
            assert buf[:1] == b"W"
            a.close()
            assert await loop.sock_recv_into(b, buf) == 0

    run(loop, main())


def test_sock_sendall_large_needs_several_sends(loop):
    total = 32 * 1024 * 1024

    async def main():
        with tcp_socket_pair() as (c, s):
            payload = os.urandom(1 << 20) * (total >> 20)
            sender = loop.create_task(loop.sock_sendall(c, payload))
            await settle()
            # Far more than the socket buffers: the send is still pending.
            assert not sender.done()
            got = await recv_all(loop, s, total)
            assert await sender is None
            assert len(got) == total and got == payload

    run(loop, main())


def test_sock_recv_peer_reset(loop):
    async def main():
        with tcp_socket_pair() as (c, s):
            t = loop.create_task(loop.sock_recv(s, 10))
            await settle()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            c.close()
            with pytest.raises(ConnectionResetError):
                await t

    run(loop, main())


def test_sock_sendall_to_closed_peer_raises(loop):
    async def main():
        with tcp_socket_pair() as (c, s):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            s.close()
            with pytest.raises((ConnectionResetError, BrokenPipeError)):
                for _ in range(1000):
                    await loop.sock_sendall(c, b"x" * 65536)

    run(loop, main())


# ------------------------------------------------------------------ accept / connect


@pytest.mark.parametrize(
    "family,host",
    [
        (socket.AF_INET, "127.0.0.1"),
        pytest.param(socket.AF_INET6, "::1", marks=requires_ipv6),
    ],
)
def test_sock_accept_and_connect(loop, family, host):
    async def main():
        with listener(family, host) as lsock:
            acc = loop.create_task(loop.sock_accept(lsock))
            await settle()
            assert not acc.done()
            c = socket.socket(family, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                assert await loop.sock_connect(c, lsock.getsockname()) is None
                conn, addr = await acc
                try:
                    assert addr[:2] == c.getsockname()[:2]
                    assert conn.getblocking() is False
                    assert conn.family == family
                    await loop.sock_sendall(c, b"over tcp")
                    assert await recv_all(loop, conn, 8) == b"over tcp"
                finally:
                    conn.close()
            finally:
                c.close()

    run(loop, main())


def test_sock_connect_resolves_hostname(loop):
    async def main():
        with listener() as lsock:
            c = socket.socket()
            c.setblocking(False)
            try:
                await loop.sock_connect(c, ("localhost", lsock.getsockname()[1]))
                assert c.getpeername() == lsock.getsockname()
                conn, _ = await loop.sock_accept(lsock)
                conn.close()
            finally:
                c.close()

    run(loop, main())


def test_sock_accept_connect_unix(loop, tmp_path):
    path = str(tmp_path / "sock.sock")

    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lsock.bind(path)
            lsock.listen(4)
            lsock.setblocking(False)
            c.setblocking(False)
            acc = loop.create_task(loop.sock_accept(lsock))
            await loop.sock_connect(c, path)
            conn, addr = await acc
            try:
                assert addr == ""  # unnamed client socket
                await loop.sock_sendall(conn, b"unix!")
                assert await recv_all(loop, c, 5) == b"unix!"
            finally:
                conn.close()
        finally:
            c.close()
            lsock.close()

    run(loop, main())


@pytest.mark.parametrize(
    "family,host",
    [
        (socket.AF_INET, "127.0.0.1"),
        pytest.param(socket.AF_INET6, "::1", marks=requires_ipv6),
    ],
)
def test_sock_connect_refused(loop, family, host):
    async def main():
        holder, addr = free_port_refused(family, host)
        c = socket.socket(family, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            with pytest.raises(ConnectionRefusedError) as info:
                await loop.sock_connect(c, addr)
            assert info.value.errno == errno.ECONNREFUSED
        finally:
            c.close()
            holder.close()

    run(loop, main())


def test_sock_connect_unix_errors(loop, tmp_path):
    async def main():
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            with pytest.raises(FileNotFoundError):
                await loop.sock_connect(c, str(tmp_path / "missing"))
        finally:
            c.close()
        stale = str(tmp_path / "stale")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(c, stale)
        finally:
            c.close()

    run(loop, main())


def test_sock_api_on_transport_socket_rejected(loop):
    # asyncio refuses to wait on a socket a transport owns (RuntimeError).
    async def main():
        with listener() as lsock:
            tr, pr = await loop.create_connection(
                lambda: RecordingProtocol(loop), *lsock.getsockname()
            )
            lsock.setblocking(True)
            conn, _ = lsock.accept()
            str_, spr = await loop.connect_accepted_socket(
                lambda: RecordingProtocol(loop), conn
            )
            try:
                # asyncio checks when the call has to wait for the fd (here: no
                # data pending), not when it can complete at once.
                with raises_exactly(RuntimeError):
                    await loop.sock_recv(conn, 10)
                with raises_exactly(RuntimeError):
                    await loop.sock_recv_into(conn, bytearray(10))
            finally:
                tr.close()
                str_.close()
                await pr.lost
                await spr.lost

    run(loop, main())


# ------------------------------------------------------------------ UDP


@pytest.mark.parametrize(
    "family,host",
    [
        (socket.AF_INET, "127.0.0.1"),
        pytest.param(socket.AF_INET6, "::1", marks=requires_ipv6),
    ],
)
def test_sock_sendto_recvfrom(loop, family, host):
    async def main():
        with udp_pair(family, host) as (a, b):
            baddr = b.getsockname()
            t = loop.create_task(loop.sock_recvfrom(b, 1024))
            await settle()
            assert not t.done()
            assert await loop.sock_sendto(a, b"datagram", baddr) == 8
            data, addr = await t
            assert data == b"datagram"
            assert addr[:2] == a.getsockname()[:2]
            # Datagram boundaries are kept; a short buffer truncates one datagram.
            await loop.sock_sendto(a, b"first", baddr)
            await loop.sock_sendto(a, b"second-and-long", baddr)
            await settle()
            assert (await loop.sock_recvfrom(b, 1024))[0] == b"first"
            assert (await loop.sock_recvfrom(b, 6))[0] == b"second"
            await loop.sock_sendto(a, b"", baddr)
            assert (await loop.sock_recvfrom(b, 1024))[0] == b""

    run(loop, main())


def test_sock_recvfrom_into(loop):
    async def main():
        with udp_pair() as (a, b):
            baddr = b.getsockname()
            buf = bytearray(16)
            t = loop.create_task(loop.sock_recvfrom_into(b, buf))
            await settle()
            await loop.sock_sendto(a, b"into", baddr)
            n, addr = await t
            assert (n, addr) == (4, a.getsockname())
            assert buf[:4] == b"into"
            # nbytes limits the read.
            await loop.sock_sendto(a, b"0123456789", baddr)
            await settle()
            n, _ = await loop.sock_recvfrom_into(b, buf, 3)
            assert n == 3 and buf[:3] == b"012"

    run(loop, main())


def test_sock_recv_on_connected_udp(loop):
    async def main():
        with udp_pair() as (a, b):
            a.connect(b.getsockname())
            b.connect(a.getsockname())
            await loop.sock_sendall(a, b"connected")
            assert await loop.sock_recv(b, 100) == b"connected"

    run(loop, main())


# ------------------------------------------------------------------ sendfile


@pytest.fixture
def data_file(tmp_path):
    content = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f, content


@pytest.mark.parametrize(
    "offset,count", [(0, None), (1000, 50_000), (0, 2 * 1024 * 1024 + 3), (17, None)]
)
def test_sock_sendfile(loop, data_file, offset, count):
    f, content = data_file
    expected = content[offset:] if count is None else content[offset : offset + count]

    async def main():
        with tcp_socket_pair() as (c, s):
            sender = loop.create_task(loop.sock_sendfile(c, f, offset, count))
            got = await recv_all(loop, s, len(expected))
            assert await sender == len(expected)
            assert got == expected
            # The file position ends after the last byte sent.
            assert f.tell() == offset + len(expected)
            # Nothing more was sent.
            c.shutdown(socket.SHUT_WR)
            assert await loop.sock_recv(s, 10) == b""

    run(loop, main())


def test_sock_sendfile_no_fallback_on_tcp(loop, data_file):
    f, content = data_file

    async def main():
        with tcp_socket_pair() as (c, s):
            sender = loop.create_task(
                loop.sock_sendfile(c, f, 0, 100_000, fallback=False)
            )
            got = await recv_all(loop, s, 100_000)
            assert await sender == 100_000
            assert got == content[:100_000]

    run(loop, main())


def test_sock_sendfile_argument_errors(loop, data_file, tmp_path):
    f, _ = data_file

    async def main():
        with tcp_socket_pair() as (c, s):
            with pytest.raises(ValueError):
                await loop.sock_sendfile(c, f, -1)
            with pytest.raises(ValueError):
                await loop.sock_sendfile(c, f, 0, 0)
            with pytest.raises(TypeError):
                await loop.sock_sendfile(c, f, 0, "10")
            with pytest.raises(TypeError):
                await loop.sock_sendfile(c, f, "0")
            (tmp_path / "text.txt").write_text("text")
            with open(tmp_path / "text.txt") as tf:
                with pytest.raises(ValueError):
                    await loop.sock_sendfile(c, tf)
        with udp_pair() as (a, b):
            with pytest.raises(ValueError):
                await loop.sock_sendfile(a, f)

    run(loop, main())


@pytest.mark.parametrize("offset,count", [(0, None), (4096, 1_000_000)])
def test_loop_sendfile_on_transport(loop, data_file, offset, count):
    f, content = data_file
    expected = content[offset:] if count is None else content[offset : offset + count]

    async def main():
        with listener() as lsock:
            tr, pr = await loop.create_connection(
                lambda: RecordingProtocol(loop), *lsock.getsockname()
            )
            lsock.setblocking(True)
            conn, _ = lsock.accept()
            conn.setblocking(False)
            try:
                tr.write(b"header:")
                sender = loop.create_task(loop.sendfile(tr, f, offset, count))
                got = await recv_all(loop, conn, 7 + len(expected))
                assert await sender == len(expected)
                assert got == b"header:" + expected
                assert f.tell() == offset + len(expected)
                # The transport is usable again afterwards, both ways.
                tr.write(b":trailer")
                assert await recv_all(loop, conn, 8) == b":trailer"
                await loop.sock_sendall(conn, b"reply")
                await wait_for_data(pr, 5)
                assert bytes(pr.data) == b"reply"
            finally:
                tr.close()
                await pr.lost
                conn.close()

    run(loop, main())


# ------------------------------------------------------------------ blocking sockets


def _sock_calls(loop, tcp, udp, listening, f):
    return {
        "sock_recv": lambda: loop.sock_recv(tcp, 1),
        "sock_recv_into": lambda: loop.sock_recv_into(tcp, bytearray(1)),
        "sock_sendall": lambda: loop.sock_sendall(tcp, b"x"),
        "sock_accept": lambda: loop.sock_accept(listening),
        "sock_connect": lambda: loop.sock_connect(tcp, listening.getsockname()),
        "sock_recvfrom": lambda: loop.sock_recvfrom(udp, 1),
        "sock_recvfrom_into": lambda: loop.sock_recvfrom_into(udp, bytearray(1)),
        "sock_sendto": lambda: loop.sock_sendto(udp, b"x", udp.getsockname()),
        "sock_sendfile": lambda: loop.sock_sendfile(tcp, f),
    }


SOCK_METHODS = [
    "sock_recv",
    "sock_recv_into",
    "sock_sendall",
    "sock_accept",
    "sock_connect",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendto",
    "sock_sendfile",
]


@pytest.mark.parametrize("method", SOCK_METHODS)
def test_blocking_socket_rejected_in_debug_mode(loop, method, data_file):
    # asyncio (3.11-3.13) checks sock.gettimeout() != 0 in debug mode only and raises
    # ValueError("the socket must be non-blocking") before doing anything.
    f, _ = data_file
    loop.set_debug(True)

    async def main():
        tcp = socket.socket()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listening = socket.socket()
        try:
            udp.bind(("127.0.0.1", 0))
            listening.bind(("127.0.0.1", 0))
            listening.listen(1)
            assert tcp.getblocking()
            call = _sock_calls(loop, tcp, udp, listening, f)[method]
            with pytest.raises(ValueError, match="non-blocking"):
                await call()
            # A socket with a timeout is not non-blocking either.
            tcp.settimeout(1.0)
            udp.settimeout(1.0)
            listening.settimeout(1.0)
            with pytest.raises(ValueError, match="non-blocking"):
                await call()
        finally:
            tcp.close()
            udp.close()
            listening.close()

    run(loop, main())


# ------------------------------------------------------------------ cancellation


@pytest.mark.parametrize(
    "send_before_cancel", [False, True], ids=["cancel-then-send", "send-then-cancel"]
)
@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_cancel_pending_recv_loses_no_data(loop, method, send_before_cancel):
    async def main():
        with tcp_socket_pair() as (c, s):
            buf = bytearray(100)
            if method == "sock_recv":
                t = loop.create_task(loop.sock_recv(s, 100))
            else:
                t = loop.create_task(loop.sock_recv_into(s, buf))
            await settle()
            assert not t.done()
            if send_before_cancel:
                # The data reaches the socket while the call is still pending, and
                # the call is cancelled before the loop gets to run again.
                c.send(b"precious")
                t.cancel()
            else:
                t.cancel()
                await asyncio.sleep(0)
                c.send(b"precious")
            with pytest.raises(asyncio.CancelledError):
                await t
            assert t.cancelled()
            # Whatever the cancelled call may have pulled from the kernel is handed
            # to the next reader: no byte is lost.
            if method == "sock_recv":
                got = await loop.sock_recv(s, 100)
            else:
                buf2 = bytearray(100)
                got = bytes(buf2[: await loop.sock_recv_into(s, buf2)])
            if len(got) < 8:
                got += await recv_all(loop, s, 8 - len(got))
            assert got == b"precious"

    run(loop, main())


@pytest.mark.parametrize(
    "send_before_cancel", [False, True], ids=["cancel-then-send", "send-then-cancel"]
)
@pytest.mark.parametrize("method", ["sock_recvfrom", "sock_recvfrom_into"])
def test_cancel_pending_recvfrom_loses_no_datagram(loop, method, send_before_cancel):
    async def main():
        with udp_pair() as (a, b):
            if method == "sock_recvfrom":
                t = loop.create_task(loop.sock_recvfrom(b, 100))
            else:
                t = loop.create_task(loop.sock_recvfrom_into(b, bytearray(100)))
            await settle()
            assert not t.done()
            if send_before_cancel:
                a.sendto(b"dgram-1", b.getsockname())
                t.cancel()
            else:
                t.cancel()
                await asyncio.sleep(0)
                a.sendto(b"dgram-1", b.getsockname())
            with pytest.raises(asyncio.CancelledError):
                await t
            a.sendto(b"dgram-2", b.getsockname())
            got = []
            for _ in range(2):
                if method == "sock_recvfrom":
                    data, addr = await loop.sock_recvfrom(b, 100)
                else:
                    buf = bytearray(100)
                    n, addr = await loop.sock_recvfrom_into(b, buf)
                    data = bytes(buf[:n])
                assert addr == a.getsockname()
                got.append(data)
            assert got == [b"dgram-1", b"dgram-2"]

    run(loop, main())


@pytest.mark.parametrize(
    "connect_before_cancel",
    [False, True],
    ids=["cancel-then-connect", "connect-then-cancel"],
)
def test_cancel_pending_accept_loses_no_connection(loop, connect_before_cancel):
    async def main():
        with listener() as lsock:
            t = loop.create_task(loop.sock_accept(lsock))
            await settle()
            assert not t.done()
            c = socket.socket()
            try:
                if connect_before_cancel:
                    c.connect(lsock.getsockname())  # completes via the backlog
                    t.cancel()
                else:
                    t.cancel()
                    await asyncio.sleep(0)
                    c.connect(lsock.getsockname())
                with pytest.raises(asyncio.CancelledError):
                    await t
                conn, addr = await loop.sock_accept(lsock)
                try:
                    assert addr == c.getsockname()
                    c.sendall(b"still here")
                    assert await recv_all(loop, conn, 10) == b"still here"
                finally:
                    conn.close()
            finally:
                c.close()

    run(loop, main())


def test_cancel_pending_connect(loop):
    async def main():
        # A listener with a full accept queue drops SYNs: connect stays pending.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        filler = socket.create_connection(lsock.getsockname(), timeout=5)
        c = socket.socket()
        c.setblocking(False)
        try:
            t = loop.create_task(loop.sock_connect(c, lsock.getsockname()))
            await settle()
            assert not t.done()
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            # The loop keeps working and the socket can be closed cleanly.
            await settle()
        finally:
            c.close()
            filler.close()
            lsock.close()

    run(loop, main())


def test_cancel_pending_sendall_sends_a_prefix(loop):
    async def main():
        with tcp_socket_pair() as (c, s):
            payload = bytes(range(256)) * (64 * 1024 * 4)  # 64 MiB, never fits
            t = loop.create_task(loop.sock_sendall(c, payload))
            await settle()
            assert not t.done()
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t

            # After the cancellation nothing more of the payload goes out: the peer
            # reads a prefix of it, then what is sent next.
            async def drain():
                got = bytearray()
                while data := await loop.sock_recv(s, 1 << 20):
                    got += data
                return got

            reader = loop.create_task(drain())
            await loop.sock_sendall(c, b"<after>")
            c.shutdown(socket.SHUT_WR)
            got = await reader
            assert got.endswith(b"<after>")
            sent = len(got) - 7
            assert 0 < sent < len(payload)
            assert got[:sent] == payload[:sent]

    run(loop, main())


def test_cancel_pending_sendto(loop, tmp_path):
    # A Unix datagram receiver that does not read: its queue fills and sendto waits.
    async def main():
        rpath = str(tmp_path / "r.sock")
        r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            r.bind(rpath)
            r.setblocking(False)
            w.setblocking(False)
            sent = 0
            while True:
                t = loop.create_task(loop.sock_sendto(w, b"%08d" % sent, rpath))
                await settle()
                if not t.done():
                    break
                await t
                sent += 1
                assert sent < 100_000, "the receive queue never filled"
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            got = []
            while True:
                try:
                    got.append(r.recv(100))
                except BlockingIOError:
                    break
            # Whole datagrams, in order; the cancelled one at most once, intact.
            assert got[:sent] == [b"%08d" % i for i in range(sent)]
            assert got[sent:] in ([], [b"%08d" % sent])
        finally:
            r.close()
            w.close()

    run(loop, main())


def test_cancel_pending_sock_sendfile(loop, tmp_path):
    content = os.urandom(1 << 20) * 64  # 64 MiB: never fits in socket buffers
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    async def main():
        with open(path, "rb") as f, tcp_socket_pair() as (c, s):
            t = loop.create_task(loop.sock_sendfile(c, f))
            await settle()
            assert not t.done()
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            c.shutdown(socket.SHUT_WR)
            got = bytearray()
            while data := await loop.sock_recv(s, 1 << 20):
                got += data
            assert 0 < len(got) < len(content)
            assert got == content[: len(got)]

    run(loop, main())


def test_cancelled_recv_then_loop_closes_cleanly(loop):
    # A recv left pending when the coroutine that awaited it is cancelled, with the
    # socket closed afterwards: nothing stays registered on the closed fd.
    async def main():
        with nb_socketpair() as (a, b):
            t = loop.create_task(loop.sock_recv(b, 10))
            await settle()
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        # New sockets may reuse the same fd numbers.
        with nb_socketpair() as (a, b):
            await loop.sock_sendall(a, b"fresh")
            assert await loop.sock_recv(b, 10) == b"fresh"

    run(loop, main())
