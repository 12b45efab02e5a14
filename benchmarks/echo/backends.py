"""ringloop's two I/O backends side by side: the echo benchmark on io_uring and on
epoll (RINGLOOP_BACKEND), with uvloop and asyncio, in one interleaved run.

``python -m benchmarks.echo.backends`` — same method and knobs as netbench (a fresh
pinned server per measurement, the C loadgen, medians of RINGLOOP_BENCH_REPEATS
repeats; RINGLOOP_BENCH_ECHO_MODES / _SIZES / _CONNS pick the cells, default here:
protocol and streams, 1 KiB, 10 connections). Prints req/s and server CPU per request
and the ratios; never asserts a speed.
"""

from __future__ import annotations

import os
import statistics
import sys

from benchmarks import _harness
from benchmarks.echo import netbench

# column -> (loop name for the server, RINGLOOP_BACKEND for it)
COLUMNS = {
    "asyncio": ("asyncio", None),
    "uvloop": ("uvloop", None),
    "ringloop/io_uring": ("ringloop", "io_uring"),
    "ringloop/epoll": ("ringloop", "epoll"),
}


def _measure(column: str, mode: str, size: int, conns: int, window: float,
             warmup: float) -> dict:
    loop, backend = COLUMNS[column]
    saved = os.environ.get("RINGLOOP_BACKEND")
    if backend:
        os.environ["RINGLOOP_BACKEND"] = backend
    try:
        return netbench.measure_quietly(netbench.measure_echo, loop, mode, size, conns,
                                        window, warmup)
    finally:
        if saved is None:
            os.environ.pop("RINGLOOP_BACKEND", None)
        else:
            os.environ["RINGLOOP_BACKEND"] = saved


def main() -> int:
    os.environ.setdefault("RINGLOOP_BENCH_ECHO_MODES", "protocol,streams")
    os.environ.setdefault("RINGLOOP_BENCH_ECHO_SIZES", "1k")
    os.environ.setdefault("RINGLOOP_BENCH_ECHO_CONNS", "10")
    loops = set(_harness.available_loops())
    columns = [c for c, (lp, _) in COLUMNS.items() if lp in loops]
    window = netbench._seconds("RINGLOOP_BENCH_ECHO_SECONDS", 3.0, 1.0)
    warmup = netbench._seconds("RINGLOOP_BENCH_ECHO_WARMUP", 1.0, 0.5)
    cells = [(m, s, c) for m in netbench.echo_modes() for s in netbench.echo_sizes()
             for c in netbench.echo_conns()]
    runs: dict[tuple, list[dict]] = {}
    for rep in range(netbench.repeats()):
        for cell in cells:
            for col in columns:  # interleaved: A B C D A B C D ...
                res = _measure(col, *cell, window, warmup)
                runs.setdefault(cell + (col,), []).append(res)
                print(f"# repeat {rep + 1} {cell} {col}: "
                      + (f"{res['rps']:.0f} req/s, {res['cpu_us']:.2f} µs CPU/req"
                         if "rps" in res else res.get("error", "?")), file=sys.stderr)

    def med(cell, col, field):
        vals = [r[field] for r in runs.get(cell + (col,), []) if field in r]
        return statistics.median(vals) if vals else None

    print("| mode | size | conns | " + " | ".join(columns)
          + " | io_uring÷epoll CPU/req | uvloop÷epoll CPU/req | uvloop÷io_uring CPU/req |")
    print("|---" * (3 + len(columns) + 3) + "|")
    for cell in cells:
        row = [cell[0], netbench.fmt_size(cell[1]), str(cell[2])]
        for col in columns:
            rps, cpu = med(cell, col, "rps"), med(cell, col, "cpu_us")
            row.append("failed" if rps is None else f"{rps / 1e3:.0f}k req/s, {cpu:.2f} µs")
        cpu = {col: med(cell, col, "cpu_us") for col in columns}
        row += [netbench._ratio(cpu.get("ringloop/io_uring"), cpu.get("ringloop/epoll")),
                netbench._ratio(cpu.get("uvloop"), cpu.get("ringloop/epoll")),
                netbench._ratio(cpu.get("uvloop"), cpu.get("ringloop/io_uring"))]
        print("| " + " | ".join(row) + " |")
    print(f"\nmedians of {netbench.repeats()} interleaved repeats; server CPU per request "
          "(user+sys); a ratio a÷b > 1 means b spends less CPU per request than a.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
