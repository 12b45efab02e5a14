"""Run every benchmark and print one markdown summary table (for README.md).

    python benchmarks/run_all.py      (or: python -m benchmarks)

Same method as ``pytest benchmarks -s``: per benchmark, fresh processes, loops interleaved
A B C A B C for RINGLOOP_BENCH_REPEATS repeats (default 5), medians. Exits non-zero if
any loop did the work wrong (never because of speed).
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import sys
import time

if not __package__:  # run as a script: make "benchmarks" importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _harness  # noqa: E402

MODULES = ("test_call_soon", "test_timers", "test_tasks", "test_threadsafe")


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    v = _harness.loop_versions()
    loop_cpu, helper_cpu = _harness.cpus()
    pin = "unpinned" if loop_cpu is None else f"loop pinned to cpu {loop_cpu}" + (
        f", helper threads to cpu {helper_cpu}" if helper_cpu is not None else "")
    return "\n".join([
        f"- CPU: {model}, {os.cpu_count()} logical cores ({pin})",
        f"- Kernel: Linux {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- uvloop {v.get('uvloop') or 'not installed'}, "
        f"ringloop {v.get('ringloop') or v['errors'].get('ringloop', 'not installed')}",
        f"- {_harness.repeats()} interleaved repeats per benchmark, each run in a fresh "
        f"process; figures are medians; {datetime.date.today().isoformat()}",
    ])


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    benches = [b for m in MODULES for b in importlib.import_module(f"benchmarks.{m}").BENCHMARKS]
    versions = _harness.loop_versions()
    throughput: list[str] = []
    cpu: list[str] = []
    failures: list[str] = []
    started = time.monotonic()
    for bench in benches:
        result = _harness.run(bench)
        print(_harness.report(result), flush=True)
        bad = _harness.problems(result)
        failures += [f"{bench.name} on {name}: {why}" for name, why in bad.items()]

        def cell(name: str, value) -> str:
            if name not in result.runs:
                return "n/a" if versions.get(name) else "not installed"
            return "FAILED" if name in bad else value(name)

        label = f"{bench.name} (n={result.n:,} {bench.unit})"
        throughput.append(_row([label] + [
            cell(name, lambda n: _harness._si(result.ops_per_s(n), "/s")) for name in _harness.LOOPS
        ] + [_harness._ratio(result.speedup(o)) for o in ("asyncio", "uvloop")]))
        cpu.append(_row([label] + [
            cell(name, lambda n: f"{result.cpu_median(n) / result.n * 1e6:.3f} µs")
            for name in _harness.LOOPS
        ] + [_harness._ratio(result.speedup(o, cpu=True)) for o in ("asyncio", "uvloop")]))
    head = "| benchmark | asyncio | uvloop | ringloop | ringloop÷asyncio | ringloop÷uvloop |\n"
    head += "|---|---:|---:|---:|---:|---:|\n"
    print(f"\n# Summary ({time.monotonic() - started:.0f} s)\n")
    print(machine())
    print("\nThroughput: median ops/s; ratios of median wall times (> 1 = ringloop faster)\n")
    print(head + "\n".join(throughput))
    print("\nProcess CPU time per op (all threads), medians; ratios of median CPU times\n")
    print(head + "\n".join(cpu))
    for failure in failures:
        print(f"\nFAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
