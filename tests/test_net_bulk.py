"""Large transfers, checked byte for byte: 100 MB one way with a Protocol, a
BufferedProtocol and streams (a deterministic stream of numbered chunks whose digest
both sides compute), and many 100 KiB messages echoed back."""

import asyncio

import pytest
from net_helpers import DigestSink, pattern_digest, pattern_stream, run

TOTAL = 100 * 1000 * 1000  # 100 MB
_digest_cache = {}


def expected_digest(total):
    if total not in _digest_cache:
        _digest_cache[total] = pattern_digest(total)
    return _digest_cache[total]


class StreamingSender(asyncio.Protocol):
    """Writes the pattern stream, honouring pause_writing/resume_writing, then
    write_eof(); connection_lost resolves ``done``."""

    def __init__(self, loop, total):
        self.chunks = pattern_stream(total)
        self.paused = False
        self.eof_sent = False
        self.pauses = 0
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.pump()

    def pump(self):
        for chunk in self.chunks:
            self.transport.write(chunk)
            if self.paused:
                return
        if not self.eof_sent:
            self.eof_sent = True
            self.transport.write_eof()

    def pause_writing(self):
        self.paused = True
        self.pauses += 1

    def resume_writing(self):
        self.paused = False
        self.pump()

    def data_received(self, data):
        raise AssertionError("the receiver sends nothing")

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


class DigestReceiver(asyncio.Protocol):
    def __init__(self, loop):
        self.sink = DigestSink()
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.sink.update(data)

    def eof_received(self):
        self.eof.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


class BufferedDigestReceiver(asyncio.BufferedProtocol):
    def __init__(self, loop, bufsize=256 * 1024):
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self.sink = DigestSink()
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.sink.update(self.view[:nbytes])

    def eof_received(self):
        self.eof.set_result(None)

    def connection_lost(self, exc):
        self.view.release()
        self.lost.set_result(exc)


async def _transfer(loop, sender_side, receiver_factory, total, unix_path=None):
    """Run one transfer of ``total`` bytes; the sender is the client or the
    server (``sender_side``). Returns (receiver, sender)."""
    sides = {}
    made = loop.create_future()

    def server_factory():
        p = (
            StreamingSender(loop, total)
            if sender_side == "server"
            else receiver_factory(loop)
        )
        sides["server"] = p
        made.set_result(None)
        return p

    def client_factory():
        p = (
            StreamingSender(loop, total)
            if sender_side == "client"
            else receiver_factory(loop)
        )
        sides["client"] = p
        return p

    if unix_path is not None:
        server = await loop.create_unix_server(server_factory, unix_path)
        tr, _ = await loop.create_unix_connection(client_factory, unix_path)
    else:
        server = await loop.create_server(server_factory, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(
            client_factory, *server.sockets[0].getsockname()
        )
    await made
    sender = sides[sender_side]
    receiver = sides["client" if sender_side == "server" else "server"]
    try:
        await receiver.eof
        receiver.transport.close()
        assert await receiver.lost is None
        assert await sender.done is None
    finally:
        tr.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0)
    return receiver, sender


@pytest.mark.timeout(60)
def test_100mb_protocol(loop):
    receiver, sender = run(
        loop, _transfer(loop, "client", DigestReceiver, TOTAL), timeout=45
    )
    assert receiver.sink.n == TOTAL
    assert receiver.sink.hexdigest() == expected_digest(TOTAL)
    # 100 MB cannot go through without the receiver pushing back.
    assert sender.pauses >= 1


@pytest.mark.timeout(60)
def test_100mb_buffered_protocol_server_to_client(loop):
    receiver, sender = run(
        loop, _transfer(loop, "server", BufferedDigestReceiver, TOTAL), timeout=45
    )
    assert receiver.sink.n == TOTAL
    assert receiver.sink.hexdigest() == expected_digest(TOTAL)


@pytest.mark.timeout(60)
def test_100mb_streams(loop):
    async def main():
        sink = DigestSink()
        done = loop.create_future()

        async def handle(reader, writer):
            try:
                while data := await reader.read(1 << 20):
                    sink.update(data)
                done.set_result(None)
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            for chunk in pattern_stream(TOTAL):
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()
            await done
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()
        return sink

    sink = run(loop, main(), timeout=45)
    assert sink.n == TOTAL
    assert sink.hexdigest() == expected_digest(TOTAL)


@pytest.mark.timeout(60)
def test_32mb_unix_protocol(loop, tmp_path):
    total = 32 * 1000 * 1000
    receiver, _ = run(
        loop,
        _transfer(
            loop, "client", DigestReceiver, total, unix_path=str(tmp_path / "b.sock")
        ),
        timeout=45,
    )
    assert receiver.sink.n == total
    assert receiver.sink.hexdigest() == expected_digest(total)


def test_many_100k_messages_echoed(loop):
    size = 100 * 1024
    per_conn = 50
    conns = 4

    async def main():
        async def echo(reader, writer):
            try:
                while data := await reader.read(1 << 20):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()

        async def client(c):
            reader, writer = await asyncio.open_connection(*addr)
            try:
                for i in range(per_conn):
                    # Each message is distinct: header (connection, index) + filler.
                    msg = (b"%04d:%06d:" % (c, i)) * (size // 12) + b"#" * (size % 12)
                    assert len(msg) == size
                    writer.write(msg)
                    await writer.drain()
                    assert await reader.readexactly(size) == msg
                writer.write_eof()
                assert await reader.read() == b""
            finally:
                writer.close()
                await writer.wait_closed()
            return per_conn

        try:
            counts = await asyncio.gather(*(client(c) for c in range(conns)))
        finally:
            server.close()
            await server.wait_closed()
        return counts

    assert run(loop, main()) == [per_conn] * conns


def test_pipelined_100k_messages(loop):
    # The client writes all messages without waiting; a concurrent task reads the
    # echoes. Exercises both directions under backpressure at once.
    size = 100 * 1024
    count = 200

    async def main():
        async def echo(reader, writer):
            try:
                while data := await reader.read(1 << 20):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )

            def msg(i):
                return (b"%08d" % i) * (size // 8)

            async def read_all():
                for i in range(count):
                    assert await reader.readexactly(size) == msg(i)
                return count

            rtask = loop.create_task(read_all())
            for i in range(count):
                writer.write(msg(i))
                await writer.drain()
            assert await rtask == count
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())
