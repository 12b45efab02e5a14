"""Swapping and pausing a transport's protocol mid-stream, as loop.start_tls
does (pause_reading, set_protocol, resume_reading) and as SSL unwrapping does:
no byte lost, duplicated or reordered, whatever the protocol kinds
(Protocol / BufferedProtocol) and whichever receive path (shared buffers or
direct receives into the reader's memory) was in use."""

import asyncio
import hashlib

import pytest
from net_helpers import run

MB = 1024 * 1024


async def close_writer(writer):
    writer.close()
    await writer.wait_closed()


async def close_server(server):
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)


class ExactReader(asyncio.BufferedProtocol):
    """Reads through a 4-byte buffer and pauses reading after the first 4
    bytes; records everything it gets."""

    def __init__(self, loop):
        self.buf = bytearray(4)
        self.data = bytearray()
        self.first = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]
        if len(self.data) >= 4 and not self.first.done():
            self.transport.pause_reading()
            self.first.set_result(bytes(self.data))

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_buffered_protocol_pausing_in_buffer_updated(loop):
    """What start_tls relies on: once a BufferedProtocol pauses reading in
    buffer_updated, the rest of the bytes already received wait for
    resume_reading (they are not pushed into get_buffer meanwhile)."""

    async def main():
        readers = []

        def factory():
            readers.append(ExactReader(loop))
            return readers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HEADrest of the segment")
        while not readers:
            await asyncio.sleep(0.001)
        r = readers[0]
        assert await r.first == b"HEAD"
        for _ in range(10):
            await asyncio.sleep(0)
        assert bytes(r.data) == b"HEAD"
        r.transport.resume_reading()
        while len(r.data) < 23:
            await asyncio.sleep(0.001)
        assert bytes(r.data) == b"HEADrest of the segment"
        await close_writer(writer)
        await r.lost
        await close_server(server)

    run(loop, main())


class Collector(asyncio.Protocol):
    def __init__(self, loop, swap_to=None, after=0):
        self.loop = loop
        self.data = bytearray()
        self.swap_to = swap_to
        self.after = after
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        if self.swap_to is not None and len(self.data) >= self.after:
            swap_to, self.swap_to = self.swap_to, None
            # From a later callback: the transport may be receiving meanwhile.
            self.loop.call_soon(self.transport.set_protocol, swap_to)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


class BufferedCollector(asyncio.BufferedProtocol):
    def __init__(self, loop, swap_to=None, after=0):
        self.loop = loop
        self.buf = bytearray(256 * 1024)
        self.data = bytearray()
        self.swap_to = swap_to
        self.after = after
        self.lost = loop.create_future()

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]
        if self.swap_to is not None and len(self.data) >= self.after:
            swap_to, self.swap_to = self.swap_to, None
            self.loop.call_soon(self.transport.set_protocol, swap_to)

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


@pytest.mark.parametrize("first, second", [
    (Collector, BufferedCollector), (BufferedCollector, Collector),
    (BufferedCollector, BufferedCollector),
])
def test_set_protocol_during_large_reads(loop, first, second):
    """What start_tls and SSL unwrapping rely on: swapping the protocol while
    large messages stream in loses, duplicates and reorders nothing, whatever
    the kinds of protocol before and after."""
    total = 4 * MB
    payload = hashlib.sha256(b"p").digest() * (total // 32)

    async def main():
        protos = []

        def factory():
            b = second(loop)
            a = first(loop, swap_to=b, after=total // 4)
            protos.extend((a, b))
            return a

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        a, b = protos
        await b.lost
        assert len(a.data) >= total // 4
        assert bytes(a.data + b.data) == payload
        await close_server(server)

    run(loop, main())
