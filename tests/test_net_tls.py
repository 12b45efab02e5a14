"""TLS over the loop's transports: ssl= on the connection and server methods
(TCP and Unix), loop.start_tls on both sides, TLS streams, handshake and
shutdown timeouts, verification failures, bulk transfers, aborts, peers that
close without close_notify, and the extra info a TLS transport exposes.

Certificates come from the openssl CLI at run time (tests/tls_helpers.py);
peers that misbehave on purpose are driven by hand with ssl.MemoryBIO."""

import asyncio
import hashlib
import socket
import ssl

import pytest
from net_helpers import RecordingProtocol, run
from tls_helpers import BIOPeer, client_context, make_certs, server_context

MB = 1024 * 1024


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def sctx(certs):
    return server_context(certs)


@pytest.fixture
def cctx(certs):
    return client_context(certs)


async def echo_handler(reader, writer):
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def close_writer(writer):
    writer.close()
    await writer.wait_closed()


async def close_server(server):
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)


async def drain_bound(server):
    """Closes the server and lets the tasks of aborted connections finish."""
    await close_server(server)
    for _ in range(10):
        await asyncio.sleep(0)


# ------------------------------------------------------------ handshakes


def test_tcp_echo_and_extra_info(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")
        writer.write(b"hello over tls\n")
        assert await reader.readline() == b"hello over tls\n"
        obj = writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        assert obj.server_hostname == "localhost"
        assert writer.get_extra_info("sslcontext") is cctx
        cipher = writer.get_extra_info("cipher")
        assert cipher == obj.cipher() and len(cipher) == 3
        peercert = writer.get_extra_info("peercert")
        assert dict(x[0] for x in peercert["subject"]) == {
            "commonName": "localhost"}
        assert writer.get_extra_info("compression") == obj.compression()
        assert writer.get_extra_info("peername") == addr
        assert isinstance(writer.get_extra_info("socket"), (socket.socket,
                          asyncio.trsock.TransportSocket))
        assert writer.get_extra_info("nonexistent", 7) == 7
        assert not writer.can_write_eof()
        await close_writer(writer)
        await close_server(server)

    run(loop, main())


def test_unix_echo(loop, sctx, cctx, tmp_path):
    path = str(tmp_path / "tls.sock")

    async def main():
        server = await asyncio.start_unix_server(echo_handler, path, ssl=sctx)
        reader, writer = await asyncio.open_unix_connection(
            path, ssl=cctx, server_hostname="localhost")
        writer.write(b"x" * 100_000)
        assert await reader.readexactly(100_000) == b"x" * 100_000
        assert writer.get_extra_info("ssl_object") is not None
        await close_writer(writer)
        await close_server(server)

    run(loop, main())


def test_protocol_callbacks_in_order(loop, sctx, cctx):
    """A TLS transport calls connection_made, data_received, eof_received and
    connection_lost in asyncio's order, on both sides."""

    async def main():
        accepted = []

        def factory():
            p = RecordingProtocol(loop)
            accepted.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost")
        assert isinstance(tr, asyncio.Transport)
        assert tr.get_protocol() is pr
        await accepted[0].made
        sp = accepted[0]
        tr.write(b"ping")
        while bytes(sp.data) != b"ping":
            await asyncio.sleep(0.001)
        sp.transport.write(b"pong")
        while bytes(pr.data) != b"pong":
            await asyncio.sleep(0.001)
        tr.close()
        assert tr.is_closing()
        assert await pr.lost is None
        await sp.lost
        assert pr.simple_events() == ["made", "data", "eof", "lost"]
        assert sp.simple_events()[:2] == ["made", "data"]
        assert sp.simple_events()[-1] == "lost"
        await close_server(server)

    run(loop, main())


def test_connect_accepted_socket_both_sides(loop, sctx, cctx):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            for s in (a, b):
                s.setblocking(False)
            server_side = loop.create_task(loop.connect_accepted_socket(
                lambda: RecordingProtocol(loop), a, ssl=sctx))
            # The client end: create_connection(sock=).
            ctr, cpr = await loop.create_connection(
                lambda: RecordingProtocol(loop), sock=b.dup(), ssl=cctx,
                server_hostname="localhost")
            str_, spr = await server_side
            ctr.write(b"abc")
            while bytes(spr.data) != b"abc":
                await asyncio.sleep(0.001)
            ctr.close()
            str_.close()
            await cpr.lost
            await spr.lost

    run(loop, main())


def test_hostname_mismatch(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await asyncio.open_connection(*addr, ssl=cctx,
                                          server_hostname="wrong.example")
        assert "Hostname mismatch" in str(info.value) or \
            "doesn't match" in str(info.value)
        await drain_bound(server)

    run(loop, main())


def test_untrusted_certificate(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nothing
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(*addr, ssl=strict,
                                          server_hostname="localhost")
        # The server is unharmed.
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")
        writer.write(b"ok\n")
        assert await reader.readline() == b"ok\n"
        await close_writer(writer)
        await drain_bound(server)

    run(loop, main())


def test_plaintext_client_to_tls_server(loop, sctx):
    """A client that speaks plaintext gets the connection closed; the server
    goes on serving."""

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        try:
            data = await reader.read()
        except ConnectionResetError:
            data = b""
        assert data == b"" or data.startswith(b"\x15")  # nothing, or an alert
        await close_writer(writer)
        await drain_bound(server)

    run(loop, main())


# ------------------------------------------------------------ argument errors


@pytest.mark.parametrize("kwargs, match", [
    ({"server_hostname": "localhost"}, "server_hostname is only meaningful"),
    ({"ssl_handshake_timeout": 1.0}, "ssl_handshake_timeout is only"),
    ({"ssl_shutdown_timeout": 1.0}, "ssl_shutdown_timeout is only"),
])
def test_tls_arguments_without_ssl(loop, kwargs, match):
    async def main():
        with pytest.raises(ValueError, match=match):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 9,
                                         **kwargs)

    run(loop, main())


@pytest.mark.parametrize("kwargs, match", [
    ({"ssl_handshake_timeout": 1.0}, "ssl_handshake_timeout is only"),
    ({"ssl_shutdown_timeout": 1.0}, "ssl_shutdown_timeout is only"),
])
def test_server_tls_arguments_without_ssl(loop, kwargs, match, tmp_path):
    async def main():
        with pytest.raises(ValueError, match=match):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                     **kwargs)
        with pytest.raises(ValueError, match=match):
            await loop.create_unix_server(asyncio.Protocol,
                                          str(tmp_path / "s"), **kwargs)
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError, match=match):
                await loop.connect_accepted_socket(asyncio.Protocol, a,
                                                   **kwargs)
        assert not (tmp_path / "s").exists()

    run(loop, main())


