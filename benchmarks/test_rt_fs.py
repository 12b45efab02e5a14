"""rt.fs against to_thread-based file reads.

"read 1 GiB": one 1 GiB file read whole (on ringloop ``rt.fs.read_file``; on
asyncio and uvloop ``asyncio.to_thread(Path.read_bytes)``).  "10,000 small
files": 10,000 files of 1 KiB read concurrently (gather) the same two ways.
The files are created once under $TMPDIR/ringloop-bench-fs and reused: the
page cache is warm after the first run, so these are warm-cache numbers.
"""

import asyncio
import hashlib
import os
import pathlib
import tempfile

from benchmarks._harness import Benchmark, pytest_benchmarks

ROOT = pathlib.Path(tempfile.gettempdir()) / "ringloop-bench-fs"


def _unpin():
    os.sched_setaffinity(0, set(range(os.cpu_count())))


def _big(size):
    p = ROOT / f"big-{size}"
    if not p.exists() or p.stat().st_size != size:
        ROOT.mkdir(exist_ok=True)
        block = os.urandom(1 << 20)
        with open(p.with_suffix(".tmp"), "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        os.replace(p.with_suffix(".tmp"), p)
    return p


def _small(n):
    d = ROOT / f"small-{n}"
    if not (d / f"{n - 1}").exists():
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (d / str(i)).write_bytes(b"%d" % i + b"." * 1000)
    return [d / str(i) for i in range(n)]


def _reader(loop):
    if type(loop).__module__.startswith("ringloop"):
        from ringloop.rt import fs

        return fs.read_file
    return lambda p: asyncio.to_thread(p.read_bytes)


def read_big(loop, n):
    _unpin()
    p = _big(n << 20)
    read = _reader(loop)

    def run():
        data = loop.run_until_complete(read(p))
        return len(data) >> 20, len(data) == n << 20

    return run


def read_small(loop, n):
    _unpin()
    paths = _small(n)
    read = _reader(loop)

    async def main():
        return await asyncio.gather(*[read(p) for p in paths])

    def run():
        out = loop.run_until_complete(main())
        return n, hashlib.sha256(b"".join(out)).hexdigest()[:8] == _digest(n)

    return run


def _digest(n):
    return hashlib.sha256(b"".join(b"%d" % i + b"." * 1000 for i in range(n))).hexdigest()[:8]


BENCHMARKS = [
    Benchmark("rt.fs read 1 GiB vs to_thread", f"{__name__}:read_big", 1024, "MiB",
              expected=lambda n: True),
    Benchmark("rt.fs 10,000 small files vs to_thread", f"{__name__}:read_small", 10_000,
              "files", expected=lambda n: True),
]

test_rt_fs = pytest_benchmarks(BENCHMARKS)
