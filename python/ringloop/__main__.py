"""python -m ringloop: "the main job" -- one asyncio program, unchanged, on every loop.

It runs on stock asyncio, uvloop (when installed) and ringloop, its five parts at once:
  fan_out      10,000 tasks in a TaskGroup, each sleeping 0-20 ms
  hashing      an async generator feeds 400 chunks of 16 KiB through a Queue to 8 workers
               that hash them in threads (to_thread, run_in_executor) under a Semaphore
               and record the digests under a Lock
  pipeline     30,000 items through source -> transform -> sink over bounded Queues
  deadlines    300 requests under asyncio.timeout; every third never answers
  from_thread  a sensor thread posts 20,000 readings with call_soon_threadsafe
Every loop must produce the same results, or the exit status is 1. Times: best of 3
interleaved rounds; benchmarks/ has the careful numbers.
"""

import asyncio
import gc
import hashlib
import random
import sys
import threading
import time
import traceback
import zlib

import ringloop

SEED = 2024


async def fan_out(n=10_000):
    rng = random.Random(SEED)

    async def job(i, delay):
        await asyncio.sleep(delay)
        return i * i % 97

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(job(i, rng.uniform(0, 0.020))) for i in range(n)]
    return {"tasks": len(tasks), "sum": sum(t.result() for t in tasks)}


async def chunks(count, size):
    """Data arriving in bursts: an async generator."""
    rng = random.Random(SEED + 1)
    for i in range(count):
        if i % 16 == 0:
            await asyncio.sleep(0.001)
        yield i, rng.randbytes(size)


async def hashing(count=400, size=16 * 1024, workers=8):
    loop = asyncio.get_running_loop()
    queue, slots, lock, digests = asyncio.Queue(32), asyncio.Semaphore(4), asyncio.Lock(), {}

    async def producer():
        async for item in chunks(count, size):
            await queue.put(item)
        for _ in range(workers):  # one "no more work" marker per worker
            await queue.put(None)

    async def worker():
        while (item := await queue.get()) is not None:
            i, data = item
            async with slots:
                sha = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
                crc = await loop.run_in_executor(None, zlib.crc32, data)
            async with lock:
                digests[i] = (sha, crc)

    async with asyncio.TaskGroup() as tg:
        for job in [producer(), *(worker() for _ in range(workers))]:
            tg.create_task(job)
    combined = hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()
    return {"chunks": len(digests), "digest": combined[:16]}


async def pipeline(n=30_000):
    raw, cooked = asyncio.Queue(100), asyncio.Queue(100)

    async def source():
        for i in [*range(n), None]:
            await raw.put(i)

    async def transform():
        while (x := await raw.get()) is not None:
            await cooked.put(x * x % 10_007)
        await cooked.put(None)

    async def sink():
        count = total = 0
        while (x := await cooked.get()) is not None:
            count, total = count + 1, total + x
        return {"items": count, "sum": total}

    async with asyncio.TaskGroup() as tg:
        tg.create_task(source())
        tg.create_task(transform())
        result = tg.create_task(sink())
    return result.result()


async def deadlines(n=300):
    never = asyncio.Event()

    async def request(i):  # every third never answers and times out after 20 ms; the
        try:  # others answer in 1 ms, within a deadline generous even for a busy loop
            async with asyncio.timeout(0.020 if i % 3 == 0 else 10):
                await (never.wait() if i % 3 == 0 else asyncio.sleep(0.001))
            return 0
        except TimeoutError:
            return 1

    return {"requests": n, "timed_out": sum(await asyncio.gather(*map(request, range(n))))}


async def from_thread(n=20_000):
    loop, readings = asyncio.get_running_loop(), asyncio.Queue()

    def sensor():  # runs in its own thread; None means "done"
        for value in [*(i * 7 % 1000 for i in range(n)), None]:
            loop.call_soon_threadsafe(readings.put_nowait, value)

    (thread := threading.Thread(target=sensor)).start()
    count = total = 0
    while (value := await readings.get()) is not None:
        count, total = count + 1, total + value
    await asyncio.to_thread(thread.join)
    return {"messages": count, "sum": total}


async def main_job():
    async with asyncio.TaskGroup() as tg:
        parts = [tg.create_task(part(), name=part.__name__)
                 for part in (fan_out, hashing, pipeline, deadlines, from_thread)]
    return {task.get_name(): task.result() for task in parts}


def loops():
    yield "asyncio", asyncio.new_event_loop
    try:
        import uvloop
        yield "uvloop", uvloop.new_event_loop
    except ImportError:
        print("(uvloop is not installed: comparing with stock asyncio only)\n")
    yield "ringloop", ringloop.new_event_loop


def describe(results):
    return "\n".join(f"  {part:<12}" + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                               for k, v in counts.items())
                     for part, counts in results.items())


def main(rounds=3):
    print(f"The main job on Python {sys.version.split()[0]}: one asyncio program, every loop.\n")
    candidates, results, wall, cpu, failed = list(loops()), {}, {}, {}, set()
    for _ in range(rounds):
        for name, factory in candidates:
            if name in failed:
                continue
            gc.collect()
            t0, c0 = time.perf_counter(), time.thread_time()  # CPU time of this (the loop's) thread
            try:
                with asyncio.Runner(loop_factory=factory) as runner:
                    result = runner.run(main_job())
            except Exception:
                print(f"{name} FAILED:\n{traceback.format_exc()}")
                failed.add(name)
                continue
            w, c = time.perf_counter() - t0, time.thread_time() - c0
            wall[name], cpu[name] = min(wall.get(name, w), w), min(cpu.get(name, c), c)
            if results.setdefault(name, result) != result:
                failed.add(name)  # not even the same results from one round to the next

    reference = next(iter(results.values()), {})
    print(f"What each loop did:\n{describe(reference)}\n")
    for name, result in results.items():
        checksum = hashlib.sha256(repr(result).encode()).hexdigest()[:12]
        print(f"{name:<9} {wall[name]:5.2f} s wall, {cpu[name]:5.2f} s CPU in the loop thread,"
              f" checksum {checksum}")
        if result != reference:
            print(f"  DIFFERENT RESULTS:\n{describe(result)}")
            failed.add(name)
    if "ringloop" in results:
        print("\nringloop's speed (> 1: faster) by wall time / by loop-thread CPU:")
        for other in (o for o in results if o != "ringloop"):
            print(f"  vs {other:<8} {wall[other] / wall['ringloop']:.2f}×"
                  f" / {cpu[other] / cpu['ringloop']:.2f}×")
    print(f"\nFAILED: {', '.join(sorted(failed))}" if failed
          else f"\nSame results on every loop: {', '.join(results)}.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
