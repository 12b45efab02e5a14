"""Run every benchmark and print one markdown summary table (for README.md).

    python benchmarks/run_all.py [loop] [echo] [http]     (or: python -m benchmarks ...)

With no argument, all three groups: ``loop`` (the loop-machinery benchmarks below),
``echo`` (the echo matrix) and ``http`` (HTTP/1.1 under wrk), see README.md.
Same method as ``pytest benchmarks -s``: per benchmark, fresh processes, loops interleaved
A B C A B C for RINGLOOP_BENCH_REPEATS repeats (default 5; 3 for echo and http), medians.
Exits non-zero if any loop did the work wrong (never because of speed).
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
GROUPS = ("loop", "echo", "http")  # loop = MODULES; echo, http = benchmarks/echo/netbench.py


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


def network(group: str, failures: list[str]) -> str:
    """Run the echo matrix or the HTTP benchmark; its markdown section for the summary."""
    from benchmarks.echo import netbench

    title = {"echo": "Echo matrix", "http": "HTTP/1.1 keep-alive under wrk"}[group]
    try:
        m = netbench.run_echo() if group == "echo" else netbench.run_http()
    except (RuntimeError, OSError) as exc:  # wrk not installable, loadgen not buildable
        failures.append(f"{group}: {exc}")
        return f"\n{title}: not run ({exc})\n"
    print(netbench.detail(m), flush=True)
    failures += netbench.problems(m)
    return (f"\n{title} ({m.elapsed:.0f} s). {netbench.legend(m)}\n\n"
            f"{netbench.summary(m)}\n")


def main() -> int:
    groups = sys.argv[1:] or list(GROUPS)
    unknown = set(groups) - set(GROUPS)
    if unknown:
        print(f"usage: run_all.py [{'] ['.join(GROUPS)}]  (unknown: {', '.join(unknown)})")
        return 2
    modules = MODULES if "loop" in groups else ()
    benches = [b for m in modules for b in importlib.import_module(f"benchmarks.{m}").BENCHMARKS]
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
    sections = [network(g, failures) for g in ("echo", "http") if g in groups]
    head = "| benchmark | asyncio | uvloop | ringloop | ringloop÷asyncio | ringloop÷uvloop |\n"
    head += "|---|---:|---:|---:|---:|---:|\n"
    print(f"\n# Summary ({time.monotonic() - started:.0f} s)\n")
    print(machine())
    if benches:
        print("\nThroughput: median ops/s; ratios of median wall times (> 1 = ringloop faster)\n")
        print(head + "\n".join(throughput))
        print("\nProcess CPU time per op (all threads), medians; ratios of median CPU times\n")
        print(head + "\n".join(cpu))
    for section in sections:
        print(section)
    for failure in failures:
        print(f"\nFAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
