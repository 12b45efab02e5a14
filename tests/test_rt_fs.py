"""ringloop.rt.fs on both loops: results equal the blocking calls', errors are
the same OSError subclasses, cancellation leaks nothing."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading

import pytest

from conftest import import_ringloop


@pytest.fixture
def fs():
    return import_ringloop().rt.fs


def test_write_read_roundtrip(loop, fs, tmp_path):
    p = tmp_path / "a.bin"
    data = os.urandom(100_000)

    async def main():
        await fs.write_file(p, data)
        await fs.write_file(str(p), b"tail", append=True)
        return await fs.read_file(p), await fs.read(p)

    a, b = loop.run_until_complete(main())
    assert a == b == data + b"tail" == p.read_bytes()


def test_big_file_by_digest(loop, fs, tmp_path):
    p = tmp_path / "big"
    with open(p, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(1 << 20))
    digest = hashlib.sha256(p.read_bytes()).hexdigest()

    async def main():
        return hashlib.sha256(await fs.read_file(p)).hexdigest()

    assert loop.run_until_complete(main()) == digest


def test_many_small_files(loop, fs, tmp_path):
    names = [tmp_path / f"f{i}" for i in range(10_000)]
    for i, n in enumerate(names):
        n.write_bytes(b"%d" % i)

    async def main():
        return await asyncio.gather(*[fs.read_file(n) for n in names])

    assert loop.run_until_complete(main()) == [b"%d" % i for i in range(10_000)]


def test_text_and_empty(loop, fs, tmp_path):
    p = tmp_path / "t.txt"

    async def main():
        await fs.write_text(p, "héllo")
        text = await fs.read_text(p)
        await fs.write_file(p, b"")
        return text, await fs.read_file(p)

    assert loop.run_until_complete(main()) == ("héllo", b"")


def test_file_object(loop, fs, tmp_path):
    p = tmp_path / "f"

    async def main():
        async with await fs.open(p, "wb") as f:
            assert await f.write(b"0123456789") == 10
            await f.fsync()
        async with await fs.open(p, "r+b") as f:
            first = await f.read(4)
            pos = f.tell()
            f.seek(-2, os.SEEK_END)
            last = await f.read()
            f.seek(0)
            await f.write(b"AB")
        assert f.closed
        with pytest.raises(ValueError):
            await f.read()
        return first, pos, last

    assert loop.run_until_complete(main()) == (b"0123", 4, b"89")
    assert p.read_bytes() == b"AB23456789"


def test_copy_and_stat(loop, fs, tmp_path):
    src, dst = tmp_path / "s", tmp_path / "d"
    src.write_bytes(b"x" * 5000)
    os.chmod(src, 0o640)

    async def main():
        n = await fs.copy(src, dst)
        return n, await fs.stat(dst)

    n, st = loop.run_until_complete(main())
    assert n == 5000 and dst.read_bytes() == src.read_bytes()
    assert st == os.stat(dst) and st.st_mode & 0o777 == 0o640


def _blocking_error(fn):
    try:
        fn()
    except OSError as exc:
        return type(exc), exc.errno, exc.filename
    raise AssertionError("no error")


def test_errors_match_blocking_calls(loop, fs, tmp_path):
    missing = tmp_path / "missing"
    notdir = tmp_path / "file"
    notdir.write_bytes(b"")

    async def err(coro):
        try:
            await coro
        except OSError as exc:
            return type(exc), exc.errno, exc.filename
        raise AssertionError("no error")

    async def main():
        return [
            await err(fs.read_file(missing)),
            await err(fs.read_file(tmp_path)),
            await err(fs.open(tmp_path, "wb")),
            await err(fs.open(notdir / "x", "rb")),
            await err(fs.open(notdir, "xb")),
            await err(fs.stat(missing)),
            await err(fs.copy(missing, tmp_path / "y")),
        ]

    got = loop.run_until_complete(main())
    assert got == [
        _blocking_error(lambda: open(missing, "rb")),
        (IsADirectoryError, errno.EISDIR, str(tmp_path)),
        _blocking_error(lambda: open(tmp_path, "wb")),
        _blocking_error(lambda: open(notdir / "x", "rb")),
        _blocking_error(lambda: open(notdir, "xb")),
        _blocking_error(lambda: os.stat(missing)),
        _blocking_error(lambda: open(missing, "rb")),
    ]


def test_bad_arguments(loop, fs, tmp_path):
    async def main():
        with pytest.raises(ValueError):
            await fs.open(tmp_path / "x", "rw")
        with pytest.raises(ValueError):
            await fs.read_file("a\0b")
        with pytest.raises(TypeError):
            await fs.write_file(tmp_path / "x", "not bytes")

    loop.run_until_complete(main())


def test_cancellation_leaks_no_fd(loop, fs, tmp_path):
    p = tmp_path / "c"
    p.write_bytes(b"data" * 1000)
    big = tmp_path / "big"
    big.write_bytes(b"b" * (1 << 20))  # read into a lent buffer after a pause

    async def main():
        for i in range(50):
            coros = (fs.open(p, "rb"), fs.read_file(p), fs.read_file(big),
                     fs.write_file(tmp_path / "w", b"x"))
            for coro in coros[i % 4:] + coros[:i % 4]:
                t = asyncio.ensure_future(coro)
                for _ in range(i % 3):
                    await asyncio.sleep(0)
                t.cancel()
                try:
                    f = await t
                except asyncio.CancelledError:
                    pass
                else:
                    if hasattr(f, "close"):
                        await f.close()
        # let every cancelled job finish in the pool
        await fs.read_file(p)
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())


def test_timeout_and_taskgroup(loop, fs, tmp_path):
    p = tmp_path / "t"
    p.write_bytes(b"z")

    async def main():
        async with asyncio.timeout(10):
            async with asyncio.TaskGroup() as tg:
                ts = [tg.create_task(fs.read_file(p)) for _ in range(20)]
        return {t.result() for t in ts}

    assert loop.run_until_complete(main()) == {b"z"}


def test_two_loops_in_two_threads(loop_factory, fs, tmp_path):
    p = tmp_path / "two"
    p.write_bytes(b"q" * 1000)
    out = []

    def run():
        lp = loop_factory()
        try:
            async def main():
                return await asyncio.gather(*[fs.read_file(p) for _ in range(100)])

            out.append(lp.run_until_complete(main()))
        finally:
            lp.close()

    ts = [threading.Thread(target=run) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == [[b"q" * 1000] * 100] * 2


def test_file_ops_cancelled(loop, fs, tmp_path):
    p = tmp_path / "ops"
    p.write_bytes(b"0123456789" * 1000)

    async def main():
        f = await fs.open(p, "r+b")
        try:
            for i in range(30):
                for coro in (f.read(100), f.read(), f.write(b"xy"), f.fsync()):
                    t = asyncio.ensure_future(coro)
                    for _ in range(i % 3):
                        await asyncio.sleep(0)
                    t.cancel()
                    try:
                        await t
                    except asyncio.CancelledError:
                        pass
        finally:
            await f.close()
        return len(await fs.read_file(p))

    assert loop.run_until_complete(main()) >= 10_000


def test_loop_closed_with_file_ops_in_flight(loop_factory, fs, tmp_path):
    p = tmp_path / "inflight"
    p.write_bytes(b"i" * (1 << 20))
    lp = loop_factory()

    async def start():
        return [asyncio.ensure_future(c) for c in
                (fs.open(p, "rb"), fs.read_file(p), fs.write_file(tmp_path / "o", b"o"))]

    async def cancel(tasks):
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    lp.run_until_complete(cancel(lp.run_until_complete(start())))
    lp.close()  # jobs still in flight finish in C: fds closed, results dropped
