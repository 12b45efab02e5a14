"""Same-run, interleaved loop comparisons (see benchmarks/README.md).

A benchmark is a workload function ``workload(loop, n) -> run`` living in an importable
module. ``workload`` does the untimed set-up and returns a zero-argument ``run`` callable;
the harness times ``run()``, which does the work on ``loop`` and returns
``(ops, check)``: how many operations it did and a value that proves the work was done
right (an exact count, a checksum). Each measurement runs in a fresh subprocess
(``python -m benchmarks._worker``) with a fresh loop, pinned to one CPU; loops are
interleaved A B C A B C ... for N repeats and the median is reported.

Nothing here ever asserts on speed: ``check_results`` asserts on ``check`` only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
LOOPS = ("asyncio", "uvloop", "ringloop")
WORKER_TIMEOUT = 60  # seconds per measurement; a hung loop is reported, not waited on
HELPER_CPU: int | None = None  # set in the worker process: the CPU for producer threads


def pin_helper_thread() -> None:
    """Call first thing in a benchmark's helper thread: move it to the other CPU."""
    if HELPER_CPU is not None:
        os.sched_setaffinity(0, {HELPER_CPU})  # 0 = the calling thread only


def repeats() -> int:
    return max(1, int(os.environ.get("RINGLOOP_BENCH_REPEATS", "5")))


def scale(n: int) -> int:
    """RINGLOOP_BENCH_SCALE=0.01 shrinks every workload (smoke runs)."""
    return max(1, int(n * float(os.environ.get("RINGLOOP_BENCH_SCALE", "1"))))


def cpus() -> tuple[int | None, int | None]:
    """(cpu for the loop, cpu for a helper thread) or None where pinning is off."""
    if os.environ.get("RINGLOOP_BENCH_NOPIN"):
        return None, None
    avail = sorted(os.sched_getaffinity(0))
    return avail[0], (avail[1] if len(avail) > 1 else None)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONTRACEMALLOC"):
        env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _worker(args: list[str]) -> dict:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks._worker", *args],
            cwd=REPO, env=_env(), capture_output=True, text=True,
            timeout=float(os.environ.get("RINGLOOP_BENCH_TIMEOUT", WORKER_TIMEOUT)),
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out (a lost callback or wake-up?)"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        rc = proc.returncode
        status = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        return {"error": f"{status}: {tail}" if tail else status}
    return json.loads(lines[-1])


@functools.cache
def loop_versions() -> dict[str, str | None]:
    """Loop name -> version string, or None when not importable ("not installed")."""
    versions = _worker(["--probe"])
    if "error" in versions:  # the probe itself failed: say why, measure nothing
        raise RuntimeError(f"benchmarks._worker --probe failed: {versions['error']}")
    return versions


def available_loops() -> list[str]:
    wanted = os.environ.get("RINGLOOP_BENCH_LOOPS", ",".join(LOOPS)).split(",")
    versions = loop_versions()
    return [name for name in LOOPS if name in wanted and versions.get(name)]


@dataclasses.dataclass
class Benchmark:
    name: str  # short label for the summary table
    workload: str  # "package.module:function"
    n: int  # operations per run (before RINGLOOP_BENCH_SCALE)
    unit: str  # what one op is, for the ops/s column
    expected: Callable[[int], object]  # n -> the check value every run must return


@dataclasses.dataclass
class Result:
    bench: Benchmark
    n: int
    runs: dict[str, list[dict]]  # loop name -> one dict per repeat (wall, cpu, ops, check | error)

    def walls(self, loop: str) -> list[float]:
        return [r["wall"] for r in self.runs.get(loop, []) if "error" not in r]

    def median(self, loop: str) -> float | None:
        walls = self.walls(loop)
        return statistics.median(walls) if walls and len(walls) == len(self.runs[loop]) else None

    def ops_per_s(self, loop: str) -> float | None:
        med = self.median(loop)
        return self.runs[loop][0]["ops"] / med if med else None

    def cpu_median(self, loop: str) -> float | None:
        return statistics.median(r["cpu"] for r in self.runs[loop]) if self.median(loop) else None

    def speedup(self, other: str, cpu: bool = False) -> float | None:
        """ringloop's speed relative to `other` (> 1: ringloop faster), by median wall time
        (or by median process CPU time)."""
        if other not in self.runs or "ringloop" not in self.runs:
            return None
        get = self.cpu_median if cpu else self.median
        a, b = get(other), get("ringloop")
        return a / b if a and b else None


