"""create_server / create_connection over TCP (IPv4, IPv6), sock= variants,
local_addr, several hosts, reuse_port, backlog, start_serving, serve_forever, the
Server object, happy eyeballs, connection errors, connect_accepted_socket."""

import asyncio
import errno
import socket
import sys

import pytest
from net_helpers import (
    HAS_IPV6,
    PY312,
    PY313,
    RecordingProtocol,
    close_pair,
    free_port_refused,
    raises_exactly,
    requires_ipv6,
    run,
    tcp_pair,
    wait_for_data,
)

PY3121 = sys.version_info >= (3, 12, 1)

HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=requires_ipv6),
]


class Echo(asyncio.Protocol):
    """Echoes everything; closes on EOF. Tracks live connections in ``conns``."""

    def __init__(self, conns=None):
        self.conns = conns if conns is not None else set()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.conns.add(self)

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.conns.discard(self)


async def echo_roundtrip(loop, host, port, payload=b"ping", **kwargs):
    """Connect, send payload, read the echo, close. Returns (echo, sockname, peername)."""
    tr, pr = await loop.create_connection(
        lambda: RecordingProtocol(loop), host, port, **kwargs
    )
    try:
        tr.write(payload)
        await wait_for_data(pr, len(payload))
        return (
            bytes(pr.data),
            tr.get_extra_info("sockname"),
            tr.get_extra_info("peername"),
        )
    finally:
        tr.close()
        await pr.lost


async def stop(server):
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)


# ------------------------------------------------------------------ basics


