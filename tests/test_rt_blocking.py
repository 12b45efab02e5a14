"""rt.spawn_blocking / rt.to_thread and ringloop's default executor, on both
loops (the pool hands results to any asyncio loop through an eventfd)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import traceback

import pytest

from conftest import import_ringloop


@pytest.fixture
def rt():
    return import_ringloop().rt


def test_result_and_args(loop, rt):
    async def main():
        return await rt.spawn_blocking(lambda a, b=0: (a, b, threading.get_ident()), 1, b=2)

    a, b, ident = loop.run_until_complete(main())
    assert (a, b) == (1, 2)
    assert ident != threading.get_ident()


def test_returns_a_future_of_the_loop(loop, rt):
    async def main():
        fut = rt.spawn_blocking(int, "5")
        assert isinstance(fut, asyncio.Future)
        assert fut.get_loop() is loop
        return await fut

    assert loop.run_until_complete(main()) == 5


def test_exception_with_traceback(loop, rt):
    def boom():
        raise KeyError("x")

    async def main():
        with pytest.raises(KeyError) as info:
            await rt.spawn_blocking(boom)
        return "".join(traceback.format_tb(info.value.__traceback__))

    assert "boom" in loop.run_until_complete(main())


def test_to_thread_copies_context(loop, rt):
    var = contextvars.ContextVar("var", default="unset")

    async def main():
        var.set("task")
        return await rt.to_thread(var.get), await asyncio.to_thread(var.get)

    assert loop.run_until_complete(main()) == ("task", "task")


def test_many_in_flight_gather(loop, rt):
    async def main():
        return await asyncio.gather(*[rt.spawn_blocking(pow, i, 2) for i in range(500)])

    assert loop.run_until_complete(main()) == [i * i for i in range(500)]


def test_taskgroup_and_timeout(loop, rt):
    started = threading.Event()
    release = threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return "late"

    async def main():
        async with asyncio.TaskGroup() as tg:
            t = tg.create_task(rt.to_thread(sum, [1, 2]))
        assert t.result() == 3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await rt.spawn_blocking(slow)
        assert started.is_set()
        release.set()

    loop.run_until_complete(main())


def test_cancel_before_start_removes_job(loop, rt):
    gate = threading.Event()
    ran = []

    async def main():
        rt._blocking.configure(max_threads=1)
        try:
            blocker = rt.spawn_blocking(gate.wait, 10)
            queued = rt.spawn_blocking(ran.append, 1)
            await asyncio.sleep(0)
            queued.cancel()
            await asyncio.sleep(0.01)
            gate.set()
            await blocker
            await rt.spawn_blocking(lambda: None)  # the pool's queue is FIFO
        finally:
            rt._blocking.configure(max_threads=32)
        return queued.cancelled()

    assert loop.run_until_complete(main()) is True
    assert ran == []


def test_cancel_running_job_discards_result(loop, rt):
    gate = threading.Event()

    async def main():
        fut = rt.spawn_blocking(gate.wait, 10)
        await asyncio.sleep(0.01)
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        gate.set()
        return await rt.spawn_blocking(lambda: "after")

    assert loop.run_until_complete(main()) == "after"


def test_loop_closed_while_job_runs(loop_factory, rt):
    gate = threading.Event()
    done = threading.Event()

    def job():
        gate.wait(10)
        done.set()
        return object()

    lp = loop_factory()

    async def main():
        rt.spawn_blocking(job)
        await asyncio.sleep(0)

    lp.run_until_complete(main())
    lp.close()
    gate.set()
    assert done.wait(10)


def test_two_loops_in_two_threads(loop_factory, rt):
    results = {}

    def run(name):
        lp = loop_factory()
        try:
            async def main():
                return await asyncio.gather(*[rt.to_thread(lambda i=i: (name, i)) for i in range(200)])
            results[name] = lp.run_until_complete(main())
        finally:
            lp.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["a"] == [("a", i) for i in range(200)]
    assert results["b"] == [("b", i) for i in range(200)]


def test_run_in_executor_default(loop):
    async def main():
        r = await loop.run_in_executor(None, pow, 3, 2)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError):
            loop.run_in_executor(None, pow, 3, 2)
        return r

    assert loop.run_until_complete(main()) == 9


def test_spawn_blocking_needs_running_loop(rt):
    with pytest.raises(RuntimeError):
        rt.spawn_blocking(print)


def test_anyio_task_group(loop, rt):
    anyio = pytest.importorskip("anyio")

    async def main():
        out = []

        async def one(i):
            out.append(await rt.spawn_blocking(lambda: i))

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(one, i)
        return sorted(out)

    assert loop.run_until_complete(main()) == list(range(10))


FORK_SCRIPT = r"""
import asyncio, os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive
import ringloop
from ringloop import rt

async def main():
    a = await rt.spawn_blocking(pow, 2, 10)
    b = await rt.fs.read_file(sys.argv[1])
    c = await rt.resolve("127.0.0.1", 80)
    return a, len(b), len(c)

factory = ringloop.new_event_loop if sys.argv[2] == "ringloop" else asyncio.new_event_loop
lp = factory(); parent = lp.run_until_complete(main()); lp.close()
pid = os.fork()
if pid == 0:
    lp = factory(); child = lp.run_until_complete(main()); lp.close()
    os._exit(0 if child == parent else 3)
_, status = os.waitpid(pid, 0)
print(parent, os.waitstatus_to_exitcode(status))
"""


def test_fork_child_gets_a_fresh_pool(loop_kind):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, __file__, loop_kind],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "0", proc.stdout + proc.stderr


def test_unclosed_loop_with_pool_results_is_collected(loop_factory, rt):
    import gc
    import warnings
    import weakref

    async def main():
        return await rt.spawn_blocking(int, "7")

    lp = loop_factory()
    assert lp.run_until_complete(main()) == 7
    ref = weakref.ref(lp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del lp
        gc.collect()
    assert ref() is None
