"""Threads: call_soon_threadsafe, waking a sleeping loop, executors, to_thread,
run_coroutine_threadsafe, one loop per thread."""

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
import time
import warnings

import pytest

var = contextvars.ContextVar("var", default="default")


def _flood_from_threads(loop, n_threads, per_thread, pause_every=None):
    """n_threads threads each call_soon_threadsafe(on_item, t, i) per_thread
    times (pausing now and then if pause_every is set, so the loop keeps
    falling asleep); returns what the loop received, per thread.

    No timer is scheduled: a lost wake-up hangs (and pytest-timeout fails
    the test) instead of being hidden by a timer waking the loop."""
    received = {t: [] for t in range(n_threads)}
    total = n_threads * per_thread
    done = loop.create_future()
    count = 0

    def on_item(t, i):
        nonlocal count
        received[t].append(i)
        count += 1
        if count == total:
            done.set_result(None)

    barrier = threading.Barrier(n_threads)

    def producer(t):
        barrier.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(on_item, t, i)
            if pause_every and i % (pause_every + t) == 0:
                time.sleep(0.00005)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    try:
        loop.run_until_complete(done)
    finally:
        for th in threads:
            th.join()
    assert count == total
    return received


def test_call_soon_threadsafe_many_threads_exact_counts(loop):
    received = _flood_from_threads(loop, n_threads=8, per_thread=2000)
    # Each thread's callbacks run exactly once and in the order that thread queued them.
    assert received == {t: list(range(2000)) for t in range(8)}


@pytest.mark.timeout(30)
def test_call_soon_threadsafe_bursty_producers(loop):
    # Producers pause often, so the loop keeps going to sleep and being woken: this
    # exercises the sleep/wake handshake.
    received = _flood_from_threads(loop, n_threads=4, per_thread=3000, pause_every=7)
    assert received == {t: list(range(3000)) for t in range(4)}


@pytest.mark.timeout(30)
def test_ping_pong_with_thread(loop):
    # Every round the loop sleeps with nothing else to do until the thread answers.
    rounds = 2000
    to_thread = __import__("queue").SimpleQueue()
    answers = []

    def echo():
        while (item := to_thread.get()) is not None:
            fut, value = item
            loop.call_soon_threadsafe(fut.set_result, value + 1)

    th = threading.Thread(target=echo)
    th.start()

    async def main():
        lp = asyncio.get_running_loop()
        for i in range(rounds):
            fut = lp.create_future()
            to_thread.put((fut, i))
            answers.append(await fut)

    try:
        loop.run_until_complete(main())
    finally:
        to_thread.put(None)
        th.join()
    assert answers == [i + 1 for i in range(rounds)]


def test_call_soon_threadsafe_wakes_sleeping_loop(loop):
    # The loop is parked with nothing to do but a very distant timer; only the
    # cross-thread wake-up can finish this test before the pytest timeout.
    fut = loop.create_future()
    guard = loop.call_later(3600, lambda: None)

    def worker():
        time.sleep(0.05)  # let the loop go to sleep first
        loop.call_soon_threadsafe(fut.set_result, "woken")

    th = threading.Thread(target=worker)
    th.start()
    try:
        assert loop.run_until_complete(fut) == "woken"
    finally:
        th.join()
        guard.cancel()


def test_call_soon_threadsafe_repeated_wakeups(loop):
    results = []

    async def main():
        for i in range(50):
            fut = asyncio.get_running_loop().create_future()
            th = threading.Thread(
                target=lambda f=fut, i=i: loop.call_soon_threadsafe(f.set_result, i)
            )
            th.start()
            results.append(await fut)
            th.join()

    loop.run_until_complete(main())
    assert results == list(range(50))


def test_call_soon_threadsafe_before_run(loop):
    calls = []
    th = threading.Thread(target=lambda: loop.call_soon_threadsafe(calls.append, "x"))
    th.start()
    th.join()
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["x"]


def test_call_soon_threadsafe_context_and_cancel(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "ctx")
    seen = []
    handles = []

    def worker():
        handles.append(loop.call_soon_threadsafe(lambda: seen.append(var.get()), context=ctx))
        h = loop.call_soon_threadsafe(seen.append, "cancelled")
        h.cancel()
        handles.append(h)

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["ctx"]
    assert handles[1].cancelled()


