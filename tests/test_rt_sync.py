"""ringloop.rt sync primitives: Semaphore/Permit, Mutex, RwLock, Notify, Event --
fairness, cancellation without losing permits, plain threads and other loops."""

import asyncio
import threading

import pytest

from ringloop import rt


def run(loop, coro):
    return loop.run_until_complete(coro)


def test_semaphore_basics(loop):
    async def main():
        sem = rt.Semaphore(2)
        p1 = await sem.acquire()
        async with sem as p2:
            assert isinstance(p2, rt.Permit)
            assert sem.available_permits == 0
            assert sem.locked()
            assert sem.try_acquire() is None
        assert sem.available_permits == 1
        p1.release()
        p1.release()  # idempotent
        assert sem.available_permits == 2
        p = sem.try_acquire(2)
        assert p is not None and p.n == 2
        p.forget()
        assert sem.available_permits == 0
        sem.add_permits(3)
        sem.release()
        assert sem.available_permits == 4
        with pytest.raises(ValueError):
            await sem.acquire(0)
        with pytest.raises(ValueError):
            rt.Semaphore(-1)

    run(loop, main())


def test_semaphore_fifo_and_acquire_many(loop):
    async def main():
        sem = rt.Semaphore(0)
        order = []

        async def taker(name, n):
            with await sem.acquire(n):
                order.append(name)

        tasks = [rt.spawn(taker("big", 3)), rt.spawn(taker("small", 1))]
        await asyncio.sleep(0)
        sem.add_permits(2)  # not enough for "big" at the head: "small" must wait too
        await asyncio.sleep(0)
        assert order == []
        sem.add_permits(1)
        await asyncio.gather(*tasks)
        return order

    assert run(loop, main()) == ["big", "small"]


def test_semaphore_cancel_does_not_lose_permits(loop):
    async def main():
        sem = rt.Semaphore(0)
        a = rt.spawn(sem.acquire())
        b = rt.spawn(sem.acquire())
        await asyncio.sleep(0)
        sem.release()  # granted to a ...
        a.cancel()  # ... cancelled before it runs: the permit goes to b
        permit = await b
        with pytest.raises(asyncio.CancelledError):
            await a
        permit.release()
        assert sem.available_permits == 1
        # cancel a waiter at the head: the ones behind it may now proceed
        sem2 = rt.Semaphore(1)
        big = rt.spawn(sem2.acquire(2))
        small = rt.spawn(sem2.acquire(1))
        await asyncio.sleep(0)
        assert not small.done()
        big.cancel()
        (await small).release()
        assert sem2.available_permits == 1
        with pytest.raises(asyncio.CancelledError):
            await big

    run(loop, main())


def test_semaphore_close(loop):
    async def main():
        sem = rt.Semaphore(0)
        w = rt.spawn(sem.acquire())
        await asyncio.sleep(0)
        sem.close()
        with pytest.raises(rt.SemaphoreClosed):
            await w
        with pytest.raises(rt.SemaphoreClosed):
            await sem.acquire()
        with pytest.raises(rt.SemaphoreClosed):
            sem.try_acquire()
        assert sem.is_closed()

    run(loop, main())


def test_semaphore_threads_and_loop(loop):
    """8 plain threads and 8 tasks share 3 permits; never more than 3 holders."""
    async def main():
        sem = rt.Semaphore(3)
        holders = 0
        peak = 0
        lock = threading.Lock()

        def enter():
            nonlocal holders, peak
            with lock:
                holders += 1
                peak = max(peak, holders)

        def leave():
            nonlocal holders
            with lock:
                holders -= 1

        def thread_worker():
            for _ in range(200):
                with sem.acquire_blocking(timeout=30):
                    enter()
                    leave()

        async def task_worker():
            for _ in range(200):
                async with sem:
                    enter()
                    await asyncio.sleep(0)
                    leave()

        threads = [threading.Thread(target=thread_worker) for _ in range(8)]
        for t in threads:
            t.start()
        await asyncio.gather(*(task_worker() for _ in range(8)))
        for t in threads:
            await asyncio.to_thread(t.join)
        assert sem.available_permits == 3
        return peak

    assert 1 <= run(loop, main()) <= 3


def test_acquire_blocking_timeout_and_misuse(loop):
    sem = rt.Semaphore(0)
    with pytest.raises(TimeoutError):
        sem.acquire_blocking(timeout=0.01)
    assert sem.available_permits == 0

    async def main():
        with pytest.raises(RuntimeError):
            sem.acquire_blocking()

    run(loop, main())


def test_mutex(loop):
    async def main():
        m = rt.Mutex({"n": 0})

        async def bump():
            for _ in range(50):
                async with m.lock() as guard:
                    v = guard.value["n"]
                    await asyncio.sleep(0)
                    guard.value["n"] = v + 1

        await asyncio.gather(*(bump() for _ in range(4)))
        guard = await m.lock()
        assert m.locked()
        assert m.try_lock() is None
        assert guard.value == {"n": 200}
        guard.value = "replaced"
        guard.release()
        with pytest.raises(RuntimeError):
            guard.value
        async with m as g:
            assert g.value == "replaced"
        g2 = m.try_lock()
        assert g2 is not None
        g2.release()
        assert not m.locked()

    run(loop, main())


