"""ringloop.rt tasks: spawn (strong references, unretrieved exceptions), the tokio
helpers (abort, is_finished, join_task) and TaskSet."""

import asyncio
import gc

import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


async def value(v, delay=0):
    await asyncio.sleep(delay)
    return v


async def fail(exc, delay=0):
    await asyncio.sleep(delay)
    raise exc


def test_spawn_returns_a_task(loop):
    async def main():
        h = rt.spawn(value(1), name="one")
        assert isinstance(h, asyncio.Task) and isinstance(h, rt.JoinHandle)
        assert h.get_name() == "one"
        assert not rt.is_finished(h)
        assert await h == 1
        assert rt.is_finished(h)
        assert rt.current_task() is asyncio.current_task()

    run(loop, main())


def test_spawn_needs_running_loop():
    coro = value(1)
    with pytest.raises(RuntimeError):
        rt.spawn(coro)
    coro.close()


def test_spawn_keeps_task_alive(loop):
    """A task parked on a future that only it references (a garbage cycle) survives a
    collection when spawned (asyncio.create_task alone keeps only a weak reference)."""
    import weakref

    async def main():
        async def orphan():
            await asyncio.get_running_loop().create_future()

        ref = weakref.ref(rt.spawn(orphan()))
        await asyncio.sleep(0)
        gc.collect()
        task = ref()
        assert task is not None and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_unretrieved_exception_is_reported(loop, exc_contexts):
    async def main():
        rt.spawn(fail(ValueError("lost")))
        await asyncio.sleep(0.01)

    run(loop, main())
    gc.collect()
    assert any(isinstance(c.get("exception"), ValueError) for c in exc_contexts)
    exc_contexts.clear()


def test_context_is_passed(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="unset")

    async def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, "inside")

        async def read():
            return var.get()

        return await rt.spawn(read(), context=ctx)

    assert run(loop, main()) == "inside"


def test_abort_and_join_task(loop):
    async def main():
        h = rt.spawn(value(1, delay=10))
        await asyncio.sleep(0)
        assert rt.abort(h)
        with pytest.raises(rt.TaskAborted):
            await rt.join_task(h)
        assert not rt.abort(h)
        assert await rt.join_task(rt.spawn(value(2))) == 2
        with pytest.raises(KeyError):
            await rt.join_task(rt.spawn(fail(KeyError("k"))))

    run(loop, main())


def test_join_task_awaiter_cancellation_does_not_abort(loop):
    async def main():
        h = rt.spawn(value("survived", delay=0.02))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await rt.join_task(h)
        assert not h.done()
        assert await rt.join_task(h) == "survived"
        # plain await keeps asyncio's semantics: the awaiter's cancel reaches h
        h2 = rt.spawn(value("x", delay=10))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await h2
        assert h2.cancelled()

    run(loop, main())


def test_taskset_join_next_in_completion_order(loop):
    async def main():
        ts = rt.TaskSet()
        assert await ts.join_next() is None
        for v, d in (("slow", 0.03), ("fast", 0.0), ("mid", 0.01)):
            ts.spawn(value(v, delay=d))
        assert len(ts) == 3
        order = []
        while (h := await ts.join_next()) is not None:
            order.append(h.result())
        assert len(ts) == 0 and ts.is_empty()
        ts.spawn(value(1))
        ts.spawn(value(2))
        got = sorted([h.result() async for h in ts])
        return order, got

    assert run(loop, main()) == (["fast", "mid", "slow"], [1, 2])


def test_taskset_join_all_and_errors(loop):
    async def main():
        ts = rt.TaskSet()
        for i in range(5):
            ts.spawn(value(i, delay=(5 - i) * 0.001))
        assert await ts.join_all() == [0, 1, 2, 3, 4]
        ts.spawn(value(1))
        ts.spawn(fail(ValueError("v")))
        aborted = ts.spawn(value(2, delay=10))
        await asyncio.sleep(0)
        aborted.cancel()
        with pytest.raises(ExceptionGroup) as info:
            await ts.join_all()
        kinds = sorted(type(e).__name__ for e in info.value.exceptions)
        assert kinds == ["TaskAborted", "ValueError"]
        assert len(ts) == 0

    run(loop, main())