def test_call_soon_threadsafe_from_loop_thread(loop):
    async def main():
        fut = asyncio.get_running_loop().create_future()
        loop.call_soon_threadsafe(fut.set_result, 3)
        return await fut

    assert loop.run_until_complete(main()) == 3


def test_run_in_executor_default(loop):
    def work(a, b):
        return a * b, threading.get_ident()

    async def main():
        return await asyncio.get_running_loop().run_in_executor(None, work, 6, 7)

    value, tid = loop.run_until_complete(main())
    assert value == 42
    assert tid != threading.get_ident()
    # asyncio creates a ThreadPoolExecutor; ringloop's default executor is its
    # blocking pool (rt.spawn_blocking's), so _default_executor stays None.
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_in_executor_exception(loop):
    def bad():
        raise OSError(5, "io")

    async def main():
        with pytest.raises(OSError) as info:
            await asyncio.get_running_loop().run_in_executor(None, bad)
        return info.value.errno

    assert loop.run_until_complete(main()) == 5
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_in_executor_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="custom") as ex:

        async def main():
            lp = asyncio.get_running_loop()
            names = await asyncio.gather(
                *(lp.run_in_executor(ex, lambda: threading.current_thread().name) for _ in range(4))
            )
            return names

        names = loop.run_until_complete(main())
    assert all(n.startswith("custom") for n in names)
    # A custom executor does not become the default one.
    assert loop._default_executor is None


def test_run_in_executor_many(loop):
    async def main():
        lp = asyncio.get_running_loop()
        return await asyncio.gather(*(lp.run_in_executor(None, pow, i, 2) for i in range(200)))

    assert loop.run_until_complete(main()) == [i * i for i in range(200)]
    loop.run_until_complete(loop.shutdown_default_executor())


def test_to_thread_propagates_context(loop):
    async def main():
        var.set("from-task")
        return await asyncio.to_thread(lambda x: (var.get(), x), 1)

    assert loop.run_until_complete(main()) == ("from-task", 1)
    loop.run_until_complete(loop.shutdown_default_executor())


def test_set_default_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as ex:
        loop.set_default_executor(ex)
        assert loop._default_executor is ex

        async def main():
            return await asyncio.get_running_loop().run_in_executor(
                None, lambda: threading.current_thread().name
            )

        assert loop.run_until_complete(main()).startswith("mine")


@pytest.mark.parametrize(
    "bad", [object(), None, 1, concurrent.futures.Executor()], ids=repr
)
def test_set_default_executor_type_check(loop, bad):
    with pytest.raises(TypeError):
        loop.set_default_executor(bad)
    assert loop._default_executor is None


def test_shutdown_default_executor_then_run_in_executor(loop):
    async def main():
        lp = asyncio.get_running_loop()
        assert await lp.run_in_executor(None, abs, -1) == 1
        await lp.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="shutdown"):
            lp.run_in_executor(None, abs, -2)

    loop.run_until_complete(main())


def test_shutdown_default_executor_without_executor(loop):
    assert loop._default_executor is None
    assert loop.run_until_complete(loop.shutdown_default_executor()) is None


# CPython 3.12.0-3.12.x (early) awaited the executor's shutdown *before* applying the
# timeout, so the timeout never bounded the wait; later versions wrap it in
# asyncio.timeout().  The asyncio reference is only meaningful with the latter.
_ASYNCIO_SHUTDOWN_TIMEOUT_BOUNDED = "timeouts.timeout" in __import__("inspect").getsource(
    asyncio.BaseEventLoop.shutdown_default_executor
)


def test_shutdown_default_executor_timeout(loop, loop_kind):
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio's shutdown_default_executor() takes no timeout before 3.12")
    if loop_kind == "asyncio" and not _ASYNCIO_SHUTDOWN_TIMEOUT_BOUNDED:
        pytest.skip("this CPython's shutdown_default_executor() ignores its timeout "
                    "while the executor is busy")
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait(30)
        return "released"

    async def main():
        lp = asyncio.get_running_loop()
        fut = lp.run_in_executor(None, blocker)
        while not started.is_set():
            await asyncio.sleep(0.001)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            await lp.shutdown_default_executor(0.05)
        release.set()
        return fut, [x for x in w if issubclass(x.category, RuntimeWarning)]

    try:
        fut, warned = loop.run_until_complete(main())
        assert len(warned) == 1
        assert "0.05" in str(warned[0].message)
        # The job was not killed: it finishes once released.
        assert loop.run_until_complete(fut) == "released"
    finally:
        release.set()


