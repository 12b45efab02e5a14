"""C task throughput of the work-stealing scheduler (csrc/core/sched.h), 1 vs 2 workers.

benchmarks/sched/throughput.c runs three workloads, each with empty tasks and with tasks
doing ~200 rounds of arithmetic (about 0.3 us): ``inject`` (independent tasks spawned from
an outside thread), ``chain`` (each task spawns its successor: the LIFO path) and ``tree``
(a binary fan-out tree: LIFO slot, local queue, overflow, steal-half). 1 and 2 workers are
interleaved for RINGLOOP_BENCH_REPEATS repeats; medians of tasks/s and of process CPU per
task are printed, then the same again with a thread spinning beside the runtime (a busy
Python thread). There is no asyncio/uvloop counterpart. The test asserts only that every
task ran exactly once, never anything about speed.
"""

import fcntl
import hashlib
import json
import os
import subprocess

import pytest

from benchmarks import _harness

ROOT = _harness.REPO
SRC = ROOT / "benchmarks" / "sched" / "throughput.c"
BUILD = ROOT / "build" / "bench"
FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
         f"-I{ROOT / 'csrc'}"]


def build() -> str:
    """Builds throughput.c with the core's sources at -O2 (cached by content)."""
    sources = [SRC, *sorted((ROOT / "csrc" / "core").glob("*.c"))]
    headers = sorted((ROOT / "csrc" / "core").glob("*.h"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources + headers)
                            + " ".join(FLAGS).encode()).hexdigest()
    out, stamp = BUILD / "sched-throughput", BUILD / "sched-throughput.sha256"
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out.exists() and stamp.exists() and stamp.read_text() == digest):
            tmp = out.with_name(f".sched-throughput.{os.getpid()}")
            cmd = [os.environ.get("CC", "cc"), *FLAGS, "-o", str(tmp),
                   *map(str, sources), "-luring", "-lpthread", "-lm"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
            os.replace(tmp, out)
            stamp.write_text(digest)
    return str(out)


@pytest.mark.parametrize("busy", [False, True], ids=["alone", "beside-busy-thread"])
def test_sched_throughput(busy):
    binary = build()
    args = [binary, f"--n={_harness.scale(1_000_000)}", f"--repeats={_harness.repeats()}"]
    if busy:
        args.append("--busy")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    title = "beside a spinning thread" if busy else "alone"
    print(f"\nC scheduler throughput, {title} ({os.cpu_count()} cores):")
    print(proc.stdout)
    results = [json.loads(line) for line in proc.stderr.splitlines()
               if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(results) == 14, proc.stderr