def run(bench: Benchmark) -> Result:
    loops = available_loops()
    n = scale(bench.n)
    loop_cpu, helper_cpu = cpus()
    runs: dict[str, list[dict]] = {name: [] for name in loops}
    for _ in range(repeats()):
        for name in loops:  # interleaved: A B C A B C ...
            if runs[name] and "error" in runs[name][-1]:
                continue  # failed once (crash, hang): don't spend more time on it
            runs[name].append(
                _worker([bench.workload, name, str(n), str(loop_cpu), str(helper_cpu)])
            )
    return Result(bench, n, runs)


def _si(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= factor:
            return f"{x / factor:.2f} {prefix}{unit}"
    return f"{x:.1f} {unit}".rstrip()


def _ratio(x: float | None) -> str:
    return f"{x:.2f}×" if x else "—"


def report(result: Result) -> str:
    bench, versions = result.bench, loop_versions()
    loop_cpu, helper_cpu = cpus()
    pin = f"loop on cpu {loop_cpu}" if loop_cpu is not None else "unpinned"
    if helper_cpu is not None and "thread" in bench.workload:
        pin += f", producer thread on cpu {helper_cpu}"
    lines = [
        f"\n## {bench.name}: n={result.n:,}, {repeats()} interleaved repeats, {pin}",
        f"{'loop':<9} {'median':>9} {'min':>9} {bench.unit + '/s':>14} {'cpu/op':>9}"
        f" {'ringloop speed ×':>17}",
    ]
    for name in LOOPS:
        if name not in result.runs:
            why = versions["errors"].get(name, "not installed") if not versions.get(
                name) else "not selected"
            lines.append(f"{name:<9} {why}")
            continue
        runs = result.runs[name]
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            lines.append(f"{name:<9} FAILED {len(errors)}/{len(runs)}: {errors[0]}")
            continue
        walls = result.walls(name)
        cpu_op = result.cpu_median(name) / runs[0]["ops"]
        ratio = "1.00×" if name == "ringloop" else _ratio(result.speedup(name))
        lines.append(
            f"{name:<9} {statistics.median(walls):>8.3f}s {min(walls):>8.3f}s"
            f" {_si(result.ops_per_s(name)):>14} {cpu_op * 1e6:>7.3f}µs {ratio:>17}"
        )
    if "ringloop" in result.runs:
        lines.append("  ".join(
            f"ringloop÷{o} {_ratio(result.speedup(o))} (by CPU {_ratio(result.speedup(o, cpu=True))})"
            for o in ("asyncio", "uvloop")) + "  [ratios of medians, > 1 = ringloop faster]")
    return "\n".join(lines)


def problems(result: Result) -> dict[str, str]:
    """Loop name -> what went wrong (a failed run, a wrong count or checksum)."""
    found = {}
    for name, runs in result.runs.items():
        for r in runs:
            if "error" in r:
                found[name] = r["error"]
            elif r["ops"] != result.n:
                found[name] = f"did {r['ops']} ops, not {result.n}"
            elif r["check"] != json.loads(json.dumps(result.bench.expected(result.n))):
                found[name] = f"check {r['check']!r} != {result.bench.expected(result.n)!r}"
            else:
                continue
            break
    return found


def check_results(result: Result) -> None:
    """Correctness only: every run succeeded and did exactly the expected work."""
    found = problems(result)
    assert not found, f"{result.bench.name}: " + "; ".join(f"{k}: {v}" for k, v in found.items())


def run_and_check(bench: Benchmark) -> Result:
    """What each pytest benchmark does: run, print the table, assert correctness."""
    result = run(bench)
    print(report(result))
    check_results(result)
    return result


def pytest_benchmarks(benchmarks: list[Benchmark]):
    """A pytest test running each of `benchmarks`; a benchmark file assigns it
    to a module-level name starting with test_."""
    import pytest

    @pytest.mark.parametrize("bench", benchmarks, ids=lambda b: b.name)
    def test(bench):
        run_and_check(bench)

    return test