@pytest.mark.parametrize("host", HOSTS)
def test_echo_server(loop, host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    async def main():
        conns = set()
        server = await loop.create_server(lambda: Echo(conns), host, 0)
        try:
            assert len(server.sockets) == 1
            s = server.sockets[0]
            assert s.family == family
            assert s.type == socket.SOCK_STREAM
            addr = s.getsockname()
            assert addr[0] == host and addr[1] > 0
            for i in range(3):
                echo, sockname, peername = await echo_roundtrip(
                    loop, host, addr[1], b"m%d" % i
                )
                assert echo == b"m%d" % i
                assert peername[:2] == addr[:2]
                assert sockname[0] == host
                # IPv6 addresses are (host, port, flowinfo, scope_id).
                assert (
                    len(sockname)
                    == len(peername)
                    == (4 if family == socket.AF_INET6 else 2)
                )
            while conns:
                await asyncio.sleep(0.001)
        finally:
            await stop(server)

    run(loop, main())


def test_server_sockets_reuse_address_and_listening(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        try:
            s = server.sockets[0]
            # asyncio sets SO_REUSEADDR on Unix listening sockets by default.
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 0
        finally:
            await stop(server)

    run(loop, main())


@requires_ipv6
def test_ipv6_listener_is_v6only(loop):
    # asyncio sets IPV6_V6ONLY on IPv6 listening sockets (no dual-stack).
    async def main():
        server = await loop.create_server(asyncio.Protocol, "::1", 0)
        try:
            s = server.sockets[0]
            assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) != 0
        finally:
            await stop(server)

    run(loop, main())


def test_reuse_address_false(loop):
    async def main():
        server = await loop.create_server(
            asyncio.Protocol, "127.0.0.1", 0, reuse_address=False
        )
        try:
            s = server.sockets[0]
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        finally:
            await stop(server)

    run(loop, main())


@pytest.mark.skipif(not PY313, reason="create_server(keep_alive=) is new in 3.13")
@pytest.mark.parametrize("keep_alive", [None, True])
def test_keep_alive(loop, keep_alive):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop, keep_alive=keep_alive)
        try:
            for s in (server.sockets[0], spr.transport.get_extra_info("socket")):
                on = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
                assert on is bool(keep_alive)
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_create_server_port_in_use(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(OSError) as info:
                await loop.create_server(asyncio.Protocol, "127.0.0.1", port)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            await stop(server)

    run(loop, main())


def test_reuse_port(loop):
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT on this platform")

    async def main():
        conns = set()
        s1 = await loop.create_server(
            lambda: Echo(conns), "127.0.0.1", 0, reuse_port=True
        )
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(
            lambda: Echo(conns), "127.0.0.1", port, reuse_port=True
        )
        try:
            for s in (s1, s2):
                assert (
                    s.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
                )
                assert s.sockets[0].getsockname()[1] == port
            for _ in range(4):
                echo, _, _ = await echo_roundtrip(loop, "127.0.0.1", port)
                assert echo == b"ping"
        finally:
            await stop(s1)
            await stop(s2)

    run(loop, main())


def test_several_hosts(loop):
    hosts = ["127.0.0.1", "127.0.0.2"] + (["::1"] if HAS_IPV6 else [])

    async def main():
        server = await loop.create_server(Echo, hosts, 0)
        try:
            addrs = [s.getsockname() for s in server.sockets]
            assert sorted(a[0] for a in addrs) == sorted(hosts)
            for a in addrs:
                echo, _, peer = await echo_roundtrip(loop, a[0], a[1])
                assert echo == b"ping"
                assert peer[:2] == a[:2]
        finally:
            await stop(server)

    run(loop, main())


def test_backlog(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1)
        try:
            port = server.sockets[0].getsockname()[1]
            for i in range(10):
                echo, _, _ = await echo_roundtrip(loop, "127.0.0.1", port, b"%d" % i)
                assert echo == b"%d" % i
        finally:
            await stop(server)

    run(loop, main())


def test_local_addr(loop):
    async def main():
        seen = []

        class Rec(Echo):
            def connection_made(self, transport):
                super().connection_made(transport)
                seen.append(transport.get_extra_info("peername"))

        server = await loop.create_server(Rec, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            echo, sockname, _ = await echo_roundtrip(
                loop, "127.0.0.1", port, local_addr=("127.0.0.2", 0)
            )
            assert echo == b"ping"
            assert sockname[0] == "127.0.0.2" and sockname[1] > 0
            assert seen == [sockname]
        finally:
            await stop(server)

    run(loop, main())


def test_local_addr_in_use(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        taken = socket.socket()
        try:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(OSError) as info:
                await loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", port, local_addr=taken.getsockname()
                )
            assert info.value.errno == errno.EADDRINUSE
        finally:
            taken.close()
            await stop(server)

    run(loop, main())


# ------------------------------------------------------------------ sock= variants


def test_create_server_sock(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        addr = lsock.getsockname()
        # Not listening yet: create_server calls listen() itself.
        server = await loop.create_server(Echo, sock=lsock)
        try:
            assert server.sockets[0].fileno() == lsock.fileno()
            assert server.sockets[0].getsockname() == addr
            echo, _, _ = await echo_roundtrip(loop, *addr)
            assert echo == b"ping"
        finally:
            await stop(server)
        # The server owns the socket: closing the server closed it.
        assert lsock.fileno() == -1

    run(loop, main())


def test_create_server_sock_and_host_rejected(loop):
    async def main():
        with socket.socket() as s:
            with pytest.raises(ValueError):
                await loop.create_server(Echo, "127.0.0.1", 0, sock=s)
        with pytest.raises(ValueError):
            await loop.create_server(Echo)  # neither host/port nor sock

    run(loop, main())


def test_create_server_sock_wrong_type(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            with pytest.raises(ValueError):
                await loop.create_server(Echo, sock=s)

    run(loop, main())


def test_create_connection_sock(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        try:
            addr = server.sockets[0].getsockname()
            # A socket connected with plain blocking calls, handed to the loop.
            raw = socket.create_connection(addr, timeout=5)
            tr, pr = await loop.create_connection(
                lambda: RecordingProtocol(loop), sock=raw
            )
            assert raw.getblocking() is False
            assert tr.get_extra_info("socket").fileno() == raw.fileno()
            assert tr.get_extra_info("peername") == addr
            tr.write(b"via sock")
            await wait_for_data(pr, 8)
            assert bytes(pr.data) == b"via sock"
            tr.close()
            await pr.lost
            assert raw.fileno() == -1  # the transport closed it
        finally:
            await stop(server)

    run(loop, main())


def test_create_connection_argument_errors(loop):
    async def main():
        with socket.socket() as s:
            with pytest.raises(ValueError):
                await loop.create_connection(Echo, "127.0.0.1", 80, sock=s)
        with pytest.raises(ValueError):
            await loop.create_connection(Echo)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            with pytest.raises(ValueError):
                await loop.create_connection(Echo, sock=s)
        with pytest.raises(ValueError):
            await loop.create_connection(Echo, "127.0.0.1", 80, ssl_handshake_timeout=1)

    run(loop, main())


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("host", HOSTS)
def test_connection_refused(loop, host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    async def main():
        holder, addr = free_port_refused(family, host)
        try:
            for _ in range(2):
                with pytest.raises(ConnectionRefusedError) as info:
                    await loop.create_connection(asyncio.Protocol, *addr)
                assert info.value.errno == errno.ECONNREFUSED
        finally:
            holder.close()

    run(loop, main())


def test_connection_refused_via_hostname(loop):
    async def main():
        holder, addr = free_port_refused()
        try:
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(asyncio.Protocol, "localhost", addr[1])
        finally:
            holder.close()

    run(loop, main())


def test_unresolvable_address(loop):
    # A lookup that fails locally (unknown service name): no DNS traffic needed.
    async def main():
        with pytest.raises(socket.gaierror):
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", "no-such-service"
            )
        with pytest.raises(socket.gaierror):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", "no-such-service")

    run(loop, main())


def test_create_connection_cancelled_while_connecting(loop):
    async def main():
        lsock, filler = _blackhole_listener()
        try:
            t = loop.create_task(
                loop.create_connection(asyncio.Protocol, *lsock.getsockname())
            )
            for _ in range(5):
                await asyncio.sleep(0.005)
            assert not t.done()
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            # The half-open socket was closed: the fd check at teardown sees it.
        finally:
            filler.close()
            lsock.close()

    run(loop, main())


# ------------------------------------------------------------------ start_serving


def test_start_serving_false(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        try:
            assert server.is_serving() is False
            addr = server.sockets[0].getsockname()
            # Bound but not listening yet: connecting is refused.
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(asyncio.Protocol, *addr)
            await server.start_serving()
            assert server.is_serving() is True
            await server.start_serving()  # harmless when already serving
            assert server.is_serving() is True
            echo, _, _ = await echo_roundtrip(loop, *addr)
            assert echo == b"ping"
        finally:
            await stop(server)
        assert server.is_serving() is False

    run(loop, main())


def test_serve_forever_starts_serving_and_cancel_closes(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        addr = server.sockets[0].getsockname()
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving() is True
        echo, _, _ = await echo_roundtrip(loop, *addr)
        assert echo == b"ping"
        # A second serve_forever while the first runs is an error.
        with raises_exactly(RuntimeError):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Cancelling serve_forever closed the server.
        assert server.is_serving() is False
        assert server.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *addr)
        await server.wait_closed()
        # serve_forever on a closed server is an error.
        with raises_exactly(RuntimeError):
            await server.serve_forever()

    run(loop, main())


def test_close_ends_serve_forever_as_cancelled(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        # asyncio cancels the serve_forever future: the task ends cancelled.
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        await server.wait_closed()

    run(loop, main())


# ------------------------------------------------------------------ Server object


def test_server_object(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        assert server.get_loop() is loop
        assert server.is_serving() is True
        socks = server.sockets
        assert isinstance(socks, tuple) and len(socks) == 1
        server.close()
        assert server.is_serving() is False
        assert server.sockets == ()
        server.close()  # twice is harmless
        await server.wait_closed()
        await server.wait_closed()

    run(loop, main())


def test_server_async_with(loop):
    async def main():
        async with await loop.create_server(Echo, "127.0.0.1", 0) as server:
            assert server.is_serving()
            addr = server.sockets[0].getsockname()
            echo, _, _ = await echo_roundtrip(loop, *addr)
            assert echo == b"ping"
        assert server.is_serving() is False
        assert server.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *addr)

    run(loop, main())


def test_server_close_keeps_existing_connections(loop):
    async def main():
        conns = set()
        server = await loop.create_server(lambda: Echo(conns), "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: RecordingProtocol(loop), *addr)
        while not conns:
            await asyncio.sleep(0.001)
        server.close()
        assert server.is_serving() is False
        # No new connections...
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *addr)
        # ...but the accepted one still works.
        tr.write(b"still there")
        await wait_for_data(pr, 11)
        assert bytes(pr.data) == b"still there"
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.01)
        if PY3121:
            # Since 3.12.1 wait_closed also waits for the connections to go.
            assert not waiter.done()
        tr.close()
        await pr.lost
        await waiter
        if PY3121:
            assert not conns  # waiter woke once the last connection was detached
        while conns:
            await asyncio.sleep(0.001)

    run(loop, main())


def test_wait_closed_before_close_waits(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        server.close()
        await waiter

    run(loop, main())


@pytest.mark.skipif(
    not PY313, reason="Server.close_clients/abort_clients are new in 3.13"
)
@pytest.mark.parametrize("method", ["close_clients", "abort_clients"])
def test_server_close_or_abort_clients(loop, method):
    async def main():
        accepted = []

        def factory():
            p = RecordingProtocol(loop)
            accepted.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        clients = []
        for _ in range(3):
            clients.append(
                await loop.create_connection(lambda: RecordingProtocol(loop), *addr)
            )
        while len(accepted) < 3:
            await asyncio.sleep(0.001)
        await asyncio.gather(*(p.made for p in accepted))
        server.close()
        getattr(server, method)()
        for p in accepted:
            assert p.transport.is_closing()
            assert await p.lost is None
        for _, cp in clients:
            exc = await cp.lost
            assert exc is None or isinstance(exc, ConnectionResetError)
        await server.wait_closed()

    run(loop, main())


@pytest.mark.skipif(not PY313, reason="Server.close_clients is new in 3.13")
def test_close_clients_flushes_pending_data(loop):
    async def main():
        accepted = []

        def factory():
            p = RecordingProtocol(loop)
            accepted.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: RecordingProtocol(loop), *addr)
        while not accepted:
            await asyncio.sleep(0.001)
        await accepted[0].made
        accepted[0].transport.write(b"bye")
        server.close()
        server.close_clients()
        await pr.eof
        assert bytes(pr.data) == b"bye"
        await pr.lost
        await server.wait_closed()

    run(loop, main())


# ------------------------------------------------------------------ happy eyeballs


def _patched_getaddrinfo(loop, monkeypatch, addrs):
    """Make ``loop.getaddrinfo`` answer every lookup with ``addrs`` (a list of
    sockaddrs): the only way to get a multi-address name on a host whose resolver
    knows one address per name. create_connection resolves through the loop's own
    getaddrinfo (asyncio's does)."""
    infos = [
        (
            socket.AF_INET6 if ":" in a[0] else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            "",
            a,
        )
        for a in addrs
    ]
    calls = []

    async def fake(host, port, *, family=0, type=0, proto=0, flags=0):
        calls.append((host, port))
        return list(infos)

    monkeypatch.setattr(loop, "getaddrinfo", fake, raising=False)
    return calls


def _blackhole_listener():
    """A listener whose accept queue is full: SYNs to it are dropped, so a connect
    hangs (like an unreachable address) instead of being refused."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    filler = socket.create_connection(lsock.getsockname(), timeout=5)
    return lsock, filler


@pytest.mark.parametrize("delay", [None, 0.05])
def test_create_connection_tries_next_address_after_refused(loop, monkeypatch, delay):
    async def main():
        holder, bad = free_port_refused()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        try:
            good = server.sockets[0].getsockname()
            calls = _patched_getaddrinfo(loop, monkeypatch, [bad, good])
            echo, _, peer = await echo_roundtrip(
                loop, "multi.example", 1234, happy_eyeballs_delay=delay
            )
            assert calls and calls[0][0] == "multi.example"
            assert echo == b"ping"
            assert peer == good
        finally:
            holder.close()
            await stop(server)

    run(loop, main())


def test_happy_eyeballs_unreachable_then_reachable(loop, monkeypatch):
    async def main():
        lsock, filler = _blackhole_listener()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        try:
            good = server.sockets[0].getsockname()
            _patched_getaddrinfo(loop, monkeypatch, [lsock.getsockname(), good])
            # The first attempt hangs; after happy_eyeballs_delay the second one
            # starts, wins, and the hanging attempt is cancelled and closed.
            echo, _, peer = await echo_roundtrip(
                loop, "multi.example", 1, happy_eyeballs_delay=0.05, interleave=1
            )
            assert echo == b"ping"
            assert peer == good
        finally:
            filler.close()
            lsock.close()
            await stop(server)

    run(loop, main())


@requires_ipv6
@pytest.mark.parametrize("interleave", [None, 1])
def test_interleave_orders_by_family(loop, monkeypatch, interleave):
    # Addresses [v6 refused, v6 server A, v4 server B]: without interleaving they are
    # tried in order (A wins); interleave=1 alternates families (v6, v4, v6): B wins.
    async def main():
        holder, bad6 = free_port_refused(socket.AF_INET6, "::1")
        hits = []

        def tagged(tag):
            class P(Echo):
                def connection_made(self, transport):
                    hits.append(tag)
                    super().connection_made(transport)

            return P

        a = await loop.create_server(tagged("A"), "::1", 0)
        b = await loop.create_server(tagged("B"), "127.0.0.1", 0)
        try:
            addr_a = a.sockets[0].getsockname()[:2]
            addr_b = b.sockets[0].getsockname()
            _patched_getaddrinfo(loop, monkeypatch, [bad6, addr_a, addr_b])
            echo, _, _ = await echo_roundtrip(
                loop, "multi.example", 1, interleave=interleave
            )
            assert echo == b"ping"
            assert hits == (["A"] if interleave is None else ["B"])
        finally:
            holder.close()
            await stop(a)
            await stop(b)

    run(loop, main())


def test_all_addresses_refused_combined_error(loop, monkeypatch):
    # Several failed addresses with different messages: asyncio raises a plain
    # OSError('Multiple exceptions: ...') naming each failure, not one of them.
    async def main():
        h1, bad1 = free_port_refused()
        h2, bad2 = free_port_refused()
        try:
            _patched_getaddrinfo(loop, monkeypatch, [bad1, bad2])
            with pytest.raises(OSError) as info:
                await loop.create_connection(asyncio.Protocol, "multi.example", 1)
            assert type(info.value) is OSError
            assert str(info.value).startswith("Multiple exceptions: ")
            assert str(bad1[1]) in str(info.value) and str(bad2[1]) in str(info.value)
        finally:
            h1.close()
            h2.close()

    run(loop, main())


@pytest.mark.skipif(not PY312, reason="create_connection(all_errors=) is new in 3.12")
@pytest.mark.parametrize("delay", [None, 0.05])
def test_all_errors_raises_exception_group(loop, monkeypatch, delay):
    async def main():
        h1, bad1 = free_port_refused()
        h2, bad2 = free_port_refused()
        try:
            _patched_getaddrinfo(loop, monkeypatch, [bad1, bad2])
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821 - 3.11+
                await loop.create_connection(
                    asyncio.Protocol,
                    "multi.example",
                    1,
                    all_errors=True,
                    happy_eyeballs_delay=delay,
                )
            excs = info.value.exceptions
            assert len(excs) == 2
            assert all(isinstance(e, ConnectionRefusedError) for e in excs)
            # A single address: still a group with all_errors=True.
            _patched_getaddrinfo(loop, monkeypatch, [bad1])
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821
                await loop.create_connection(
                    asyncio.Protocol, "multi.example", 1, all_errors=True
                )
            assert [type(e) for e in info.value.exceptions] == [ConnectionRefusedError]
        finally:
            h1.close()
            h2.close()

    run(loop, main())


# ------------------------------------------------------------------ connect_accepted_socket


def test_connect_accepted_socket(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(5)
        try:
            tr, pr = await loop.create_connection(
                lambda: RecordingProtocol(loop), *lsock.getsockname()
            )
            conn, peer = lsock.accept()  # the connection is already established
            str_, spr = await loop.connect_accepted_socket(
                lambda: RecordingProtocol(loop), conn
            )
            assert spr.events == ["made"]
            assert conn.getblocking() is False
            assert str_.get_extra_info("peername") == peer
            assert isinstance(str_, asyncio.Transport)
            str_.write(b"from accepted")
            tr.write(b"to accepted")
            await wait_for_data(pr, 13)
            await wait_for_data(spr, 11)
            assert bytes(pr.data) == b"from accepted"
            assert bytes(spr.data) == b"to accepted"
            str_.close()
            await spr.lost
            await pr.lost
            assert conn.fileno() == -1
        finally:
            lsock.close()

    run(loop, main())


def test_connect_accepted_socket_wrong_type(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            with pytest.raises(ValueError):
                await loop.connect_accepted_socket(asyncio.Protocol, s)

    run(loop, main())


def test_client_transport_on_server_side_of_tcp_pair(loop):
    # Sanity check of the shared helper the other networking tests rely on.
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        assert spr.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        await close_pair(server, tr, spr.transport)

    run(loop, main())
