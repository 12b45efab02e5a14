"""asyncio streams over the loop's transports: open_connection / start_server,
open_unix_connection / start_unix_server, readline / readexactly / readuntil / read,
drain under backpressure, StreamWriter.wait_closed, errors."""

import asyncio
import socket
import struct

import pytest
from net_helpers import HAS_IPV6, PY313, run


async def start_echo(unix_path=None, **kwargs):
    """A stream echo server; each connection echoes until EOF, then closes."""
    handlers = []

    async def handle(reader, writer):
        handlers.append(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    if unix_path is not None:
        server = await asyncio.start_unix_server(handle, unix_path, **kwargs)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, **kwargs)
    return server, handlers


async def close_server(server):
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)


async def close_writer(writer):
    writer.close()
    await writer.wait_closed()


def test_open_connection_echo(loop):
    async def main():
        server, _ = await start_echo()
        try:
            addr = server.sockets[0].getsockname()
            reader, writer = await asyncio.open_connection(*addr)
            assert writer.get_extra_info("peername") == addr
            assert isinstance(writer.transport, asyncio.Transport)
            assert writer.can_write_eof()
            writer.write(b"line one\nline two\n")
            writer.writelines([b"part", b"ial\n"])
            await writer.drain()
            assert await reader.readline() == b"line one\n"
            assert await reader.readline() == b"line two\n"
            assert await reader.readexactly(8) == b"partial\n"
            writer.write_eof()
            # The echo server closes after EOF.
            assert await reader.read() == b""
            assert reader.at_eof()
            assert await reader.readline() == b""
            await close_writer(writer)
            assert writer.is_closing()
        finally:
            await close_server(server)

    run(loop, main())


@pytest.mark.skipif(not HAS_IPV6, reason="this host has no IPv6 loopback")
def test_open_connection_ipv6(loop):
    async def main():
        async def handle(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "::1", 0)
        try:
            addr = server.sockets[0].getsockname()
            reader, writer = await asyncio.open_connection(addr[0], addr[1])
            writer.write(b"v6\n")
            assert await reader.readline() == b"v6\n"
            assert await reader.read() == b""
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_readuntil_and_readexactly(loop):
    async def main():
        server, _ = await start_echo()
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            writer.write(b"HEADER\r\n\r\nbody-bytes|tail")
            assert await reader.readuntil(b"\r\n\r\n") == b"HEADER\r\n\r\n"
            assert await reader.readexactly(5) == b"body-"
            assert await reader.readuntil(b"|") == b"bytes|"
            assert await reader.read(2) == b"ta"
            writer.write_eof()
            # EOF before the separator: IncompleteReadError carrying what was read.
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await reader.readuntil(b"\n")
            assert info.value.partial == b"il"
            assert info.value.expected is None
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_readexactly_incomplete(loop):
    async def main():
        server, _ = await start_echo()
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            writer.write(b"12345")
            writer.write_eof()
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await reader.readexactly(10)
            assert info.value.partial == b"12345"
            assert info.value.expected == 10
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_stream_limit(loop):
    async def main():
        server, _ = await start_echo()
        try:
            addr = server.sockets[0].getsockname()
            reader, writer = await asyncio.open_connection(*addr, limit=16)
            writer.write(b"x" * 40 + b"\n")
            with pytest.raises(asyncio.LimitOverrunError):
                await reader.readuntil(b"\n")
            # The data is still there.
            assert await reader.readexactly(41) == b"x" * 40 + b"\n"
            writer.write(b"y" * 40 + b"\n")
            with pytest.raises(ValueError):
                await reader.readline()
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


