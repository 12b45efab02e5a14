"""asyncio synchronisation primitives driven by the loop: Queue, Lock, Event,
Condition, Semaphore, BoundedSemaphore, Barrier."""

import asyncio

import pytest


def test_queue_producer_consumer(loop):
    async def main():
        q = asyncio.Queue(maxsize=3)
        got = []

        async def producer():
            for i in range(100):
                await q.put(i)
            await q.put(None)

        async def consumer():
            while (item := await q.get()) is not None:
                got.append(item)
                q.task_done()
            q.task_done()

        await asyncio.gather(producer(), consumer())
        await q.join()
        return got

    assert loop.run_until_complete(main()) == list(range(100))


def test_queue_many_consumers(loop):
    async def main():
        q = asyncio.Queue()
        seen = []

        async def consumer(n):
            while True:
                item = await q.get()
                if item is None:
                    return
                seen.append(item)
                await asyncio.sleep(0)

        consumers = [asyncio.ensure_future(consumer(n)) for n in range(5)]
        for i in range(500):
            q.put_nowait(i)
        for _ in consumers:
            q.put_nowait(None)
        await asyncio.gather(*consumers)
        return seen

    assert sorted(loop.run_until_complete(main())) == list(range(500))


def test_queue_variants_and_nowait(loop):
    async def main():
        pq = asyncio.PriorityQueue()
        lq = asyncio.LifoQueue()
        for x in (3, 1, 2):
            pq.put_nowait(x)
            lq.put_nowait(x)
        out = ([pq.get_nowait() for _ in range(3)], [lq.get_nowait() for _ in range(3)])
        with pytest.raises(asyncio.QueueEmpty):
            pq.get_nowait()
        full = asyncio.Queue(1)
        full.put_nowait(1)
        with pytest.raises(asyncio.QueueFull):
            full.put_nowait(2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(full.put(2), 0.01)
        return out

    assert loop.run_until_complete(main()) == ([1, 2, 3], [2, 1, 3])


def test_lock_mutual_exclusion(loop):
    async def main():
        lock = asyncio.Lock()
        inside = 0
        max_inside = 0
        order = []

        async def worker(i):
            nonlocal inside, max_inside
            async with lock:
                inside += 1
                max_inside = max(max_inside, inside)
                order.append(i)
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                inside -= 1

        await asyncio.gather(*(worker(i) for i in range(20)))
        assert not lock.locked()
        return max_inside, order

    max_inside, order = loop.run_until_complete(main())
    assert max_inside == 1
    assert order == list(range(20))  # asyncio.Lock is fair (FIFO)


def test_event(loop):
    async def main():
        ev = asyncio.Event()
        woken = []

        async def waiter(i):
            await ev.wait()
            woken.append(i)

        ws = [asyncio.ensure_future(waiter(i)) for i in range(10)]
        await asyncio.sleep(0.001)
        assert woken == []
        asyncio.get_running_loop().call_later(0.001, ev.set)
        await asyncio.gather(*ws)
        assert ev.is_set()
        ev.clear()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ev.wait(), 0.01)
        return sorted(woken)

    assert loop.run_until_complete(main()) == list(range(10))


def test_condition(loop):
    async def main():
        cond = asyncio.Condition()
        items = []
        consumed = []

        async def consumer():
            async with cond:
                await cond.wait_for(lambda: len(items) >= 3)
                consumed.extend(items)

        async def producer():
            for i in range(3):
                await asyncio.sleep(0.001)
                async with cond:
                    items.append(i)
                    cond.notify_all()

        await asyncio.gather(consumer(), producer())
        return consumed

    assert loop.run_until_complete(main()) == [0, 1, 2]


def test_condition_notify_one(loop):
    async def main():
        cond = asyncio.Condition()
        woken = []

        async def waiter(i):
            async with cond:
                await cond.wait()
                woken.append(i)

        ws = [asyncio.ensure_future(waiter(i)) for i in range(3)]
        await asyncio.sleep(0.001)
        async with cond:
            cond.notify(1)
        await asyncio.sleep(0.001)
        first = list(woken)
        async with cond:
            cond.notify_all()
        await asyncio.gather(*ws)
        return first, woken

    first, woken = loop.run_until_complete(main())
    assert first == [0]
    assert woken == [0, 1, 2]


def test_semaphore_limits_concurrency(loop):
    async def main():
        sem = asyncio.Semaphore(3)
        inside = 0
        peak = 0

        async def worker():
            nonlocal inside, peak
            async with sem:
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.001)
                inside -= 1

        await asyncio.gather(*(worker() for _ in range(20)))
        return peak

    assert loop.run_until_complete(main()) == 3


def test_bounded_semaphore_over_release(loop):
    async def main():
        sem = asyncio.BoundedSemaphore(1)
        await sem.acquire()
        sem.release()
        with pytest.raises(ValueError):
            sem.release()
        return sem.locked()

    assert loop.run_until_complete(main()) is False


def test_barrier(loop):
    async def main():
        barrier = asyncio.Barrier(4)
        phases = []

        async def party(i):
            phases.append(("before", i))
            idx = await barrier.wait()
            phases.append(("after", i))
            return idx

        idxs = await asyncio.gather(*(party(i) for i in range(4)))
        return phases, idxs

    phases, idxs = loop.run_until_complete(main())
    assert all(p[0] == "before" for p in phases[:4])
    assert all(p[0] == "after" for p in phases[4:])
    assert sorted(idxs) == [0, 1, 2, 3]


def test_barrier_abort(loop):
    async def main():
        barrier = asyncio.Barrier(3)

        async def party():
            await barrier.wait()

        ts = [asyncio.ensure_future(party()) for _ in range(2)]
        await asyncio.sleep(0.001)
        await barrier.abort()
        res = await asyncio.gather(*ts, return_exceptions=True)
        return [type(r) for r in res]

    assert loop.run_until_complete(main()) == [
        asyncio.BrokenBarrierError,
        asyncio.BrokenBarrierError,
    ]


def test_lock_cancelled_waiter_does_not_deadlock(loop):
    async def main():
        lock = asyncio.Lock()
        await lock.acquire()
        waiter = asyncio.ensure_future(lock.acquire())
        second = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        lock.release()
        await second
        assert lock.locked()
        lock.release()
        await asyncio.gather(waiter, return_exceptions=True)
        return waiter.cancelled()

    assert loop.run_until_complete(main()) is True
