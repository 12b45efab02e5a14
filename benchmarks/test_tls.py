"""TLS echo: ringloop vs uvloop vs asyncio in one run, 1 KiB and 100 KiB
messages over 10 connections (see benchmarks/tls_echo.py for the server and
the client).

Each measurement starts a fresh server process pinned to the loop CPU and a
Python TLS client (uvloop) pinned to the other; loops are interleaved
A B C A B C for N repeats (RINGLOOP_BENCH_REPEATS, default 3) and medians are
printed: requests/s and the server's CPU time per request (its CPU clock read
at the edges of the client's measured window). The Python client limits
throughput at 1 KiB, so CPU per request is the figure that compares loops.
Only correctness is asserted: every run completed requests and every echoed
byte matched.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pytest

from benchmarks import _harness, tls_echo
from benchmarks.echo import netbench

SIZES = (1024, 100 * 1024)
CONNS = 10


def _seconds() -> float:
    return max(0.5, 3.0 * min(1.0, float(os.environ.get("RINGLOOP_BENCH_SCALE", "1"))))


def _popen(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.tls_echo", *map(str, args)],
        cwd=_harness.REPO, env=_harness._env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def measure(loop: str, size: int, certdir: str) -> dict:
    loop_cpu, helper_cpu = _harness.cpus()
    pin = [] if loop_cpu is None else ["--cpu", loop_cpu]
    server = _popen("server", loop, certdir, *pin)
    try:
        line = server.stdout.readline()
        if not line:
            return {"error": f"server: {server.stderr.read().strip()[-300:]}"}
        info = json.loads(line)
        clock = netbench.cpu_clock(info["pid"])
        cpin = [] if helper_cpu is None else ["--cpu", helper_cpu]
        client = _popen("client", info["port"], certdir, size, CONNS, _seconds(), *cpin)
        try:
            marks = {}
            result = None
            for out in client.stdout:
                msg = json.loads(out)
                if "window" in msg:
                    marks[msg["window"]] = time.clock_gettime(clock)
                else:
                    result = msg
            client.wait(timeout=30)
            if result is None or len(marks) != 2:
                return {"error": f"client: {client.stderr.read().strip()[-300:]}"}
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        cpu = marks["end"] - marks["start"]
        return {**result, "cpu": cpu}
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()


def run_matrix():
    loops = _harness.available_loops()
    results = {(size, loop): [] for size in SIZES for loop in loops}
    with tempfile.TemporaryDirectory(prefix="ringloop-tls-bench-") as certdir:
        tls_echo.helpers().make_certs(certdir)
        for _ in range(int(os.environ.get("RINGLOOP_BENCH_REPEATS", "3"))):
            for size in SIZES:
                for loop in loops:  # interleaved
                    results[size, loop].append(measure(loop, size, certdir))
    return loops, results


def report(loops, results) -> str:
    lines = [f"\n## TLS echo, {CONNS} connections, Python TLS client (uvloop) on the "
             f"other CPU; medians of {len(next(iter(results.values())))} runs"]
    lines.append(f"{'size':>7} {'loop':<9} {'req/s':>10} {'server CPU/req':>15}")
    for size in SIZES:
        for loop in loops:
            runs = results[size, loop]
            ok = [r for r in runs if "error" not in r]
            if len(ok) != len(runs):
                lines.append(f"{size // 1024:>5}Ki {loop:<9} FAILED: "
                             f"{next(r['error'] for r in runs if 'error' in r)}")
                continue
            rps = statistics.median(r["requests"] / r["seconds"] for r in ok)
            cpu = statistics.median(r["cpu"] / r["requests"] for r in ok)
            lines.append(f"{size // 1024:>5}Ki {loop:<9} {rps:>10.0f} {cpu * 1e6:>12.1f} µs")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def matrix():
    loops, results = run_matrix()
    print(report(loops, results))
    return results


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1024}KiB")
def test_tls_echo(matrix, size):
    for (sz, loop), runs in matrix.items():
        if sz != size:
            continue
        for r in runs:
            assert "error" not in r, f"{loop}: {r['error']}"
            assert r["requests"] > 0 and r["bad"] == 0, f"{loop}: {r}"


if __name__ == "__main__":
    print(report(*run_matrix()))