def test_ssl_without_server_hostname_needs_host(loop, cctx):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError, match="server_hostname"):
                await loop.create_connection(asyncio.Protocol, sock=a,
                                             ssl=cctx)

    run(loop, main())


@pytest.mark.parametrize("name", ["ssl_handshake_timeout",
                                  "ssl_shutdown_timeout"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_nonpositive_timeouts(loop, cctx, name, value):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError, match=name):
                await loop.create_connection(
                    asyncio.Protocol, sock=a, ssl=cctx,
                    server_hostname="localhost", **{name: value})

    run(loop, main())


def test_start_tls_argument_errors(loop, sctx):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                              port)
        with pytest.raises(TypeError, match="SSLContext"):
            await loop.start_tls(tr, pr, object())
        tr.close()
        await close_server(server)

    run(loop, main())


# ------------------------------------------------------------ timeouts


def test_client_handshake_timeout(loop, cctx):
    """A server that accepts and never speaks: the client gives up after
    ssl_handshake_timeout with ConnectionAbortedError."""

    async def main():
        silent = []
        server = await loop.create_server(
            lambda: silent.append(RecordingProtocol(loop)) or silent[-1],
            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionAbortedError, match="handshake"):
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port, ssl=cctx,
                server_hostname="localhost", ssl_handshake_timeout=0.1)
        await silent[0].lost  # the client closed its end
        await close_server(server)

    run(loop, main())


