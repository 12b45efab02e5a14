"""redis-py's asyncio client (``redis.asyncio``) on the loop, against a real
redis-server (tests/peers/servers.py: one per session, on 127.0.0.1 and a unix
socket).

Covers SET/GET and friends, transactional and plain pipelines, pub/sub (channels
and patterns), a multi-megabyte value, and many concurrent commands over a
connection pool; over TCP and over the unix socket.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from peers import run_on, wait_for
from peers.servers import redis_server  # noqa: F401 - session fixture

TRANSPORTS = ["tcp", "unix"]


def _no_retry():
    # redis-py retries a failed connect or command 3 times with backoff by default:
    # a connection the loop dropped must fail the test, not be papered over.
    return Retry(NoBackoff(), 0)


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


def _client(server, transport):
    if transport == "tcp":
        return aioredis.Redis(host=server.host, port=server.port, retry=_no_retry())
    return aioredis.Redis(unix_socket_path=server.unix_path, retry=_no_retry())


def _prefix():
    """Keys of one test run: the loop kinds and transports share one server."""
    return f"t:{uuid.uuid4().hex}:"


def test_redis_commands(loop, redis_server, transport):
    async def main():
        p = _prefix()
        async with _client(redis_server, transport) as r:
            assert await r.ping() is True
            assert await r.set(p + "a", "1") is True
            assert await r.get(p + "a") == b"1"
            assert await r.get(p + "missing") is None
            assert await r.incrby(p + "a", 41) == 42
            assert await r.mset({p + "b": "x", p + "c": "y"}) is True
            assert await r.mget([p + "a", p + "b", p + "c"]) == [b"42", b"x", b"y"]
            assert await r.hset(p + "h", mapping={"f1": "v1", "f2": "v2"}) == 2
            assert await r.hgetall(p + "h") == {b"f1": b"v1", b"f2": b"v2"}
            assert await r.rpush(p + "l", *range(10)) == 10
            assert await r.lrange(p + "l", 0, -1) == [str(i).encode() for i in range(10)]
            assert await r.set(p + "e", "v", ex=100) is True
            assert 0 < await r.ttl(p + "e") <= 100
            assert await r.delete(p + "a", p + "b", p + "c", p + "h", p + "l", p + "e") == 6
            assert await r.exists(p + "a") == 0
            with pytest.raises(aioredis.ResponseError):
                await r.execute_command("NOSUCHCOMMAND")
            # The connection is still usable after an error reply.
            assert await r.echo("still here") == b"still here"

    run_on(loop, main())


def test_redis_pipelines(loop, redis_server, transport):
    async def main():
        p = _prefix()
        async with _client(redis_server, transport) as r:
            async with r.pipeline(transaction=True) as pipe:
                for i in range(1000):
                    pipe.set(f"{p}{i}", i)
                pipe.incr(p + "counter")
                pipe.get(p + "999")
                results = await pipe.execute()
            assert results[:1000] == [True] * 1000
            assert results[1000:] == [1, b"999"]
            async with r.pipeline(transaction=False) as pipe:
                for i in range(1000):
                    pipe.get(f"{p}{i}")
                values = await pipe.execute()
            assert values == [str(i).encode() for i in range(1000)]
            # WATCH/MULTI: an optimistic transaction.
            async with r.pipeline(transaction=True) as pipe:
                await pipe.watch(p + "counter")
                current = int(await pipe.get(p + "counter"))
                pipe.multi()
                pipe.set(p + "counter", current + 10)
                assert await pipe.execute() == [True]
            assert await r.get(p + "counter") == b"11"
            assert await r.delete(*[f"{p}{i}" for i in range(1000)], p + "counter") == 1001

    run_on(loop, main())


def test_redis_pubsub(loop, redis_server, transport):
    n = 200

    async def main():
        p = _prefix()
        async with _client(redis_server, transport) as pub, _client(
            redis_server, transport
        ) as sub_client:
            ps = sub_client.pubsub()
            try:
                await ps.subscribe(p + "chan")
                await ps.psubscribe(p + "pat.*")
                confirmations = []
                while len(confirmations) < 2:
                    msg = await wait_for(
                        ps.get_message(timeout=5.0), "subscribe confirmations"
                    )
                    if msg is not None:
                        confirmations.append(msg["type"])
                assert sorted(confirmations) == ["psubscribe", "subscribe"]

                async def publish():
                    for i in range(n):
                        assert await pub.publish(p + "chan", f"m{i}") == 1
                        assert await pub.publish(p + f"pat.{i % 3}", f"q{i}") == 1

                async def receive():
                    got = []
                    async for msg in ps.listen():
                        got.append(msg)
                        if len(got) == 2 * n:
                            return got

                publisher = asyncio.ensure_future(publish())
                got = await wait_for(receive(), "published messages")
                await publisher
                chan = [m["data"] for m in got if m["type"] == "message"]
                pat = [(m["channel"], m["data"]) for m in got if m["type"] == "pmessage"]
                assert chan == [f"m{i}".encode() for i in range(n)]
                assert pat == [((p + f"pat.{i % 3}").encode(), f"q{i}".encode()) for i in range(n)]
                await ps.unsubscribe(p + "chan")
                await ps.punsubscribe(p + "pat.*")
                # Once the server has confirmed both (replies on the subscriber's
                # connection), nobody listens any more.
                confirmations = []
                while len(confirmations) < 2:
                    msg = await wait_for(
                        ps.get_message(timeout=5.0), "unsubscribe confirmations"
                    )
                    if msg is not None:
                        confirmations.append(msg["type"])
                assert sorted(confirmations) == ["punsubscribe", "unsubscribe"]
                assert await pub.publish(p + "chan", "nobody") == 0
                assert await pub.publish(p + "pat.0", "nobody") == 0
            finally:
                await ps.aclose()

    run_on(loop, main())


def test_redis_large_value(loop, redis_server, transport):
    size = 8 * 1024 * 1024

    async def main():
        p = _prefix()
        value = os.urandom(size)
        async with _client(redis_server, transport) as r:
            assert await r.set(p + "big", value) is True
            assert await r.strlen(p + "big") == size
            assert await r.get(p + "big") == value
            # Several large values in flight in one pipeline, both directions.
            values = [os.urandom(size // 4) for _ in range(4)]
            async with r.pipeline(transaction=False) as pipe:
                for i, v in enumerate(values):
                    pipe.set(f"{p}big{i}", v)
                for i in range(len(values)):
                    pipe.get(f"{p}big{i}")
                results = await pipe.execute()
            assert results == [True] * 4 + values
            assert await r.delete(p + "big", *[f"{p}big{i}" for i in range(4)]) == 5

    run_on(loop, main())


def test_redis_concurrent_commands(loop, redis_server, transport):
    tasks = 500

    async def main():
        p = _prefix()
        # Commands wait for a free connection (a plain ConnectionPool raises
        # MaxConnectionsError instead).
        if transport == "tcp":
            where = {"host": redis_server.host, "port": redis_server.port}
        else:
            where = {
                "connection_class": aioredis.UnixDomainSocketConnection,
                "path": redis_server.unix_path,
            }
        name = "pool-" + uuid.uuid4().hex
        pool = aioredis.BlockingConnectionPool(
            max_connections=20, timeout=None, retry=_no_retry(), client_name=name, **where
        )
        async with aioredis.Redis.from_pool(pool) as r:

            async def worker(i):
                await r.set(f"{p}k{i}", i)
                await r.incr(p + "counter")
                await r.rpush(p + "list", i)
                return int(await r.get(f"{p}k{i}"))

            results = await asyncio.gather(*(worker(i) for i in range(tasks)))
            assert results == list(range(tasks))
            assert await r.get(p + "counter") == str(tasks).encode()
            pushed = await r.lrange(p + "list", 0, -1)
            assert sorted(int(x) for x in pushed) == list(range(tasks))
            # The commands really ran concurrently, on several connections (as the
            # server counts them), and the pool's limit held.
            clients = [c for c in await r.client_list() if c["name"] == name]
            assert 1 < len(clients) <= 20
            await r.delete(p + "counter", p + "list", *[f"{p}k{i}" for i in range(tasks)])

    run_on(loop, main())


def test_redis_from_url(loop, redis_server):
    """The URL forms most applications use (redis://host:port/db with a host name,
    and unix://path)."""

    async def main():
        p = _prefix()
        by_name = f"redis://localhost:{redis_server.port}/0"  # resolved by loop.getaddrinfo
        for url in (by_name, f"unix://{redis_server.unix_path}?db=1"):
            r = aioredis.from_url(url, decode_responses=True, retry=_no_retry())
            try:
                await r.set(p + "u", "v")
                assert await r.get(p + "u") == "v"
                info = await r.client_info()
                assert int(info["db"]) == (1 if url.startswith("unix") else 0)
                await r.delete(p + "u")
            finally:
                await r.aclose()

    run_on(loop, main())
