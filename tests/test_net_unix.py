"""Unix stream sockets: create_unix_server / create_unix_connection (paths, pathlib,
abstract names, sock=), extra info, half-close, stale socket files, cleanup_socket
(3.13), errors."""

import asyncio
import errno
import os
import pathlib
import socket
import stat

import pytest
from net_helpers import PY313, RecordingProtocol, run, wait_for_data


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def stop(server):
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await asyncio.sleep(0)


async def unix_pair(loop, path, **server_kwargs):
    accepted = []

    def factory():
        p = RecordingProtocol(loop)
        accepted.append(p)
        return p

    server = await loop.create_unix_server(factory, path, **server_kwargs)
    tr, pr = await loop.create_unix_connection(lambda: RecordingProtocol(loop), path)
    while not accepted:
        await asyncio.sleep(0.001)
    await accepted[0].made
    return server, tr, pr, accepted[0]


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "pathlib"])
def test_unix_echo(loop, tmp_path, as_path):
    path = tmp_path / "echo.sock"
    path_arg = path if as_path else str(path)

    async def main():
        server = await loop.create_unix_server(Echo, path_arg)
        try:
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            s = server.sockets[0]
            assert s.family == socket.AF_UNIX
            assert s.getsockname() == str(path)
            for i in range(3):
                tr, pr = await loop.create_unix_connection(
                    lambda: RecordingProtocol(loop), path_arg
                )
                tr.write(b"msg%d" % i)
                await wait_for_data(pr, 4)
                assert bytes(pr.data) == b"msg%d" % i
                tr.close()
                await pr.lost
        finally:
            await stop(server)

    run(loop, main())


def test_unix_extra_info_and_transport(loop, tmp_path):
    path = str(tmp_path / "x.sock")

    async def main():
        server, tr, pr, spr = await unix_pair(loop, path)
        st = spr.transport
        try:
            assert isinstance(tr, asyncio.Transport)
            assert tr.get_extra_info("peername") == path
            # The client socket is unnamed: its address is the empty string.
            assert tr.get_extra_info("sockname") == ""
            assert st.get_extra_info("sockname") == path
            assert st.get_extra_info("peername") == ""
            sock = tr.get_extra_info("socket")
            assert sock.family == socket.AF_UNIX
            assert sock.type == socket.SOCK_STREAM
            assert sock.getpeername() == path
            assert tr.can_write_eof() is True
        finally:
            tr.close()
            st.close()
            await pr.lost
            await spr.lost
            await stop(server)

    run(loop, main())


def test_unix_callback_order_and_half_close(loop, tmp_path):
    path = str(tmp_path / "h.sock")

    async def main():
        server, tr, pr, spr = await unix_pair(loop, path)
        tr.write(b"request")
        tr.write_eof()
        await spr.eof
        # The server's eof_received returned None: it closed its transport.
        await spr.lost
        assert spr.simple_events() == ["made", "data", "eof", "lost"]
        assert bytes(spr.data) == b"request"
        assert await pr.lost is None
        assert pr.simple_events() == ["made", "eof", "lost"]
        await stop(server)

    run(loop, main())


def test_unix_large_transfer(loop, tmp_path):
    path = str(tmp_path / "big.sock")
    total = 16 * 1024 * 1024

    async def main():
        server, tr, pr, spr = await unix_pair(loop, path)
        payload = os.urandom(1024 * 1024) * (total // (1024 * 1024))
        tr.write(payload)
        tr.close()
        await spr.eof
        assert len(spr.data) == total
        assert spr.data == payload
        await pr.lost
        await spr.lost
        await stop(server)

    run(loop, main())


def test_abstract_namespace(loop):
    name = f"\0ringloop-test-{os.getpid()}-{id(loop)}"

    async def main():
        server = await loop.create_unix_server(Echo, name)
        try:
            assert server.sockets[0].getsockname() == name.encode()
            tr, pr = await loop.create_unix_connection(
                lambda: RecordingProtocol(loop), name
            )
            tr.write(b"abstract")
            await wait_for_data(pr, 8)
            assert bytes(pr.data) == b"abstract"
            tr.close()
            await pr.lost
        finally:
            await stop(server)

    run(loop, main())


def test_unix_server_sock(loop, tmp_path):
    path = str(tmp_path / "s.sock")

    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        server = await loop.create_unix_server(Echo, sock=lsock)
        try:
            assert server.sockets[0].fileno() == lsock.fileno()
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.connect(path)
            tr, pr = await loop.create_unix_connection(
                lambda: RecordingProtocol(loop), sock=raw
            )
            assert raw.getblocking() is False
            tr.write(b"sock variants")
            await wait_for_data(pr, 13)
            assert bytes(pr.data) == b"sock variants"
            tr.close()
            await pr.lost
            assert raw.fileno() == -1
        finally:
            await stop(server)
        assert lsock.fileno() == -1

    run(loop, main())


def test_unix_argument_errors(loop, tmp_path):
    path = str(tmp_path / "e.sock")

    async def main():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo, path, sock=s)
            with pytest.raises(ValueError):
                await loop.create_unix_connection(Echo, path, sock=s)
        with pytest.raises(ValueError):
            await loop.create_unix_server(Echo)
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Echo)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo, sock=s)
            with pytest.raises(ValueError):
                await loop.create_unix_connection(Echo, sock=s)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo, sock=s)

    run(loop, main())