def test_server_handshake_timeout(loop, sctx):
    """A client that connects and never speaks: the TLS server closes the
    connection after ssl_handshake_timeout, and the protocol never sees it."""

    async def main():
        made = []
        server = await loop.create_server(
            lambda: made.append(1) or asyncio.Protocol(), "127.0.0.1", 0,
            ssl=sctx, ssl_handshake_timeout=0.1)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        assert await reader.read() == b""
        assert made == [1]  # the factory ran; connection_made never did
        await close_writer(writer)
        await drain_bound(server)

    run(loop, main())


def test_shutdown_timeout(loop, cctx, sctx):
    """The peer never answers close_notify: the client's transport is
    force-closed after ssl_shutdown_timeout."""

    async def main():
        peers = []

        def factory():
            peers.append(BIOPeer(loop, sctx, server_side=True))
            return peers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost", ssl_shutdown_timeout=0.1)
        await peers[0].handshaken
        tr.close()
        exc = await pr.lost
        assert exc is None or isinstance(exc, TimeoutError), exc
        peers[0].transport.close()
        await peers[0].lost
        await close_server(server)
        return exc

    run(loop, main())


# ------------------------------------------------------------ peers misbehaving


def test_peer_closes_without_close_notify(loop, cctx, sctx):
    async def main():
        peers = []

        def factory():
            peers.append(BIOPeer(loop, sctx, server_side=True))
            return peers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost")
        await peers[0].handshaken
        peers[0].transport.close()  # TCP FIN, no close_notify
        await pr.lost
        await peers[0].lost
        await close_server(server)
        return pr.simple_events()

    events = run(loop, main())
    assert events[0] == "made" and events[-1] == "lost"


