"""aiohttp on the loop: an aiohttp.web server and an aiohttp client, both on the
test's loop, over 127.0.0.1 TCP (and a unix socket).

Covers GET/POST, multi-megabyte bodies both ways, a streamed (chunked) response,
a websocket echo, keep-alive (many requests on one connection) and concurrent
requests on a connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

import aiohttp
import pytest
from aiohttp import web

from peers import run_on

BIG = 8 * 1024 * 1024  # bytes: several MB, more than any socket buffer
STREAM_CHUNKS = 200


def _pattern(n: int, seed: int = 0) -> bytes:
    """n deterministic, non-repeating-looking bytes (a truncated or reordered body
    cannot compare equal)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 64  # 2 KiB
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(block + i.to_bytes(8, "big")).digest() * 128  # 4 KiB
        i += 1
    return bytes(out[:n])


def _make_app() -> web.Application:
    app = web.Application(client_max_size=2 * BIG)

    async def hello(request):
        return web.Response(text="hello")

    async def echo(request):
        body = await request.read()
        return web.Response(
            body=body,
            headers={
                "X-Length": str(len(body)),
                "X-Sha256": hashlib.sha256(body).hexdigest(),
            },
        )

    async def json_sum(request):
        data = await request.json()
        return web.json_response({"name": data["name"], "sum": sum(data["values"])})

    async def big(request):
        n = int(request.query["n"])
        return web.Response(body=_pattern(n, seed=n))

    async def stream(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        resp.content_type = "text/plain"
        await resp.prepare(request)
        for i in range(STREAM_CHUNKS):
            await resp.write(f"chunk {i}\n".encode())
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the transport flush between bursts
        await resp.write_eof()
        return resp

    async def peer(request):
        # The client's address of the connection this request came on.
        host, port = request.transport.get_extra_info("peername")[:2]
        return web.json_response({"host": host, "port": port})

    async def sockname(request):
        # The server's own address of the connection (for a client that needs it).
        host, port = request.transport.get_extra_info("sockname")[:2]
        return web.json_response({"host": host, "port": port})

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close":
                    await ws.close()
                else:
                    await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_post("/json", json_sum)
    app.router.add_get("/big", big)
    app.router.add_get("/stream", stream)
    app.router.add_get("/peer", peer)
    app.router.add_get("/sockname", sockname)
    app.router.add_get("/ws", ws_echo)
    return app


@contextlib.asynccontextmanager
async def serving(*, unix_path=None, limit=100):
    """The app served on 127.0.0.1:<free port> (or ``unix_path``), and a client
    session for it; both torn down on exit."""
    runner = web.AppRunner(_make_app(), handle_signals=False)
    await runner.setup()
    try:
        if unix_path is None:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            connector = aiohttp.TCPConnector(limit=limit)
        else:
            site = web.UnixSite(runner, unix_path)
            await site.start()
            base = "http://peer.invalid"  # host is ignored by a UnixConnector
            connector = aiohttp.UnixConnector(path=unix_path, limit=limit)
        async with aiohttp.ClientSession(base, connector=connector) as session:
            yield session
    finally:
        await runner.cleanup()


def test_aiohttp_get_post(loop):
    async def main():
        async with serving() as s:
            async with s.get("/hello") as r:
                assert r.status == 200
                assert await r.text() == "hello"
            async with s.post("/echo", data=b"ping") as r:
                assert r.status == 200
                assert await r.read() == b"ping"
            async with s.post("/json", json={"name": "x", "values": [1, 2, 3]}) as r:
                assert await r.json() == {"name": "x", "sum": 6}
            async with s.get("/missing") as r:
                assert r.status == 404

    run_on(loop, main())


def test_aiohttp_unix_socket(loop, tmp_path):
    path = str(tmp_path / "aiohttp.sock")

    async def main():
        async with serving(unix_path=path) as s:
            async with s.get("/hello") as r:
                assert await r.text() == "hello"
            body = _pattern(BIG // 4, seed=3)
            async with s.post("/echo", data=body) as r:
                assert await r.read() == body

    run_on(loop, main())


def test_aiohttp_large_bodies(loop):
    async def main():
        async with serving() as s:
            up = _pattern(BIG, seed=1)
            async with s.post("/echo", data=up) as r:
                assert r.status == 200
                assert r.headers["X-Length"] == str(BIG)
                assert r.headers["X-Sha256"] == hashlib.sha256(up).hexdigest()
                assert await r.read() == up
            async with s.get("/big", params={"n": str(BIG + 17)}) as r:
                down = await r.read()
            assert down == _pattern(BIG + 17, seed=BIG + 17)
            # Read incrementally in small pieces (client-side flow control:
            # the transport is paused and resumed many times).
            received = bytearray()
            async with s.get("/big", params={"n": str(BIG)}) as r:
                async for piece in r.content.iter_chunked(4096):
                    received += piece
            assert bytes(received) == _pattern(BIG, seed=BIG)

    run_on(loop, main())


def test_aiohttp_streaming_response(loop):
    async def main():
        async with serving() as s:
            async with s.get("/stream") as r:
                assert r.status == 200
                assert r.headers.get("Transfer-Encoding") == "chunked"
                lines = [line async for line in r.content]
            assert lines == [f"chunk {i}\n".encode() for i in range(STREAM_CHUNKS)]

    run_on(loop, main())


def test_aiohttp_websocket_echo(loop):
    async def main():
        async with serving() as s:
            async with s.ws_connect("/ws") as ws:
                for i in range(100):
                    await ws.send_str(f"m{i}")
                    assert await ws.receive_str() == f"echo:m{i}"
                blob = os.urandom(1024 * 1024)
                await ws.send_bytes(blob)
                assert await ws.receive_bytes() == blob[::-1]
                # Pipelined: many messages in flight, answers in order.
                for i in range(200):
                    await ws.send_str(f"p{i}")
                for i in range(200):
                    assert await ws.receive_str() == f"echo:p{i}"
                await ws.send_str("close")
                msg = await ws.receive()
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.closed

    run_on(loop, main())


def test_aiohttp_keep_alive(loop):
    async def main():
        async with serving(limit=1) as s:
            ports = set()
            for i in range(300):
                async with s.get("/peer") as r:
                    ports.add((await r.json())["port"])
                async with s.post("/echo", data=str(i).encode()) as r:
                    assert await r.read() == str(i).encode()
            # Every request reused the one kept-alive connection.
            assert len(ports) == 1

    run_on(loop, main())


def test_aiohttp_concurrent_requests(loop):
    async def one(s, i):
        body = _pattern(1000 + 37 * i, seed=i)
        async with s.post("/echo", data=body) as r:
            assert r.status == 200
            return await r.read() == body

    async def peer_port(s):
        async with s.get("/peer") as r:
            return (await r.json())["port"]

    async def main():
        async with serving(limit=20) as s:
            results = await asyncio.gather(*(one(s, i) for i in range(300)))
            assert all(results)
            ports = await asyncio.gather(*(peer_port(s) for _ in range(100)))
            assert 1 <= len(set(ports)) <= 20  # the pool's limit holds

    run_on(loop, main())


def test_aiohttp_host_name(loop):
    """A host name instead of an address: aiohttp's default resolver asks
    loop.getaddrinfo (in the default executor), then connects to what it returned."""

    async def main():
        async with serving() as s:
            async with s.get("/sockname") as r:
                port = (await r.json())["port"]
            async with aiohttp.ClientSession() as by_name:
                async with by_name.get(f"http://localhost:{port}/hello") as r:
                    assert await r.text() == "hello"

    run_on(loop, main())


def test_aiohttp_client_against_closed_port(loop):
    """A refused connection surfaces as aiohttp's ClientConnectorError (the loop's
    create_connection raised ConnectionRefusedError)."""
    from peers import free_tcp_port

    port = free_tcp_port()

    async def main():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await s.get(f"http://127.0.0.1:{port}/")
            assert isinstance(info.value.os_error, ConnectionRefusedError)

    run_on(loop, main())