def test_unix_connect_missing_path(loop, tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(
                asyncio.Protocol, str(tmp_path / "missing.sock")
            )

    run(loop, main())


def test_unix_connect_refused_on_stale_socket_file(loop, tmp_path):
    path = str(tmp_path / "stale.sock")

    async def main():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_unix_connection(asyncio.Protocol, path)
        assert info.value.errno == errno.ECONNREFUSED

    run(loop, main())


def test_unix_server_replaces_stale_socket_file(loop, tmp_path):
    path = str(tmp_path / "stale.sock")

    async def main():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        # asyncio removes an existing socket file before binding.
        server = await loop.create_unix_server(Echo, path)
        try:
            tr, pr = await loop.create_unix_connection(
                lambda: RecordingProtocol(loop), path
            )
            tr.write(b"x")
            await wait_for_data(pr, 1)
            tr.close()
            await pr.lost
        finally:
            await stop(server)

    run(loop, main())


def test_unix_server_on_regular_file_is_address_in_use(loop, tmp_path):
    path = tmp_path / "regular"
    path.write_text("not a socket")

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(Echo, str(path))
        assert info.value.errno == errno.EADDRINUSE
        # The regular file is left alone.
        assert path.read_text() == "not a socket"

    run(loop, main())


def test_unix_start_serving_false(loop, tmp_path):
    path = str(tmp_path / "late.sock")

    async def main():
        server = await loop.create_unix_server(Echo, path, start_serving=False)
        try:
            assert server.is_serving() is False
            with pytest.raises(ConnectionRefusedError):
                await loop.create_unix_connection(asyncio.Protocol, path)
            await server.start_serving()
            assert server.is_serving() is True
            tr, pr = await loop.create_unix_connection(
                lambda: RecordingProtocol(loop), path
            )
            tr.close()
            await pr.lost
        finally:
            await stop(server)

    run(loop, main())


def test_unix_socket_file_after_close(loop, tmp_path):
    path = tmp_path / "kept.sock"

    async def main():
        server = await loop.create_unix_server(Echo, str(path))
        await stop(server)

    run(loop, main())
    if PY313:
        # 3.13: cleanup_socket=True by default unlinks the socket file on close.
        assert not path.exists()
    else:
        # Before 3.13 asyncio leaves the socket file behind.
        assert stat.S_ISSOCK(os.stat(path).st_mode)


@pytest.mark.skipif(
    not PY313, reason="create_unix_server(cleanup_socket=) is new in 3.13"
)
def test_cleanup_socket_false_keeps_file(loop, tmp_path):
    path = tmp_path / "kept.sock"

    async def main():
        server = await loop.create_unix_server(Echo, str(path), cleanup_socket=False)
        await stop(server)

    run(loop, main())
    assert stat.S_ISSOCK(os.stat(path).st_mode)


@pytest.mark.skipif(
    not PY313, reason="create_unix_server(cleanup_socket=) is new in 3.13"
)
def test_cleanup_socket_with_sock_and_replaced_file(loop, tmp_path):
    path = tmp_path / "c.sock"

    async def main():
        # sock= is cleaned up too by default.
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(str(path))
        server = await loop.create_unix_server(Echo, sock=lsock)
        await stop(server)
        assert not path.exists()
        # A file that replaced the socket meanwhile is not removed.
        server = await loop.create_unix_server(Echo, str(path))
        os.unlink(path)
        path.write_text("someone else's")
        await stop(server)
        assert path.read_text() == "someone else's"

    run(loop, main())


def test_unix_connection_survives_server_close(loop, tmp_path):
    path = str(tmp_path / "keep.sock")

    async def main():
        server, tr, pr, spr = await unix_pair(loop, path)
        server.close()
        tr.write(b"after server close")
        await wait_for_data(spr, 18)
        assert bytes(spr.data) == b"after server close"
        tr.close()
        await pr.lost
        await spr.lost
        await server.wait_closed()

    run(loop, main())


def test_pathlib_path_type_in_extra_info(loop, tmp_path):
    # The transport reports the address as the OS gives it: a str, not a Path.
    path = tmp_path / "p.sock"

    async def main():
        server = await loop.create_unix_server(Echo, path)
        try:
            tr, pr = await loop.create_unix_connection(
                lambda: RecordingProtocol(loop), path
            )
            assert tr.get_extra_info("peername") == str(path)
            assert isinstance(tr.get_extra_info("peername"), str)
            tr.close()
            await pr.lost
        finally:
            await stop(server)

    run(loop, main())
    assert isinstance(path, pathlib.Path)