@pytest.mark.skipif(
    not PY313, reason="readuntil() with a tuple of separators is new in 3.13"
)
def test_readuntil_several_separators(loop):
    async def main():
        server, _ = await start_echo()
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            writer.write(b"a;b\nc")
            assert await reader.readuntil((b"\n", b";")) == b"a;"
            assert await reader.readuntil((b"\n", b";")) == b"b\n"
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_drain_blocks_under_backpressure(loop):
    async def main():
        gate = asyncio.Event()
        got = []

        async def slow_reader(reader, writer):
            await gate.wait()
            n = 0
            while data := await reader.read(1 << 20):
                n += len(data)
            got.append(n)
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            chunk = b"d" * (1 << 20)
            total = 0
            drain = None
            # Write until drain() really has to wait for the reader.
            while total < 1024 * (1 << 20):
                writer.write(chunk)
                total += len(chunk)
                drain = loop.create_task(writer.drain())
                await asyncio.sleep(0.01)
                if not drain.done():
                    break
                await drain
            assert not drain.done(), "the peer never pushed back"
            assert writer.transport.get_write_buffer_size() > 0
            gate.set()
            await drain
            writer.write_eof()
            while not got:
                await asyncio.sleep(0.001)
            assert got == [total]
            assert await reader.read() == b""
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_drain_after_peer_reset_raises(loop):
    async def main():
        async def resetter(reader, writer):
            sock = writer.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            writer.transport.abort()

        server = await asyncio.start_server(resetter, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            with pytest.raises(ConnectionError):
                for _ in range(10_000):
                    writer.write(b"z" * 65536)
                    await writer.drain()
            # The reader saw the reset too.
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()
            with pytest.raises(ConnectionError):
                await writer.wait_closed()
        finally:
            await close_server(server)

    run(loop, main())


def test_wait_closed(loop):
    async def main():
        server, handlers = await start_echo()
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname()
            )
            writer.write(b"bye")
            assert await reader.readexactly(3) == b"bye"
            assert not writer.is_closing()
            writer.close()
            assert writer.is_closing()
            await writer.wait_closed()
            await writer.wait_closed()  # again: returns at once
            # The server side sees EOF and closes as well.
            while not handlers or not handlers[0].is_closing():
                await asyncio.sleep(0.001)
            await handlers[0].wait_closed()
        finally:
            await close_server(server)

    run(loop, main())


def test_many_stream_clients(loop):
    async def main():
        # backlog above the number of simultaneous connects: an overflowing accept
        # queue drops SYNs and the client retries only after a second.
        server, handlers = await start_echo(backlog=1024)
        addr = server.sockets[0].getsockname()

        async def client(i):
            reader, writer = await asyncio.open_connection(*addr)
            msg = b"client %d\n" % i
            writer.write(msg)
            line = await reader.readline()
            await close_writer(writer)
            return line == msg

        try:
            assert all(await asyncio.gather(*(client(i) for i in range(200))))
            assert len(handlers) == 200
        finally:
            await close_server(server)

    run(loop, main())


def test_start_server_sock_and_serve_forever(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        addr = lsock.getsockname()

        async def handle(reader, writer):
            writer.write(b"hi " + await reader.readline())
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, sock=lsock, start_serving=False)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"there\n")
        assert await reader.read() == b"hi there\n"
        await close_writer(writer)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
        await server.wait_closed()
        assert lsock.fileno() == -1

    run(loop, main())


def test_unix_streams(loop, tmp_path):
    path = str(tmp_path / "streams.sock")

    async def main():
        server, handlers = await start_echo(unix_path=path)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            assert writer.get_extra_info("peername") == path
            writer.write(b"unix line\n")
            assert await reader.readline() == b"unix line\n"
            writer.write(b"exact")
            assert await reader.readexactly(5) == b"exact"
            writer.write_eof()
            assert await reader.read() == b""
            await close_writer(writer)
        finally:
            await close_server(server)

    run(loop, main())


def test_unix_streams_sock(loop, tmp_path):
    path = str(tmp_path / "streams2.sock")

    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        server_handlers = []

        async def handle(reader, writer):
            server_handlers.append(1)
            writer.write(await reader.readexactly(4))
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_unix_server(handle, sock=lsock)
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            reader, writer = await asyncio.open_unix_connection(sock=c)
            writer.write(b"ping")
            assert await reader.read() == b"ping"
            await close_writer(writer)
            assert server_handlers == [1]
        finally:
            await close_server(server)

    run(loop, main())
