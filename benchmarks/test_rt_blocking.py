"""Blocking-pool round trips: ringloop's ``rt.spawn_blocking`` against
``asyncio.to_thread`` and ``loop.run_in_executor(None, ...)``.

"spawn_blocking vs to_thread": on ringloop the workload awaits
``rt.spawn_blocking(noop)``; on asyncio and uvloop ``asyncio.to_thread(noop)``
(what those users call).  "run_in_executor(None)": the same call on every loop
(ringloop's default executor is its blocking pool).  Each comes sequential (one
call in flight: latency) and with 100 in flight (throughput).

The loop thread and the pool threads may use both CPUs here (the harness pins
the loop to one CPU and threads inherit that; a pool pinned onto its loop's CPU
measures only the scheduler), for every loop alike.
"""

import asyncio
import os

from benchmarks._harness import Benchmark, pytest_benchmarks


def _noop():
    return None


def _unpin():
    os.sched_setaffinity(0, set(range(os.cpu_count())))


def _call(loop, how):
    if how == "executor":
        return lambda: loop.run_in_executor(None, _noop)
    if type(loop).__module__.startswith("ringloop"):
        from ringloop import rt

        return lambda: rt.spawn_blocking(_noop)
    return lambda: asyncio.to_thread(_noop)


def _workload(how, width):
    def workload(loop, n):
        _unpin()
        call = _call(loop, how)

        async def main():
            done = 0
            for _ in range(n // width):
                if width == 1:
                    await call()
                else:
                    await asyncio.gather(*[call() for _ in range(width)])
                done += width
            return done

        loop.run_until_complete(main())  # warm: threads started

        def run():
            done = loop.run_until_complete(main())
            return done, done

        return run

    return workload


seq_spawn = _workload("spawn", 1)
wide_spawn = _workload("spawn", 100)
seq_executor = _workload("executor", 1)
wide_executor = _workload("executor", 100)

BENCHMARKS = [
    Benchmark("spawn_blocking vs to_thread, sequential", f"{__name__}:seq_spawn", 5_000,
              "calls", expected=lambda n: n),
    Benchmark("spawn_blocking vs to_thread, 100 in flight", f"{__name__}:wide_spawn", 50_000,
              "calls", expected=lambda n: n // 100 * 100),
    Benchmark("run_in_executor(None), sequential", f"{__name__}:seq_executor", 5_000,
              "calls", expected=lambda n: n),
    Benchmark("run_in_executor(None), 100 in flight", f"{__name__}:wide_executor", 50_000,
              "calls", expected=lambda n: n // 100 * 100),
]

test_rt_blocking = pytest_benchmarks(BENCHMARKS)