def test_shutdown_default_executor_positional_timeout_completes(loop, loop_kind):
    # Runner.close() on 3.12+ passes the timeout positionally.
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio's shutdown_default_executor() takes no timeout before 3.12")

    async def main():
        lp = asyncio.get_running_loop()
        await lp.run_in_executor(None, abs, -1)
        await lp.shutdown_default_executor(30)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


def test_run_coroutine_threadsafe_into_running_loop(loop):
    results = []
    errors = []

    async def coro(i):
        await asyncio.sleep(0.001)
        return i * 10

    async def failing():
        raise KeyError("t")

    def client():
        try:
            for i in range(5):
                results.append(asyncio.run_coroutine_threadsafe(coro(i), loop).result(30))
            f = asyncio.run_coroutine_threadsafe(failing(), loop)
            try:
                f.result(30)
            except KeyError as exc:
                errors.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=client)
    th.start()
    try:
        loop.run_forever()
    finally:
        th.join()
    assert results == [0, 10, 20, 30, 40]
    assert len(errors) == 1


def test_loop_running_in_background_thread(loop):
    th = threading.Thread(target=loop.run_forever)
    th.start()
    try:

        async def where():
            return threading.get_ident(), asyncio.get_running_loop() is loop

        ident, same = asyncio.run_coroutine_threadsafe(where(), loop).result(30)
        assert ident == th.ident and same
        # Cancelling a concurrent future cancels the task in the loop.
        f = asyncio.run_coroutine_threadsafe(asyncio.sleep(3600), loop)
        f.cancel()
        assert f.cancelled()

        async def settle():
            for _ in range(5):
                await asyncio.sleep(0)
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        # The cancellation reached the loop's task: nothing else is left pending.
        assert asyncio.run_coroutine_threadsafe(settle(), loop).result(30) == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(30)
    assert not th.is_alive()
    assert not loop.is_running()


def _run_on_other_thread(loop, coro):
    """loop.run_until_complete(coro) on a new thread; its result or exception."""
    out = {}

    def other():
        try:
            out["r"] = loop.run_until_complete(coro)
        except BaseException as exc:  # noqa: BLE001
            out["r"] = exc

    th = threading.Thread(target=other)
    th.start()
    th.join(30)
    return out["r"]


def test_loop_runs_on_another_thread_after_main(loop):
    # Not concurrently: one thread after another.  asyncio allows this.
    assert loop.run_until_complete(asyncio.sleep(0.001, "main")) == "main"
    assert _run_on_other_thread(loop, asyncio.sleep(0.001, "thread")) == "thread"
    assert loop.run_until_complete(asyncio.sleep(0.001, "main2")) == "main2"


def test_loop_first_run_on_another_thread(loop):
    # Created (and given work) on this thread, run first on another, then here.
    calls = []
    loop.call_soon(calls.append, "queued-before")
    pending = loop.call_later(3600, calls.append, "never")
    assert _run_on_other_thread(loop, asyncio.sleep(0.001, "thread")) == "thread"
    assert calls == ["queued-before"]
    assert loop.run_until_complete(asyncio.sleep(0.001, "main")) == "main"
    pending.cancel()


def test_wrap_future_from_thread(loop):
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        cf = ex.submit(lambda: "cf")

        async def main():
            return await asyncio.wrap_future(cf)

        assert loop.run_until_complete(main()) == "cf"


def test_one_loop_per_thread_concurrently(loop_factory):
    n = 4
    results = [None] * n
    barrier = threading.Barrier(n)

    def runner(i):
        lp = loop_factory()
        try:

            async def main():
                barrier.wait()
                total = 0
                for _ in range(20):
                    await asyncio.sleep(0.001)
                    total += 1
                return i, total, asyncio.get_running_loop() is lp

            results[i] = lp.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001
            results[i] = exc
        finally:
            lp.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert results == [(i, 20, True) for i in range(n)]
