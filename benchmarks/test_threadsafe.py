"""call_soon_threadsafe from another thread (the loop pinned to one CPU, the thread to the other).

flood: a producer thread makes 200,000 calls as fast as it can; the loop counts them and
checks they arrive in order.
ping-pong: the thread makes one call and waits for the loop's reply before the next,
10,000 round trips: what a wake-up of an idle loop from another thread costs.
"""

import queue
import threading

from benchmarks import _harness
from benchmarks._harness import Benchmark, pytest_benchmarks


def thread_flood(loop, n):
    count = 0
    last = -1
    in_order = True

    def tick(i):
        nonlocal count, last, in_order
        in_order &= i == last + 1
        last = i
        count += 1
        if count == n:
            loop.stop()

    def produce():
        _harness.pin_helper_thread()
        call = loop.call_soon_threadsafe
        for i in range(n):
            call(tick, i)

    def run():
        producer = threading.Thread(target=produce)
        loop.call_soon(producer.start)
        loop.run_forever()
        producer.join()
        return count, [count, in_order]

    return run


def thread_pingpong(loop, n):
    replies = queue.SimpleQueue()
    answered = []

    def echo(i):
        replies.put(i + 1)

    def client():
        _harness.pin_helper_thread()
        ok = 0
        for i in range(n):
            loop.call_soon_threadsafe(echo, i)
            ok += replies.get() == i + 1
        answered.append(ok)
        loop.call_soon_threadsafe(loop.stop)

    def run():
        thread = threading.Thread(target=client)
        loop.call_soon(thread.start)
        loop.run_forever()
        thread.join()
        return answered[0], answered[0]

    return run


BENCHMARKS = [
    Benchmark("call_soon_threadsafe flood", f"{__name__}:thread_flood", 200_000,
              "calls", expected=lambda n: [n, True]),
    Benchmark("call_soon_threadsafe ping-pong", f"{__name__}:thread_pingpong", 10_000,
              "round trips", expected=lambda n: n),
]


test_threadsafe = pytest_benchmarks(BENCHMARKS)