def test_client_closes_without_close_notify(loop, cctx, sctx):
    """The server's protocol sees the end of a client that drops TCP after
    the handshake."""

    async def main():
        accepted = []

        def factory():
            accepted.append(RecordingProtocol(loop))
            return accepted[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        peer = BIOPeer(loop, cctx, server_side=False,
                       server_hostname="localhost")
        tr, _ = await loop.create_connection(lambda: peer, "127.0.0.1", port)
        tr.write(peer.hello())
        await peer.handshaken
        while not accepted or not accepted[0].made.done():
            await asyncio.sleep(0.001)
        tr.close()
        await accepted[0].lost
        await close_server(server)

    run(loop, main())


def test_client_aborts_mid_handshake(loop, sctx):
    """A raw client sends half a ClientHello and aborts: the server drops
    that connection and serves the next one."""

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        peer = BIOPeer(loop, ssl.create_default_context(), server_side=False,
                       server_hostname="localhost")
        tr, _ = await loop.create_connection(lambda: peer, *addr)
        hello = peer.hello()
        tr.write(hello[: len(hello) // 2])
        await asyncio.sleep(0)
        tr.abort()
        await peer.lost
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(*addr, ssl=ctx)
        writer.write(b"next\n")
        assert await reader.readline() == b"next\n"
        await close_writer(writer)
        await drain_bound(server)

    run(loop, main())


def test_cancel_connect_mid_handshake(loop, cctx):
    """Cancelling create_connection while the handshake waits closes the
    connection (the peer sees it go) and leaks nothing."""

    async def main():
        silent = []
        server = await loop.create_server(
            lambda: silent.append(RecordingProtocol(loop)) or silent[-1],
            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        task = loop.create_task(loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost"))
        while not silent or not silent[0].data:
            await asyncio.sleep(0.001)  # the ClientHello arrived
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await silent[0].lost
        await close_server(server)

    run(loop, main())


def test_abort_after_handshake(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost")
        tr.write(b"x" * 1_000_000)
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        await drain_bound(server)

    run(loop, main())


# ------------------------------------------------------------ bulk and scale


def test_bulk_both_ways_by_digest(loop, sctx, cctx):
    blob = hashlib.sha256(b"seed").digest() * (64 * 1024 // 32)  # 64 KiB
    # Chunks of varying sizes, 12 MB in all, each numbered.
    chunks = [blob[i % 7:] + i.to_bytes(4, "big") for i in range(192)]
    total = sum(map(len, chunks))
    digest = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert total >= 12 * MB - 192 * 7

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")

        async def receive():
            h = hashlib.sha256()
            got = 0
            while got < total:
                data = await reader.read(1 << 20)
                assert data
                h.update(data)
                got += len(data)
            return h.hexdigest()

        # Echoed back while being sent: the bytes cross TLS twice, both
        # ways at once.
        receiver = loop.create_task(receive())
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        assert await receiver == digest
        await close_writer(writer)
        await close_server(server)

    run(loop, main(), timeout=120)


def test_many_concurrent_connections(loop, sctx, cctx):
    n = 40

    async def one(addr, i):
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")
        msg = f"client {i}\n".encode() * 100
        writer.write(msg)
        assert await reader.readexactly(len(msg)) == msg
        await close_writer(writer)

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx, backlog=n)
        addr = server.sockets[0].getsockname()
        await asyncio.gather(*(one(addr, i) for i in range(n)))
        await close_server(server)

    run(loop, main(), timeout=120)


def test_pause_resume_reading_on_tls_transport(loop, sctx, cctx):
    async def main():
        accepted = []

        def factory():
            accepted.append(RecordingProtocol(loop))
            return accepted[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port, ssl=cctx,
            server_hostname="localhost")
        await accepted[0].made
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()  # idempotent
        payload = b"p" * 300_000
        accepted[0].transport.write(payload)
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(pr.data) == b""  # nothing while paused
        tr.resume_reading()
        assert tr.is_reading()
        while len(pr.data) < len(payload):
            await asyncio.sleep(0.001)
        assert bytes(pr.data) == payload
        tr.close()
        await pr.lost
        await accepted[0].lost
        await close_server(server)

    run(loop, main())


def test_write_buffer_flow_control(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")
        tr = writer.transport
        tr.set_write_buffer_limits(high=1000, low=100)
        assert tr.get_write_buffer_limits() == (100, 1000)
        writer.write(b"w" * 500_000)
        await writer.drain()
        assert await reader.readexactly(500_000) == b"w" * 500_000
        await close_writer(writer)
        await close_server(server)

    run(loop, main())


# ------------------------------------------------------------ start_tls


class Upgrader(asyncio.BufferedProtocol):
    """A plaintext server protocol that reads exactly one command line of a
    known length (get_buffer never offers more), pauses reading the moment it
    is complete, answers, and upgrades the connection to TLS. Whatever the
    client sends right after the command (its ClientHello) must reach the
    TLS layer untouched."""

    def __init__(self, loop, ctx, command, reply=b""):
        self.loop = loop
        self.ctx = ctx
        self.command = command
        self.reply = reply
        self.buf = bytearray(len(command))
        self.got = 0
        self.tls = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return memoryview(self.buf)[self.got:]

    def buffer_updated(self, nbytes):
        self.got += nbytes
        if self.got == len(self.command):
            assert bytes(self.buf) == self.command
            self.transport.pause_reading()
            if self.reply:
                self.transport.write(self.reply)
            self.loop.create_task(self.upgrade())

    async def upgrade(self):
        app = RecordingProtocol(self.loop)
        try:
            tr = await self.loop.start_tls(self.transport, app, self.ctx,
                                           server_side=True)
        except BaseException as exc:  # noqa: BLE001
            self.tls.set_exception(exc)
        else:
            self.tls.set_result((tr, app))

    def eof_received(self):
        return None

    def connection_lost(self, exc):
        if not self.tls.done():
            self.tls.set_exception(ConnectionResetError("lost before TLS"))


def test_start_tls_hello_in_same_segment_as_command(loop, sctx, cctx):
    """The client sends STARTTLS and its ClientHello in one segment, before any
    answer: the server's transport holds the hello across pause_reading and
    the protocol swap, and the handshake completes."""

    async def main():
        ups = []

        def factory():
            ups.append(Upgrader(loop, sctx, b"STARTTLS\n"))
            return ups[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        peer = BIOPeer(loop, cctx, server_side=False,
                       server_hostname="localhost")
        tr, _ = await loop.create_connection(lambda: peer, "127.0.0.1", port)
        sock = tr.get_extra_info("socket")
        hello = peer.hello()
        # One send(2): one segment on loopback.
        sock_send = socket.socket(fileno=sock.fileno())
        try:
            assert sock_send.send(b"STARTTLS\n" + hello) == 9 + len(hello)
        finally:
            sock_send.detach()
        await peer.handshaken
        str_, app = await ups[0].tls
        assert str_.get_extra_info("ssl_object") is not None
        # Application data through the upgraded server transport.
        str_.write(b"after upgrade")
        tr.close()  # the hand-driven peer never sends close_notify
        await peer.lost
        await app.lost
        await close_server(server)

    run(loop, main())


def test_start_tls_server_writes_plaintext_first(loop, sctx, cctx):
    """The server answers the command in plaintext and starts TLS at once;
    the client reads the answer, then upgrades; data flows both ways."""

    async def main():
        ups = []

        def factory():
            ups.append(Upgrader(loop, sctx, b"STARTTLS\n", b"220 go ahead\n"))
            return ups[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"220 go ahead\n"
        client = RecordingProtocol(loop)
        ctr = await loop.start_tls(writer.transport, client, cctx,
                                   server_hostname="localhost")
        str_, app = await ups[0].tls
        ctr.write(b"secret from client")
        str_.write(b"secret from server")
        while bytes(app.data) != b"secret from client" or \
                bytes(client.data) != b"secret from server":
            await asyncio.sleep(0.001)
        assert ctr.get_extra_info("peercert") is not None
        ctr.close()
        await client.lost
        await app.lost
        await close_server(server)

    run(loop, main())


def test_start_tls_client_sends_right_after_upgrade(loop, sctx, cctx):
    """The upgraded client writes application data immediately; the server,
    which paused before swapping, receives all of it."""

    async def main():
        ups = []

        def factory():
            ups.append(Upgrader(loop, sctx, b"UPGRADE\n", b"OK\n"))
            return ups[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"UPGRADE\n")
        assert await reader.readline() == b"OK\n"
        client = RecordingProtocol(loop)
        ctr = await loop.start_tls(writer.transport, client, cctx,
                                   server_hostname="localhost")
        payload = bytes(range(256)) * 4000  # ~1 MB, large records
        ctr.write(payload)
        str_, app = await ups[0].tls
        while len(app.data) < len(payload):
            await asyncio.sleep(0.001)
        assert bytes(app.data) == payload
        ctr.close()
        await client.lost
        await app.lost
        await close_server(server)

    run(loop, main())


def test_start_tls_handshake_timeout(loop, cctx):
    async def main():
        silent = []
        server = await loop.create_server(
            lambda: silent.append(RecordingProtocol(loop)) or silent[-1],
            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                              port)
        with pytest.raises(ConnectionAbortedError):
            await loop.start_tls(tr, pr, cctx, server_hostname="localhost",
                                 ssl_handshake_timeout=0.1)
        await silent[0].lost
        await close_server(server)

    run(loop, main())


# ------------------------------------------------------------ streams


def test_stream_writer_start_tls(loop, sctx, cctx):
    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(sctx)
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(cctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"quiet please\n")
        assert await reader.readline() == b"QUIET PLEASE\n"
        assert await reader.read() == b""
        await close_writer(writer)
        await close_server(server)

    run(loop, main())


def test_streams_read_until_eof(loop, sctx, cctx):
    async def handle(reader, writer):
        writer.write(b"a" * 70_000 + b"END")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost")
        assert await reader.read() == b"a" * 70_000 + b"END"
        assert reader.at_eof()
        await close_writer(writer)
        await close_server(server)

    run(loop, main())


def test_server_ssl_shutdown_timeout_argument(loop, sctx, cctx):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0,
                                            ssl=sctx, ssl_shutdown_timeout=5.0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(
            *addr, ssl=cctx, server_hostname="localhost",
            ssl_shutdown_timeout=5.0)
        writer.write(b"1\n")
        assert await reader.readline() == b"1\n"
        await close_writer(writer)
        await close_server(server)

    run(loop, main())

