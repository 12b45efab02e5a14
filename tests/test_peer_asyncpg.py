"""asyncpg on the loop, against a real PostgreSQL (tests/peers/servers.py: one per
session, on 127.0.0.1 and a unix socket).

Covers connect (TCP with asyncpg's default sslmode=prefer negotiation, and the unix
socket), DDL, executemany and COPY of many rows, fetches, a rolled-back
transaction, a large result set (fetched whole and through a cursor),
LISTEN/NOTIFY, and a pool serving concurrent queries.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from peers import run_on, wait_for
from peers.servers import postgres_server  # noqa: F401 - session fixture

TRANSPORTS = ["tcp", "unix"]


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


def _where(server, transport):
    if transport == "tcp":
        return {"host": server.host, "port": server.port}
    return {"host": server.socket_dir, "port": server.port}


def _connect(server, transport, **kwargs):
    return asyncpg.connect(
        user=server.user, database=server.database, **_where(server, transport), **kwargs
    )


def _table():
    """A table name of one test run: the loop kinds and transports share a server."""
    return f"t_{uuid.uuid4().hex}"


def test_asyncpg_connect_and_query(loop, postgres_server, transport):
    async def main():
        conn = await _connect(postgres_server, transport)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            assert conn.get_server_version().major >= 12
            row = await conn.fetchrow("SELECT $1::int + 1 AS n, $2::text AS s", 41, "x")
            assert (row["n"], row["s"]) == (42, "x")
            # The server saw the transport we meant (no client address on a unix socket).
            client_addr = await conn.fetchval("SELECT inet_client_addr()::text")
            assert client_addr == (None if transport == "unix" else "127.0.0.1/32")
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM no_such_table_here")
            assert await conn.fetchval("SELECT 'still usable'") == "still usable"
        finally:
            await conn.close()
        assert conn.is_closed()

    run_on(loop, main())


def test_asyncpg_rows_in_and_out(loop, postgres_server, transport):
    n_many, n_copy = 2_000, 20_000

    async def main():
        t = _table()
        conn = await _connect(postgres_server, transport)
        try:
            await conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, name text, v float8)")
            await conn.executemany(
                f"INSERT INTO {t} VALUES ($1, $2, $3)",
                [(i, f"name {i}", i / 2) for i in range(n_many)],
            )
            status = await conn.copy_records_to_table(
                t,
                records=[(i, f"copied {i}", -i) for i in range(n_many, n_many + n_copy)],
                columns=["id", "name", "v"],
            )
            assert status == f"COPY {n_copy}"
            assert await conn.fetchval(f"SELECT count(*) FROM {t}") == n_many + n_copy
            rows = await conn.fetch(f"SELECT id, name, v FROM {t} WHERE id < 5 ORDER BY id")
            assert [tuple(r) for r in rows] == [(i, f"name {i}", i / 2) for i in range(5)]
            row = await conn.fetchrow(f"SELECT * FROM {t} WHERE id = $1", n_many + 7)
            assert dict(row) == {"id": n_many + 7, "name": f"copied {n_many + 7}", "v": -(n_many + 7)}
            # COPY out, the other direction of the copy sub-protocol.
            sink = _Sink()
            out = await conn.copy_from_query(
                f"SELECT id FROM {t} WHERE id < 3 ORDER BY id", output=sink, format="csv"
            )
            assert out == "COPY 3"
            assert sink.data == b"0\n1\n2\n"
            await conn.execute(f"DROP TABLE {t}")
        finally:
            await conn.close()

    run_on(loop, main())


class _Sink:
    """An async writer for copy_from_query: collects what it is given."""

    def __init__(self):
        self.data = b""

    async def __call__(self, chunk):
        self.data += chunk


def test_asyncpg_transaction_rollback(loop, postgres_server, transport):
    async def main():
        t = _table()
        conn = await _connect(postgres_server, transport)
        try:
            await conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY)")
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {t} VALUES (1)")
            with pytest.raises(RuntimeError, match="roll me back"):
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {t} VALUES (2)")
                    assert await conn.fetchval(f"SELECT count(*) FROM {t}") == 2
                    raise RuntimeError("roll me back")
            # A server-side error aborts the transaction too.
            with pytest.raises(asyncpg.UniqueViolationError):
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {t} VALUES (3)")
                    await conn.execute(f"INSERT INTO {t} VALUES (1)")
            # Nested: a savepoint rolled back inside a committed transaction.
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {t} VALUES (4)")
                with pytest.raises(ZeroDivisionError):
                    async with conn.transaction():
                        await conn.execute(f"INSERT INTO {t} VALUES (5)")
                        1 / 0
            ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM {t} ORDER BY id")]
            assert ids == [1, 4]
            assert not conn.is_in_transaction()
            await conn.execute(f"DROP TABLE {t}")
        finally:
            await conn.close()

    run_on(loop, main())


def test_asyncpg_query_cancelled(loop, postgres_server, transport):
    """A query cut short by asyncpg's timeout= (a loop timer): asyncpg sends a
    CancelRequest over a second, short-lived connection, and the first connection
    stays usable."""

    async def main():
        conn = await _connect(postgres_server, transport)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("SELECT pg_sleep(60)", timeout=0.2)
            assert await conn.fetchval("SELECT 'after cancel'") == "after cancel"
            # Cancelling the awaiting task (here by asyncio.wait_for) does the same.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(conn.fetchval("SELECT pg_sleep(60)"), 0.2)
            assert await conn.fetchval("SELECT 2") == 2
        finally:
            await conn.close()

    run_on(loop, main())


def test_asyncpg_large_result(loop, postgres_server, transport):
    n = 100_000  # ~12 MB on the wire

    async def main():
        conn = await _connect(postgres_server, transport)
        try:
            query = "SELECT g, repeat(md5(g::text), 3) AS s FROM generate_series(1, $1) g"
            rows = await conn.fetch(query, n)
            assert len(rows) == n
            assert sum(r["g"] for r in rows) == n * (n + 1) // 2
            assert all(len(r["s"]) == 96 for r in rows)
            # The same through a server-side cursor, in batches.
            total = count = 0
            async with conn.transaction():
                async for record in conn.cursor(query, n, prefetch=5000):
                    total += record["g"]
                    count += 1
            assert (count, total) == (n, n * (n + 1) // 2)
            big = await conn.fetchval("SELECT repeat('y', 16 * 1024 * 1024)")
            assert big == "y" * (16 * 1024 * 1024)
        finally:
            await conn.close()

    run_on(loop, main())


def test_asyncpg_listen_notify(loop, postgres_server, transport):
    n = 100

    async def main():
        channel = f"ch_{uuid.uuid4().hex}"
        listener = await _connect(postgres_server, transport)
        sender = await _connect(postgres_server, transport)
        try:
            received = []
            done = asyncio.get_running_loop().create_future()

            def on_notify(conn, pid, chan, payload):
                assert conn is listener and chan == channel
                received.append((pid, payload))
                if len(received) == n + 1 and not done.done():
                    done.set_result(None)

            await listener.add_listener(channel, on_notify)
            for i in range(n):
                await sender.execute("SELECT pg_notify($1, $2)", channel, f"p{i}")
            # Notifications sent inside a transaction arrive at commit.
            async with sender.transaction():
                await sender.execute(f"NOTIFY {channel}, 'in-tx'")
            # The listener only waits: notifications arrive without it querying.
            await wait_for(done, "notifications")
            sender_pid = sender.get_server_pid()
            assert received == [(sender_pid, f"p{i}") for i in range(n)] + [(sender_pid, "in-tx")]
            await listener.remove_listener(channel, on_notify)
        finally:
            await sender.close()
            await listener.close()

    run_on(loop, main())


def test_asyncpg_pool_concurrent(loop, postgres_server, transport):
    async def main():
        t = _table()
        async with asyncpg.create_pool(
            user=postgres_server.user,
            database=postgres_server.database,
            min_size=2,
            max_size=8,
            **_where(postgres_server, transport),
        ) as pool:
            await pool.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, worker int)")

            async def work(i):
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        await conn.execute(f"INSERT INTO {t} VALUES ($1, $2)", i, i % 8)
                        return await conn.fetchval("SELECT $1::int * 2", i)

            results = await asyncio.gather(*(work(i) for i in range(300)))
            assert results == [2 * i for i in range(300)]
            values = await asyncio.gather(*(pool.fetchval("SELECT $1::int", i) for i in range(200)))
            assert values == list(range(200))
            assert await pool.fetchval(f"SELECT count(*) FROM {t}") == 300
            assert 2 <= pool.get_size() <= 8
            await pool.execute(f"DROP TABLE {t}")

    run_on(loop, main())


def test_asyncpg_connect_refused(loop):
    """Connecting where nothing listens raises the OSError the loop reported."""
    from peers import free_tcp_port

    port = free_tcp_port()

    async def main():
        with pytest.raises(OSError) as info:
            await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", timeout=10)
        assert isinstance(info.value, ConnectionRefusedError) or "refused" in str(info.value).lower()

    run_on(loop, main())
