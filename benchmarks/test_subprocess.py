"""Subprocesses and pipes.

spawn, sequential: n x (create_subprocess_exec("true") + wait()), one at a time.
spawn, concurrent: n children started at once (gather), each waited for.
read pipe: n MiB from ``dd if=/dev/zero bs=1M`` through connect_read_pipe into a
    Protocol that counts bytes.
write pipe: n MiB written with connect_write_pipe (1 MiB writes, honouring
    pause_writing / resume_writing) into ``cat > /dev/null``.

The pipe peers run on the helper CPU (taskset) so that the loop's CPU only does
the loop's work; the spawned ``true`` children inherit the loop's CPU.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

from benchmarks import _harness
from benchmarks._harness import Benchmark, pytest_benchmarks

MiB = 1 << 20


def _on_helper(argv):
    cpu = _harness.HELPER_CPU
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv


def spawn_sequential(loop, n):
    async def main():
        total = 0
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec("true")
            total += await proc.wait()
        return total

    def run():
        return n, [loop.run_until_complete(main())]

    return run


def spawn_concurrent(loop, n):
    async def one():
        proc = await asyncio.create_subprocess_exec("true")
        return await proc.wait()

    async def main():
        return sum(await asyncio.gather(*(one() for _ in range(n))))

    def run():
        return n, [loop.run_until_complete(main())]

    return run


class _Counter(asyncio.Protocol):
    def __init__(self, done):
        self.n = 0
        self.done = done

    def data_received(self, data):
        self.n += len(data)

    def connection_lost(self, exc):
        self.done.set_result(self.n)


def read_pipe(loop, n):
    async def main():
        r, w = os.pipe()
        proc = subprocess.Popen(
            _on_helper(["dd", "if=/dev/zero", "bs=1M", f"count={n}", "status=none"]),
            stdout=w)
        os.close(w)
        done = loop.create_future()
        tr, _ = await loop.connect_read_pipe(lambda: _Counter(done), open(r, "rb", 0))
        got = await done
        tr.close()
        return got, proc.wait()

    def run():
        got, rc = loop.run_until_complete(main())
        return got // MiB, [got, rc]

    return run


class _Writer(asyncio.BaseProtocol):
    def __init__(self, loop):
        self.can_write = None
        self.lost = loop.create_future()
        self.loop = loop

    def pause_writing(self):
        self.can_write = self.loop.create_future()

    def resume_writing(self):
        self.can_write.set_result(None)
        self.can_write = None

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def write_pipe(loop, n):
    block = bytes(MiB)

    async def main():
        r, w = os.pipe()
        proc = subprocess.Popen(_on_helper(["cat"]), stdin=r, stdout=subprocess.DEVNULL)
        os.close(r)
        tr, proto = await loop.connect_write_pipe(lambda: _Writer(loop), open(w, "wb", 0))
        sent = 0
        for _ in range(n):
            tr.write(block)
            sent += len(block)
            if proto.can_write is not None:
                await proto.can_write
        tr.close()
        await proto.lost
        return sent, proc.wait()

    def run():
        sent, rc = loop.run_until_complete(main())
        return sent // MiB, [sent, rc]

    return run


BENCHMARKS = [
    Benchmark("subprocess: spawn+wait, sequential", f"{__name__}:spawn_sequential",
              300, "procs", expected=lambda n: [0]),
    Benchmark("subprocess: spawn+wait, concurrent", f"{__name__}:spawn_concurrent",
              300, "procs", expected=lambda n: [0]),
    Benchmark("pipe: read 256 MiB from dd", f"{__name__}:read_pipe",
              256, "MiB", expected=lambda n: [n * MiB, 0]),
    Benchmark("pipe: write 256 MiB into cat", f"{__name__}:write_pipe",
              256, "MiB", expected=lambda n: [n * MiB, 0]),
]


test_subprocess = pytest_benchmarks(BENCHMARKS)
