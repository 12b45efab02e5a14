"""ringloop.rt against the plain asyncio idiom it replaces, on every loop.

- spawn: 100,000 x ``await rt.spawn(trivial())`` vs ``await loop.create_task(trivial())``
  (rt.spawn adds a strong reference and a done callback).
- select: 20,000 x ``rt.select(fast, slow)`` (loser cancelled and awaited) vs
  ``asyncio.wait({fast, slow}, return_when=FIRST_COMPLETED)`` + cancel + await.
- channel, same loop, 1 producer task, 1 consumer task, 200,000 items: rt.channel vs
  asyncio.Queue, unbounded and bounded (capacity 64).
- thread -> loop, 200,000 items from a producer thread on the other CPU:
  ``tx.send_blocking`` into rt.channel(1024) vs ``loop.call_soon_threadsafe(q.put_nowait)``
  into an asyncio.Queue; the loop consumes and checks order.
"""

import asyncio
import threading

from benchmarks import _harness
from benchmarks._harness import Benchmark, pytest_benchmarks
from ringloop import rt


async def trivial(i):
    return i


def _spawn_await(loop, n, spawn):
    async def main():
        total = 0
        for i in range(n):
            total += await spawn(trivial(i))
        return total

    def run():
        return n, loop.run_until_complete(main())

    return run


def create_task_await(loop, n):
    return _spawn_await(loop, n, loop.create_task)


def spawn_await(loop, n):
    return _spawn_await(loop, n, rt.spawn)


async def _slow():
    await asyncio.sleep(3600)


def select_first(loop, n):
    async def main():
        wins = 0
        for i in range(n):
            idx, v = await rt.select(trivial(i), _slow(), biased=True)
            wins += idx == 0 and v == i
        return wins

    def run():
        return n, loop.run_until_complete(main())

    return run


def wait_first_completed(loop, n):
    async def main():
        wins = 0
        for i in range(n):
            fast = loop.create_task(trivial(i))
            slow = loop.create_task(_slow())
            done, pending = await asyncio.wait({fast, slow},
                                               return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            await asyncio.wait(pending)
            wins += fast in done and fast.result() == i
        return wins

    def run():
        return n, loop.run_until_complete(main())

    return run


def _pipe(loop, n, make, put, get):
    async def main():
        chan = make()

        async def producer():
            for i in range(n):
                await put(chan, i)
            await put(chan, None)

        async def consumer():
            total = count = 0
            while (x := await get(chan)) is not None:
                total += x
                count += 1
            return count, total

        p = loop.create_task(producer())
        result = await consumer()
        await p
        return result

    def run():
        count, total = loop.run_until_complete(main())
        return count, [count, total]

    return run


def queue_unbounded(loop, n):
    return _pipe(loop, n, asyncio.Queue, lambda q, x: q.put(x), lambda q: q.get())


def queue_bounded(loop, n):
    return _pipe(loop, n, lambda: asyncio.Queue(64), lambda q, x: q.put(x), lambda q: q.get())


def channel_unbounded(loop, n):
    return _pipe(loop, n, lambda: rt.channel(None),
                 lambda c, x: c[0].send(x), lambda c: c[1].recv())


def channel_bounded(loop, n):
    return _pipe(loop, n, lambda: rt.channel(64),
                 lambda c, x: c[0].send(x), lambda c: c[1].recv())


def thread_channel(loop, n):
    tx, rx = rt.channel(1024)

    def produce():
        _harness.pin_helper_thread()
        with tx:
            for i in range(n):
                tx.send_blocking(i)

    async def main():
        t = threading.Thread(target=produce)
        t.start()
        count, in_order = 0, True
        async for x in rx:
            in_order &= x == count
            count += 1
        t.join()
        return count, in_order

    def run():
        count, in_order = loop.run_until_complete(main())
        return count, [count, in_order]

    return run


def thread_call_soon_threadsafe(loop, n):
    async def main():
        q = asyncio.Queue()

        def produce():
            _harness.pin_helper_thread()
            call, put = loop.call_soon_threadsafe, q.put_nowait
            for i in range(n):
                call(put, i)
            call(put, None)

        t = threading.Thread(target=produce)
        t.start()
        count, in_order = 0, True
        while (x := await q.get()) is not None:
            in_order &= x == count
            count += 1
        t.join()
        return count, in_order

    def run():
        count, in_order = loop.run_until_complete(main())
        return count, [count, in_order]

    return run


def _sum(n):
    return n * (n - 1) // 2


BENCHMARKS = [
    Benchmark("create_task + await", f"{__name__}:create_task_await", 100_000, "tasks",
              expected=_sum),
    Benchmark("rt.spawn + await", f"{__name__}:spawn_await", 100_000, "tasks",
              expected=_sum),
    Benchmark("asyncio.wait(FIRST_COMPLETED) + cancel", f"{__name__}:wait_first_completed",
              20_000, "selects", expected=lambda n: n),
    Benchmark("rt.select", f"{__name__}:select_first", 20_000, "selects",
              expected=lambda n: n),
    Benchmark("asyncio.Queue() 1p1c", f"{__name__}:queue_unbounded", 200_000, "items",
              expected=lambda n: [n, _sum(n)]),
    Benchmark("rt.channel(None) 1p1c", f"{__name__}:channel_unbounded", 200_000, "items",
              expected=lambda n: [n, _sum(n)]),
    Benchmark("asyncio.Queue(64) 1p1c", f"{__name__}:queue_bounded", 200_000, "items",
              expected=lambda n: [n, _sum(n)]),
    Benchmark("rt.channel(64) 1p1c", f"{__name__}:channel_bounded", 200_000, "items",
              expected=lambda n: [n, _sum(n)]),
    Benchmark("thread -> call_soon_threadsafe -> Queue",
              f"{__name__}:thread_call_soon_threadsafe", 200_000, "items",
              expected=lambda n: [n, True]),
    Benchmark("thread -> rt.channel(1024).send_blocking", f"{__name__}:thread_channel",
              200_000, "items", expected=lambda n: [n, True]),
]


test_rt = pytest_benchmarks(BENCHMARKS)