def test_mutex_with_thread(loop):
    async def main():
        m = rt.Mutex(0)

        def worker():
            for _ in range(500):
                with m.lock_blocking() as g:
                    g.value += 1

        t = threading.Thread(target=worker)
        t.start()
        for _ in range(500):
            async with m.lock() as g:
                g.value += 1
        await asyncio.to_thread(t.join)
        return m.try_lock().value

    assert run(loop, main()) == 1000


def test_mutex_cancel_while_waiting(loop):
    async def main():
        m = rt.Mutex()
        g = await m.lock()
        w = rt.spawn(m._lock())
        await asyncio.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        g.release()
        assert not m.locked()

    run(loop, main())


def test_rwlock(loop):
    async def main():
        rw = rt.RwLock([1])
        events = []

        async def reader(i):
            async with rw.read() as value:
                events.append(("r", i, list(value)))
                await asyncio.sleep(0)

        async def writer():
            async with rw.write() as guard:
                events.append(("w",))
                guard.value = [2]

        r1 = rw.try_read()
        assert r1 is not None and rw.try_write() is None
        w = rt.spawn(writer())
        await asyncio.sleep(0)
        late = rt.spawn(reader(9))  # behind the waiting writer (fair)
        await asyncio.sleep(0)
        assert events == []
        r1.release()
        await asyncio.gather(w, late)
        await asyncio.gather(*(reader(i) for i in range(3)))
        return events

    events = run(loop, main())
    assert events[0] == ("w",)
    assert events[1] == ("r", 9, [2])
    assert sorted(events[2:]) == [("r", i, [2]) for i in range(3)]


def test_notify_permit_semantics(loop):
    async def main():
        n = rt.Notify()
        n.notify_one()
        n.notify_one()  # at most one stored permit
        await n.notified()  # consumes it at once
        w = rt.spawn(n.notified())
        await asyncio.sleep(0)
        assert not w.done()
        n.notify_one()
        await w
        ws = [rt.spawn(n.notified()) for _ in range(3)]
        await asyncio.sleep(0)
        n.notify_waiters()
        await asyncio.gather(*ws)
        late = rt.spawn(n.notified())  # notify_waiters stored nothing
        await asyncio.sleep(0)
        assert not late.done()
        # a notify_one handed to a waiter that gets cancelled is passed on
        other = rt.spawn(n.notified())
        await asyncio.sleep(0)
        n.notify_one()
        late.cancel()
        await other
        with pytest.raises(asyncio.CancelledError):
            await late
        # ... or stored when nobody else waits
        w = rt.spawn(n.notified())
        await asyncio.sleep(0)
        n.notify_one()
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        await n.notified()

    run(loop, main())


def test_notify_from_thread_and_blocking(loop):
    async def main():
        n = rt.Notify()
        w = rt.spawn(n.notified())
        await asyncio.sleep(0)
        t = threading.Thread(target=n.notify_one)
        t.start()
        await w
        t.join()
        got = []
        t = threading.Thread(target=lambda: got.append(n.notified_blocking(timeout=30)))
        t.start()
        while not n._waiters:
            await asyncio.sleep(0.001)
        n.notify_one()
        await asyncio.to_thread(t.join)
        return got

    assert run(loop, main()) == [True]
    n = rt.Notify()
    assert n.notified_blocking(timeout=0.01) is False


def test_event(loop, loop_factory):
    async def main():
        ev = rt.Event()
        assert not ev.is_set()
        waiters = [rt.spawn(ev.wait()) for _ in range(3)]
        c = rt.spawn(ev.wait())
        await asyncio.sleep(0)
        c.cancel()
        with pytest.raises(asyncio.CancelledError):
            await c

        def other_loop():
            lp = loop_factory()
            try:
                lp.run_until_complete(asyncio.sleep(0))
                lp.call_soon(ev.set)
                lp.run_until_complete(asyncio.sleep(0))
            finally:
                lp.close()

        t = threading.Thread(target=other_loop)
        t.start()
        assert await asyncio.gather(*waiters) == [True] * 3
        await asyncio.to_thread(t.join)
        assert ev.is_set() and await ev.wait()
        ev.clear()
        assert not ev.is_set()

    run(loop, main())
    ev = rt.Event()
    assert ev.wait_blocking(timeout=0.01) is False
    threading.Timer(0.01, ev.set).start()
    assert ev.wait_blocking(timeout=30) is True


def test_mutex_and_semaphore_across_three_loops(loop, loop_factory):
    """Tasks on this loop and on two loops in other threads contend for one Mutex and
    one Semaphore: no increment lost, never more holders than permits."""
    m = rt.Mutex(0)
    sem = rt.Semaphore(2)
    holders = 0
    peak = 0
    guard_lock = threading.Lock()

    async def worker(n):
        nonlocal holders, peak
        for i in range(n):
            async with m.lock() as g:
                g.value += 1
            async with sem:
                with guard_lock:
                    holders += 1
                    peak = max(peak, holders)
                if i % 5 == 0:
                    await asyncio.sleep(0)
                with guard_lock:
                    holders -= 1

    async def many():
        await asyncio.gather(*(worker(300) for _ in range(3)))

    def other():
        lp = loop_factory()
        try:
            lp.run_until_complete(many())
        finally:
            lp.close()

    threads = [threading.Thread(target=other) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        run(loop, many())
    finally:
        for t in threads:
            t.join()
    assert m.try_lock().value == 9 * 300
    assert 1 <= peak <= 2
    assert sem.available_permits == 2
