"""Timers: churn (schedule + cancel, never fire) and timers that all fire.

churn: 1,000,000 call_later timers with delays 0–100 s from a seeded RNG, in batches:
schedule 1,000, cancel those 1,000, let the loop run an iteration, repeat.
fire: 100,000 call_later timers with delays 0–1 ms, all of which must fire.
"""

import random

from benchmarks._harness import Benchmark, pytest_benchmarks

BATCH = 1000


def timer_churn(loop, n):
    rng = random.Random(20240501)
    delays = [rng.uniform(0.0, 100.0) for _ in range(n)]
    fired = cancelled = 0

    def never():
        nonlocal fired
        fired += 1

    def batch(start):
        nonlocal cancelled
        call_later = loop.call_later
        handles = [call_later(d, never) for d in delays[start:start + BATCH]]
        for h in handles:
            h.cancel()
        cancelled += len(handles)
        if start + BATCH < n:
            loop.call_soon(batch, start + BATCH)
        else:
            loop.call_soon(loop.stop)  # one more iteration with the last batch cancelled

    def run():
        loop.call_soon(batch, 0)
        loop.run_forever()
        return cancelled, [cancelled, fired]

    return run


def timer_fire(loop, n):
    rng = random.Random(20240502)
    delays = [rng.uniform(0.0, 0.001) for _ in range(n)]
    fired = total = 0

    def fire(i):
        nonlocal fired, total
        fired += 1
        total += i
        if fired == n:
            loop.stop()

    def schedule():
        call_later = loop.call_later
        for i, d in enumerate(delays):
            call_later(d, fire, i)

    def run():
        loop.call_soon(schedule)
        loop.run_forever()
        return fired, [fired, total]

    return run


BENCHMARKS = [
    Benchmark("timers: schedule+cancel", f"{__name__}:timer_churn", 1_000_000,
              "timers", expected=lambda n: [n, 0]),
    Benchmark("timers: 0–1 ms, all fire", f"{__name__}:timer_fire", 100_000,
              "timers", expected=lambda n: [n, n * (n - 1) // 2]),
]


test_timers = pytest_benchmarks(BENCHMARKS)
