"""One measurement in a fresh process: ``python -m benchmarks._worker MOD:FUNC LOOP N CPU HELPER_CPU``.

Pins itself to CPU, warms the allocator, builds a fresh LOOP, lets the workload set up
(untimed), times ``run()`` with perf_counter and process CPU time, and prints one JSON
line: {"wall", "cpu", "ops", "check"}. ``--probe`` prints the installed loops' versions.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import platform
import sys
import time

from benchmarks import _harness


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.new_event_loop()
    return importlib.import_module(name).new_event_loop()


def probe() -> dict:
    versions: dict = {"asyncio": platform.python_version(), "errors": {}}
    for name in ("uvloop", "ringloop"):
        try:
            mod = importlib.import_module(name)
            new_loop(name).close()
            versions[name] = getattr(mod, "__version__", "installed")
        except Exception as exc:  # not installed, or does not work: leave it out
            versions[name] = None
            if not isinstance(exc, ModuleNotFoundError):
                versions["errors"][name] = f"{type(exc).__name__}: {exc}"
    return versions


def measure(spec: str, loop_name: str, n: int, cpu: str, helper_cpu: str) -> dict:
    if cpu != "None":
        os.sched_setaffinity(0, {int(cpu)})  # this thread; threads started later inherit it
    _harness.HELPER_CPU = None if helper_cpu == "None" else int(helper_cpu)
    bytearray(4 << 20)  # allocate + free 4 MiB: raises glibc's mmap threshold alike for all loops
    mod_name, func_name = spec.split(":")
    workload = getattr(importlib.import_module(mod_name), func_name)
    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    try:
        run = workload(loop, n)
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        ops, check = run()
        t1, c1 = time.perf_counter(), time.process_time()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return {"wall": t1 - t0, "cpu": c1 - c0, "ops": ops, "check": check}


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
    else:
        spec, loop_name, n, cpu, helper_cpu = sys.argv[1:]
        print(json.dumps(measure(spec, loop_name, int(n), cpu, helper_cpu)))