def test_taskset_abort_all_and_shutdown(loop):
    async def main():
        ts = rt.TaskSet()
        cleaned = []

        async def worker(i):
            try:
                await asyncio.sleep(10)
            finally:
                cleaned.append(i)

        hs = [ts.spawn(worker(i)) for i in range(4)]
        await asyncio.sleep(0)
        await ts.shutdown()
        assert sorted(cleaned) == [0, 1, 2, 3]
        assert all(h.cancelled() for h in hs)
        assert len(ts) == 0
        ts.spawn(worker(9))
        await asyncio.sleep(0)
        ts.abort_all()
        h = await ts.join_next()
        assert h.cancelled()

    run(loop, main())


def test_taskset_limit(loop):
    async def main():
        running = peak = 0

        async def job(i):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1
            return i

        ts = rt.TaskSet(limit=3)
        for i in range(12):
            ts.spawn(job(i))
        assert await ts.join_all() == list(range(12))
        # members aborted before they started do not leave never-awaited coroutines
        ts2 = rt.TaskSet(limit=1)
        ts2.spawn(job(0))
        ts2.spawn(job(1))
        await asyncio.sleep(0)
        await ts2.shutdown()
        with pytest.raises(ValueError):
            rt.TaskSet(limit=0)
        return peak

    assert run(loop, main()) == 3


def test_taskset_context_manager_waits(loop):
    async def main():
        async with rt.TaskSet() as ts:
            hs = [ts.spawn(value(i, delay=0.001 * i)) for i in range(5)]
        assert [h.result() for h in hs] == list(range(5))
        assert len(ts) == 0

    run(loop, main())


def test_taskset_context_manager_failure_cancels_siblings(loop):
    async def main():
        cancelled = []

        async def sibling():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with pytest.raises(ExceptionGroup) as info:
            async with rt.TaskSet() as ts:
                ts.spawn(sibling())
                ts.spawn(fail(ValueError("first"), delay=0.001))
                await asyncio.sleep(10)  # the body is cancelled too
        assert [type(e) for e in info.value.exceptions] == [ValueError]
        assert cancelled == [True]
        assert asyncio.current_task().cancelling() == 0

    run(loop, main())


def test_taskset_context_manager_shutdown_in_flight(loop):
    """Cancelling the owner while members run: all members are cancelled and awaited."""
    async def main():
        finished = []

        async def member(i):
            try:
                await asyncio.sleep(10)
            finally:
                finished.append(i)

        async def owner():
            async with rt.TaskSet() as ts:
                for i in range(3):
                    ts.spawn(member(i))

        o = rt.spawn(owner())
        await asyncio.sleep(0.001)
        o.cancel()
        with pytest.raises(asyncio.CancelledError):
            await o
        return sorted(finished)

    assert run(loop, main()) == [0, 1, 2]


def test_abort_task_blocked_in_sync_primitive(loop):
    async def main():
        sem = rt.Semaphore(0)
        h = rt.spawn(sem.acquire())
        await asyncio.sleep(0)
        rt.abort(h)
        with pytest.raises(rt.TaskAborted):
            await rt.join_task(h)
        sem.release()
        assert sem.available_permits == 1

    run(loop, main())


def test_pending_spawned_task_does_not_keep_a_closed_loop_alive(loop_factory, caplog):
    import weakref

    lp = loop_factory()

    async def main():
        rt.spawn(asyncio.sleep(10))

    lp.run_until_complete(main())
    lp.close()
    ref = weakref.ref(lp)
    del lp
    gc.collect()
    assert ref() is None
    assert "Task was destroyed but it is pending" in caplog.text
