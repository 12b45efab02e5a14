"""ringloop.rt inside ordinary asyncio and anyio code: asyncio cancellation,
asyncio.timeout, TaskGroup, gather, wait_for, shield, and anyio task groups (run on
each loop through anyio's loop_factory)."""

import asyncio
import threading

import anyio
import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


def test_gather_and_wait_for_on_handles(loop):
    async def main():
        async def v(x):
            await asyncio.sleep(0)
            return x

        assert await asyncio.gather(rt.spawn(v(1)), rt.spawn(v(2))) == [1, 2]
        assert await asyncio.wait_for(rt.spawn(v(3)), 10) == 3
        h = rt.spawn(asyncio.sleep(10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(h, 0.001)
        assert h.cancelled()
        h = rt.spawn(v(4))
        assert await asyncio.shield(h) == 4
        done, _ = await asyncio.wait([rt.spawn(v(5))])
        assert [t.result() for t in done] == [5]

    run(loop, main())


def test_asyncio_timeout_around_channel_and_sync(loop):
    async def main():
        tx, rx = rt.channel(0)
        sem = rt.Semaphore(0)
        n = rt.Notify()
        ev = rt.Event()
        m = rt.Mutex()
        held = await m.lock()
        _, wrx = rt.watch(0)
        btx, brx = rt.broadcast(1)
        otx, orx = rt.oneshot()
        for aw_fn in (rx.recv, lambda: tx.send(1), sem.acquire, n.notified, ev.wait,
                      m.lock, wrx.changed, brx.recv, orx.recv):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.001):
                    await aw_fn()
        assert asyncio.current_task().cancelling() == 0
        held.release()
        # nothing was lost: every primitive still works
        s = rt.spawn(tx.send("x"))
        assert await rx.recv() == "x"
        await s
        sem.release()
        (await sem.acquire()).release()
        n.notify_one()
        await n.notified()
        async with m.lock():
            pass
        otx.send(1)
        assert await orx == 1
        btx.send(2)
        assert await brx.recv() == 2

    run(loop, main())


def test_taskgroup_with_channel(loop):
    async def main():
        tx, rx = rt.channel(2)
        got = []

        async def consume():
            async for x in rx:
                got.append(x)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(consume())
            for i in range(10):
                tg.create_task(tx.send(i))
            tg.create_task(_close_later(tx))
        return sorted(got)

    async def _close_later(tx):
        while len(tx._ch.items) or tx._ch.send_waiters:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        tx.close()

    assert run(loop, main()) == list(range(10))


def test_taskgroup_failure_cancels_blocked_receivers(loop):
    async def main():
        tx, rx = rt.channel(None)

        async def boom():
            await asyncio.sleep(0)
            raise ValueError("boom")

        with pytest.raises(ExceptionGroup):
            async with asyncio.TaskGroup() as tg:
                r = tg.create_task(rx.recv())
                tg.create_task(boom())
        assert r.cancelled()
        await tx.send(1)  # the cancelled receiver took nothing
        assert rx.try_recv() == 1

    run(loop, main())


def test_rt_inside_gather_with_select(loop):
    async def main():
        tx, rx = rt.channel(None)

        async def feed():
            await asyncio.sleep(0.001)
            await tx.send("item")

        r = await asyncio.gather(rt.select(rx.recv(), asyncio.sleep(10)), feed())
        assert r[0] == (0, "item")

    run(loop, main())


def test_works_inside_asyncio_run_in_thread(loop_factory):
    """rt on a loop driven by asyncio.Runner in a plain thread, fed by this thread."""
    tx, rx = rt.channel(4)
    out = []

    async def main():
        async for x in rx:
            out.append(x)

    def target():
        with asyncio.Runner(loop_factory=loop_factory) as r:
            r.run(main())

    t = threading.Thread(target=target)
    t.start()
    with tx:
        for i in range(1000):
            tx.send_blocking(i)
    t.join()
    assert out == list(range(1000))


def _anyio_run(loop_factory, fn):
    return anyio.run(fn, backend="asyncio", backend_options={"loop_factory": loop_factory})


def test_anyio_task_group_cancels_rt_waiters(loop_factory):
    async def main():
        tx, rx_other = rt.channel(0)  # nobody receives: the send parks
        tx_other, rx = rt.channel(0)  # nobody sends: the receive parks
        sem = rt.Semaphore(0)
        states = []

        async def waiter(aw_fn, name):
            try:
                await aw_fn()
            except BaseException:
                states.append(name)
                raise

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, rx.recv, "recv")
            tg.start_soon(waiter, sem.acquire, "acquire")
            tg.start_soon(waiter, lambda: tx.send("lost?"), "send")
            await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert sorted(states) == ["acquire", "recv", "send"]
        with pytest.raises(rt.ChannelEmpty):
            rx_other.try_recv()  # the cancelled send withdrew its item
        with anyio.move_on_after(0.001):
            await rx.recv()
        sem.release()
        assert sem.try_acquire() is not None
        h = rt.spawn(anyio.sleep(0, ))
        await h
        i, v = await rt.select(anyio.sleep(10), asyncio.sleep(0, "fast"))
        return i, v

    assert _anyio_run(loop_factory, main) == (1, "fast")


def test_anyio_task_group_with_taskset(loop_factory):
    async def main():
        results = []

        async def member(i):
            await anyio.sleep(0)
            results.append(i)

        async with anyio.create_task_group() as tg:
            async def spawner():
                async with rt.TaskSet(limit=2) as ts:
                    for i in range(6):
                        ts.spawn(member(i))
            tg.start_soon(spawner)
        return sorted(results)

    assert _anyio_run(loop_factory, main) == list(range(6))


def test_public_names():
    import ringloop.rt as module

    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
    assert "rt.spawn" in module.__doc__
