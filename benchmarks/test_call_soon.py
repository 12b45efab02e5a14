"""call_soon throughput: 1,000,000 counter callbacks, without and with 2 arguments.

A feeder callback schedules them in batches of 1,000 (so the ready queue stays at a
realistic length) and re-schedules itself; the last counter callback stops the loop.
"""

from benchmarks._harness import Benchmark, pytest_benchmarks

BATCH = 1000


def call_soon_noargs(loop, n):
    count = 0

    def tick():
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    def feed(start):
        call_soon = loop.call_soon
        for _ in range(min(BATCH, n - start)):
            call_soon(tick)
        if start + BATCH < n:
            call_soon(feed, start + BATCH)

    def run():
        loop.call_soon(feed, 0)
        loop.run_forever()
        return n, count

    return run


def call_soon_2args(loop, n):
    count = acc = 0

    def tick(a, b):
        nonlocal count, acc
        count += 1
        acc += a - b  # 2 per call, only if both arguments arrive in order
        if count == n:
            loop.stop()

    def feed(start):
        call_soon = loop.call_soon
        for _ in range(min(BATCH, n - start)):
            call_soon(tick, 3, 1)
        if start + BATCH < n:
            call_soon(feed, start + BATCH)

    def run():
        loop.call_soon(feed, 0)
        loop.run_forever()
        return n, [count, acc]

    return run


BENCHMARKS = [
    Benchmark("call_soon, no args", f"{__name__}:call_soon_noargs", 1_000_000,
              "calls", expected=lambda n: n),
    Benchmark("call_soon, 2 args", f"{__name__}:call_soon_2args", 1_000_000,
              "calls", expected=lambda n: [n, 2 * n]),
]


test_call_soon = pytest_benchmarks(BENCHMARKS)
