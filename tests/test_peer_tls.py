"""Real peers over TLS on the loop: an aiohttp client fetching from a local
HTTPS aiohttp server, and redis-py talking to a real redis-server over TLS
(redis-server's own OpenSSL on the far end). Certificates come from the
openssl CLI at run time (tests/tls_helpers.py)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from peers import run_on
from peers.servers import start_redis, stop_redis
from tls_helpers import client_context, make_certs, server_context

BIG = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls-peers"))


def _body(n: int) -> bytes:
    block = hashlib.sha256(str(n).encode()).digest() * 128  # 4 KiB
    return (block * (n // len(block) + 1))[:n]


def _app() -> web.Application:
    app = web.Application(client_max_size=2 * BIG)

    async def hello(request):
        cipher = request.transport.get_extra_info("cipher")
        return web.json_response({"hello": "tls", "cipher": cipher[0]})

    async def echo(request):
        body = await request.read()
        return web.Response(body=body, headers={
            "X-Sha256": hashlib.sha256(body).hexdigest()})

    async def big(request):
        return web.Response(body=_body(int(request.query["n"])))

    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/big", big)
    return app


def test_aiohttp_https(loop, certs):
    async def main():
        runner = web.AppRunner(_app(), handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0,
                               ssl_context=server_context(certs))
            await site.start()
            port = runner.addresses[0][1]
            # The certificate names 127.0.0.1 as well as localhost.
            base = f"https://127.0.0.1:{port}"
            connector = aiohttp.TCPConnector(ssl=client_context(certs),
                                             limit=10)
            async with aiohttp.ClientSession(base, connector=connector) as s:
                async with s.get("/hello") as r:
                    assert r.status == 200
                    data = await r.json()
                    assert data["hello"] == "tls" and data["cipher"]
                up = _body(BIG + 3)
                async with s.post("/echo", data=up) as r:
                    assert r.headers["X-Sha256"] == \
                        hashlib.sha256(up).hexdigest()
                    assert await r.read() == up
                async with s.get("/big", params={"n": str(BIG)}) as r:
                    assert await r.read() == _body(BIG)
                # Many requests at once over the pool (several handshakes).
                async def one(i):
                    async with s.post("/echo", data=b"%d" % i) as r:
                        return await r.read()

                got = await asyncio.gather(*(one(i) for i in range(50)))
                assert got == [b"%d" % i for i in range(50)]
            # A client that does not trust the certificate is refused.
            strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            async with aiohttp.ClientSession(
                    base, connector=aiohttp.TCPConnector(ssl=strict)) as s:
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    async with s.get("/hello"):
                        pass
        finally:
            await runner.cleanup()

    run_on(loop, main())


@pytest.fixture(scope="module")
def redis_tls(certs):
    server = start_redis(tls=(certs.cert, certs.key, certs.ca))
    try:
        yield server
    finally:
        stop_redis(server)


def test_redis_over_tls(loop, redis_tls, certs):
    async def main():
        r = aioredis.Redis(host="localhost", port=redis_tls.tls_port, ssl=True,
                           ssl_ca_certs=str(certs.ca),
                           retry=Retry(NoBackoff(), 0))
        async with r:
            assert await r.ping()
            value = _body(BIG // 2)
            await r.set("tls:big", value)
            assert await r.get("tls:big") == value
            async with r.pipeline(transaction=True) as p:
                for i in range(200):
                    p.incr("tls:counter")
                res = await p.execute()
            assert res[-1] == 200
            info = await r.info("server")
            assert info["redis_version"]
            await r.delete("tls:big", "tls:counter")

    run_on(loop, main())
