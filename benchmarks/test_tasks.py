"""Tasks: asyncio.sleep(0) ping-pong between two tasks, and create_task + gather.

ping-pong: two tasks take turns through asyncio.sleep(0), 200,000 switches in all; a
FIFO ready queue makes them strictly alternate, and that is checked.
gather: 100,000 trivial coroutines wrapped with create_task and gathered.
"""

import asyncio

from benchmarks._harness import Benchmark, pytest_benchmarks


def sleep0_pingpong(loop, n):
    last = None
    switches = out_of_turn = 0

    async def player(me):
        nonlocal last, switches, out_of_turn
        for _ in range((n + 1 - me) // 2):
            out_of_turn += last == me
            last = me
            switches += 1
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(player(0), player(1))

    def run():
        loop.run_until_complete(main())
        return switches, [switches, out_of_turn]

    return run


async def trivial(i):
    return i


def gather_tasks(loop, n):
    async def main():
        results = await asyncio.gather(*[asyncio.create_task(trivial(i)) for i in range(n)])
        return len(results), sum(results)

    def run():
        done, total = loop.run_until_complete(main())
        return done, [done, total]

    return run


BENCHMARKS = [
    Benchmark("sleep(0) ping-pong", f"{__name__}:sleep0_pingpong", 200_000,
              "switches", expected=lambda n: [n, 0]),
    Benchmark("create_task + gather", f"{__name__}:gather_tasks", 100_000,
              "tasks", expected=lambda n: [n, n * (n - 1) // 2]),
]


test_tasks = pytest_benchmarks(BENCHMARKS)
