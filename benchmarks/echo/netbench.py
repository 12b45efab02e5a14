"""Network benchmark harness: the echo matrix and HTTP/1.1 under wrk (see benchmarks/README.md).

Same method as the rest of benchmarks/: every measurement starts a fresh server process
(``python -m benchmarks.echo.servers MODE LOOP``, or the C ceiling server) pinned to the
loop CPU, drives it from the other CPU, and stops it; loops are interleaved A B C A B C
for N repeats and medians are reported. Speed is never asserted: ``problems()`` lists
only runs that failed or did the work wrong.

Echo: ``loadgen`` (C, epoll, built on demand into build/bench/) keeps one message of S
bytes in flight on each of N connections and checks every echoed byte. After a warm-up it
measures a window of T seconds and, over exactly that window, reads the server's CPU
clock (``clock_getcpuclockid``: user+sys of all its threads) and its own.
HTTP: wrk (one thread, pinned) against a keep-alive server; the server's CPU clock is read
around the measured wrk run, after a response check and a warm-up wrk run.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _harness

HERE = Path(__file__).resolve().parent
BUILD_DIR = _harness.REPO / "build" / "bench"
CC_FLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
NATIVE = {  # binary -> (source, link flags)
    "loadgen": ("loadgen.c", []),
    "ceiling": ("ceiling.c", ["-luring"]),
}
CEILING = "ceiling"  # the C io_uring echo server's column
STALL_SECONDS = 5.0  # loadgen gives up when no echo completes for this long
STARTUP_TIMEOUT = 30.0  # a server must be listening within this
CLIENT_BOUND = 0.95  # load generator this busy while the server is not: the client limits


class BuildError(RuntimeError):
    pass


# --- configuration (environment) ---------------------------------------------------


def _env_list(var: str, default: str) -> list[str]:
    return [x.strip() for x in os.environ.get(var, default).split(",") if x.strip()]


def _size(text: str) -> int:
    text = text.lower().removesuffix("b").removesuffix("i")
    mult = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def _env_float(var: str, default: float) -> float:
    return float(os.environ.get(var, default))


def _seconds(var: str, default: float, floor: float) -> float:
    """A duration from VAR; unset, the default shrunk by RINGLOOP_BENCH_SCALE (< 1 for a
    smoke run), never below floor."""
    if var in os.environ:
        return float(os.environ[var])
    scale = min(1.0, float(os.environ.get("RINGLOOP_BENCH_SCALE", "1")))
    return max(floor, default * scale)


def repeats() -> int:
    """RINGLOOP_BENCH_REPEATS; 3 when unset (keeps the full echo matrix within ~6 min)."""
    return max(1, int(os.environ.get("RINGLOOP_BENCH_REPEATS", "3")))


def loops_selected() -> list[str]:
    """The Python loops to run (RINGLOOP_BENCH_LOOPS, installed ones)."""
    return _harness.available_loops()


def ceiling_selected() -> bool:
    wanted = os.environ.get("RINGLOOP_BENCH_LOOPS")
    return wanted is None or CEILING in wanted.split(",")


def echo_modes() -> list[str]:
    return _env_list("RINGLOOP_BENCH_ECHO_MODES", "streams,protocol,buffered,sock")


def echo_sizes() -> list[int]:
    return [_size(s) for s in _env_list("RINGLOOP_BENCH_ECHO_SIZES", "1k,10k,100k")]


def echo_conns() -> list[int]:
    return [int(c) for c in _env_list("RINGLOOP_BENCH_ECHO_CONNS", "1,10,100")]


def unix_sockets() -> bool:
    return os.environ.get("RINGLOOP_BENCH_ECHO_UNIX", "") not in ("", "0")


def cpus() -> tuple[int | None, int | None]:
    """(server cpu, load generator cpu); None where pinning is off."""
    return _harness.cpus()


def fmt_size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


# --- native helpers -----------------------------------------------------------------


def build(name: str) -> Path:
    """Compile benchmarks/echo/NAME.c into build/bench/NAME unless already up to date.
    Concurrent runs take turns (flock); the binary is replaced atomically."""
    src_name, libs = NATIVE[name]
    src = HERE / src_name
    out = BUILD_DIR / name
    digest = hashlib.sha256(src.read_bytes() + " ".join(CC_FLAGS + libs).encode()).hexdigest()
    stamp = BUILD_DIR / f"{name}.sha256"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists() and stamp.exists() and stamp.read_text() == digest:
            return out
        cc = os.environ.get("CC", "cc")
        tmp = out.with_name(f".{name}.{os.getpid()}")
        cmd = [cc, *CC_FLAGS, "-o", str(tmp), str(src), *libs]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"{' '.join(cmd)}: {exc}") from exc
        if proc.returncode != 0:
            hint = " (liburing's headers: apt-get install liburing-dev)" if libs else ""
            raise BuildError(f"{' '.join(cmd)} failed{hint}:\n{proc.stderr.strip()}")
        os.replace(tmp, out)
        stamp.write_text(digest)
    return out


_libc = ctypes.CDLL(None, use_errno=True)


def cpu_clock(pid: int) -> int:
    """A clock id reading process PID's CPU time (user+sys, all threads, ns resolution)."""
    clk = ctypes.c_int()
    err = _libc.clock_getcpuclockid(pid, ctypes.byref(clk))
    if err:
        raise OSError(err, f"clock_getcpuclockid({pid}): {os.strerror(err)}")
    return clk.value


def proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) in seconds from /proc/PID/stat (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def machine_busy() -> float:
    """Non-idle CPU seconds of all CPUs since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def wait_idle() -> None:
    """RINGLOOP_BENCH_WAIT_IDLE=S (default 0: off): before a measurement, wait up to S
    seconds for the machine to be idle (other processes using < 15 % of a CPU over
    0.1 s), so another user's burst on a shared machine does not land in a window."""
    limit = _env_float("RINGLOOP_BENCH_WAIT_IDLE", 0)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0 = machine_busy()
        time.sleep(0.1)
        if machine_busy() - b0 < 0.015:
            return
        time.sleep(0.4)


def measure_quietly(measure, *args) -> dict:
    """measure(*args); with RINGLOOP_BENCH_WAIT_IDLE set, also measure again (up to 3
    attempts in all) while other processes used > 10 % of a CPU during the window, and
    keep the attempt they disturbed least."""
    result = measure(*args)
    if _env_float("RINGLOOP_BENCH_WAIT_IDLE", 0) <= 0:
        return result
    for _ in range(2):
        if "error" in result or result.get("other_busy", 0) <= 0.10:
            break
        again = measure(*args)
        if "error" in again or again.get("other_busy", 0) < result["other_busy"]:
            result = again
    return result


class Server:
    """One benchmark server process; a context manager that always stops it."""

    def __init__(self, argv: list[str]):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv, cwd=_harness.REPO, env=_harness._env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr)
        self._buf = b""

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _read_line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:  # EOF: the process is gone
                    break
                self._buf += chunk
        if b"\n" not in self._buf:
            line, self._buf = self._buf, b""
            return line.decode(errors="replace") or None
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def ready(self, timeout: float = STARTUP_TIMEOUT) -> dict:
        """The server's first stdout line: {"port", "pid"} or {"error", "type"}."""
        line = self._read_line(timeout)
        if line is None:
            rc = self.proc.poll()
            what = "did not start listening" if rc is None else f"exited ({rc})"
            return {"error": f"server {what}: {self.stderr_tail()}".rstrip(": ")}
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {"error": f"server said: {line[:200]} {self.stderr_tail()}"}

    def late_error(self) -> dict | None:
        """An error the server reported while serving (it then exits at once)."""
        while True:
            line = self._read_line(0.5 if self.proc.poll() is not None else 0.05)
            if line is None:
                return None
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "error" in msg:
                return msg

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()


def python_server_argv(mode: str, loop: str, max_seconds: float) -> list[str]:
    server_cpu, _ = cpus()
    argv = [sys.executable, "-m", "benchmarks.echo.servers", mode, loop,
            "--max-seconds", f"{max_seconds:.0f}"]
    if server_cpu is not None:
        argv += ["--cpu", str(server_cpu)]
    return argv


def _classify(info: dict) -> dict:
    """An error dict with a status: "not implemented", "not installed" or "failed"."""
    kind = info.get("type")
    status = {"NotImplementedError": "not implemented",
              "ModuleNotFoundError": "not installed"}.get(kind, "failed")
    return {"error": info["error"], "status": status}


def _unix_path(tag: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"ringloop-bench-{os.getpid()}-{tag}.sock")


# --- echo ---------------------------------------------------------------------------


def measure_echo(server: str, mode: str, size: int, conns: int, window: float,
                 warmup: float) -> dict:
    """One fresh server (a Python loop in `mode`, or the C ceiling), one loadgen run."""
    server_cpu, client_cpu = cpus()
    max_seconds = warmup + window + STALL_SECONDS + 30
    unix = _unix_path("echo") if unix_sockets() and mode != "udp" else None
    try:
        loadgen = build("loadgen")
        if server == CEILING:
            argv = [str(build("ceiling")), "--max-seconds", f"{max_seconds:.0f}"]
            if server_cpu is not None:
                argv += ["--cpu", str(server_cpu)]
        else:
            argv = python_server_argv(mode, server, max_seconds)
    except BuildError as exc:
        return {"error": str(exc).splitlines()[0], "status": "failed", "detail": str(exc)}
    if unix:
        argv += ["--unix", unix]
    wait_idle()
    try:
        with Server(argv) as srv:
            info = srv.ready()
            if "error" in info:
                return _classify(info)
            cmd = [str(loadgen), "--conns", str(conns), "--size", str(size),
                   "--warmup", str(warmup), "--seconds", str(window),
                   "--server-pid", str(info["pid"]), "--stall", str(STALL_SECONDS),
                   "--cpu", str(-1 if client_cpu is None else client_cpu)]
            cmd += ["--unix", unix] if unix else ["--port", str(info["port"])]
            if mode == "udp":
                cmd += ["--udp", "1"]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      timeout=warmup + window + STALL_SECONDS + 30)
                out = proc.stdout.strip().splitlines()
                res = json.loads(out[-1]) if out else {
                    "error": f"loadgen exit status {proc.returncode}: {proc.stderr.strip()}"}
            except subprocess.TimeoutExpired:
                res = {"error": "load generator timed out"}
            except json.JSONDecodeError:
                res = {"error": f"loadgen said: {proc.stdout.strip()[-200:]}"}
            late = srv.late_error()
            if late is not None:  # the server's own account of what went wrong
                return _classify(late)
            died = srv.proc.poll()
            if died is not None:  # died without saying why (a crash?)
                how = (f"killed by {signal.Signals(-died).name}" if died < 0
                       else f"exit status {died}")
                return {"error": f"server {how} during the run: {srv.stderr_tail()} "
                                 f"(client: {res.get('error', 'ok')})", "status": "failed"}
            if "error" in res:
                return {"error": res["error"], "status": "failed"}
    finally:
        if unix and os.path.exists(unix):
            os.unlink(unix)
    req, secs = res["requests"], res["seconds"]
    if req <= 0 or res.get("bytes_checked", 0) <= 0:
        return {"error": f"no request completed ({res})", "status": "failed"}
    out = {
        "requests": req, "seconds": secs, "rps": req / secs,
        "cpu_us": res["server_cpu_s"] / req * 1e6,
        "p50_us": res["p50_us"], "p99_us": res["p99_us"],
        "server_busy": res["server_cpu_s"] / secs, "client_busy": res["client_cpu_s"] / secs,
        "bytes_checked": res["bytes_checked"],
    }
    ut, st = res.get("server_utime_s"), res.get("server_stime_s")
    if ut is not None and ut + st > 0:
        out["kernel_share"] = st / (ut + st)
    if "machine_busy_s" in res:  # CPU used by everything else on the machine meanwhile
        other = res["machine_busy_s"] - res["server_cpu_s"] - res["client_cpu_s"]
        out["other_busy"] = max(0.0, other / secs)
    return out


@dataclasses.dataclass
class Matrix:
    """Results of one interleaved run: (mode, size, conns, loop) -> one dict per repeat.
    The C ceiling does not depend on the mode: its key is (CEILING, size, conns, CEILING)."""

    kind: str  # "echo" or "http"
    modes: list[str]
    sizes: list[int]
    conns: list[int]
    loops: list[str]  # Python loops, then CEILING when it ran
    repeats: int
    window: float
    runs: dict[tuple, list[dict]]
    elapsed: float = 0.0

    def key(self, mode: str, size: int, conns: int, loop: str) -> tuple:
        return (CEILING, size, conns, CEILING) if loop == CEILING else (mode, size, conns, loop)

    def cell(self, mode: str, size: int, conns: int, loop: str) -> list[dict]:
        return self.runs.get(self.key(mode, size, conns, loop), [])

    def median(self, mode, size, conns, loop, field) -> float | None:
        runs = self.cell(mode, size, conns, loop)
        vals = [r[field] for r in runs if "error" not in r and field in r]
        return statistics.median(vals) if vals and len(vals) == len(runs) else None

    def status(self, mode, size, conns, loop) -> str | None:
        """None when every repeat succeeded, else what to print instead of numbers."""
        runs = self.cell(mode, size, conns, loop)
        if not runs:
            return "not run"
        errors = [r for r in runs if "error" in r]
        if not errors:
            return None
        first = errors[0]
        if first.get("status") in ("not implemented", "not installed"):
            return first["status"]
        return f"FAILED {len(errors)}/{len(runs)}"


def run_echo(progress=print, modes=None, sizes=None, conns=None,
             ceiling=None) -> Matrix:
    """The echo matrix; modes, sizes, connection counts and whether the C
    ceiling (TCP only) runs default to the RINGLOOP_BENCH_* settings."""
    modes = modes or echo_modes()
    sizes = sizes or echo_sizes()
    conns_list = conns or echo_conns()
    if ceiling is None:
        ceiling = ceiling_selected()
    loops = loops_selected() + ([CEILING] if ceiling else [])
    window = _seconds("RINGLOOP_BENCH_ECHO_SECONDS", 0.5, 0.1)
    warmup = _seconds("RINGLOOP_BENCH_ECHO_WARMUP", 0.2, 0.05)
    m = Matrix("echo", modes, sizes, conns_list, loops, repeats(), window, {})
    build("loadgen")  # fail early and clearly when the client cannot be built
    started = time.monotonic()
    with _partial_on_interrupt(m, started, progress):
        _echo_repeats(m, window, warmup, started, progress)
    m.elapsed = time.monotonic() - started
    return m


@contextlib.contextmanager
def _partial_on_interrupt(m: "Matrix", started: float, progress):
    """On Ctrl-C, print what was measured so far, then let the interrupt through."""
    try:
        yield
    except KeyboardInterrupt:
        m.elapsed = time.monotonic() - started
        progress(f"{m.kind}: interrupted; results so far:\n{detail(m)}\n\n{summary(m)}")
        raise


def _echo_repeats(m: "Matrix", window: float, warmup: float, started: float,
                  progress) -> None:
    modes, loops = m.modes, m.loops
    unsupported: dict[tuple, dict] = {}  # (loop, mode) -> the "not implemented" result
    for rep in range(m.repeats):
        for size in m.sizes:
            for conns in m.conns:
                for mode in modes:
                    for loop in loops:  # interleaved: A B C (ceiling) A B C ...
                        if loop == CEILING and mode != modes[-1]:
                            continue  # one ceiling run per (size, conns), after the modes
                        runs = m.runs.setdefault(m.key(mode, size, conns, loop), [])
                        gate = unsupported.get((loop, mode if loop != CEILING else CEILING))
                        if gate is not None:
                            runs.append(gate)
                            continue
                        if runs and "error" in runs[-1]:
                            continue  # failed once: don't spend more time on it
                        r = measure_quietly(measure_echo, loop, mode, size, conns, window,
                                            warmup)
                        if r.get("status") in ("not implemented", "not installed"):
                            unsupported[(loop, mode if loop != CEILING else CEILING)] = r
                        runs.append(r)
        progress(f"echo: repeat {rep + 1}/{m.repeats} done ({time.monotonic() - started:.0f} s)")


# --- HTTP ---------------------------------------------------------------------------


def http_servers() -> list[str]:
    return [s if s.startswith("http-") else f"http-{s}"
            for s in _env_list("RINGLOOP_BENCH_HTTP_SERVERS", "raw,aiohttp")]


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package when missing and we are root with
    apt-get. Raises RuntimeError with what to do when that is not possible."""
    path = shutil.which("wrk")
    if path:
        return path
    apt = shutil.which("apt-get")
    why = "not root" if os.geteuid() != 0 else "no apt-get" if not apt else None
    if why is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in ([apt, "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                    [apt, "update", "-qq"],
                    [apt, "install", "-y", "-qq", "--no-install-recommends", "wrk"]):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                why = str(exc)
                break
            if cmd[1] == "install" and proc.returncode == 0:
                break
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        path = shutil.which("wrk")
        if path:
            return path
    raise RuntimeError(f"wrk (HTTP load generator) is not installed and could not be "
                       f"installed ({why}); install it: apt-get install wrk")


def _run_with_rusage(cmd: list[str], timeout: float, cpu: int | None):
    """Run cmd; return (exit code, stdout, stderr, CPU seconds it used (user+sys))."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                            preexec_fn=pin)
    deadline = time.monotonic() + timeout
    try:
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(cmd, timeout)
            time.sleep(0.02)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    out.seek(0)
    err.seek(0)
    return (proc.returncode, out.read().decode(errors="replace"),
            err.read().decode(errors="replace"), ru.ru_utime + ru.ru_stime)


def _check_http(port: int) -> str | None:
    """Two requests on one keep-alive connection must get the fixed 200 response."""
    from benchmarks.echo.servers import HTTP_BODY

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or body != HTTP_BODY:
                return f"wrong response: {resp.status} {body[:60]!r}"
            if resp.will_close:
                return "the server does not keep the connection alive"
    except (OSError, http.client.HTTPException) as exc:
        return f"response check failed: {type(exc).__name__}: {exc}"
    finally:
        conn.close()
    return None


def measure_http(mode: str, loop: str, conns: int, seconds: int, warmup: int) -> dict:
    wrk = ensure_wrk()
    _, client_cpu = cpus()
    lua = str(HERE / "wrk_json.lua")
    wait_idle()
    with Server(python_server_argv(mode, loop, warmup + seconds + 60)) as srv:
        info = srv.ready()
        if "error" in info:
            return _classify(info)
        url = f"http://127.0.0.1:{info['port']}/"
        bad = _check_http(info["port"])
        if bad:
            late = srv.late_error()
            return _classify(late) if late else {"error": bad, "status": "failed"}
        timeout = seconds + warmup + 30
        if warmup > 0:
            _run_with_rusage([wrk, "-t1", f"-c{conns}", f"-d{warmup}s", url], timeout, client_cpu)
        clk = cpu_clock(info["pid"])
        ut0, st0 = proc_times(info["pid"])
        mb0, c0 = machine_busy(), time.clock_gettime(clk)
        rc, out, err, wrk_cpu = _run_with_rusage(
            [wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "-s", lua, url], timeout, client_cpu)
        c1, mb1 = time.clock_gettime(clk), machine_busy()
        ut1, st1 = proc_times(info["pid"])
        late = srv.late_error()
        if late is not None:
            return _classify(late)
        died = srv.proc.poll()
        if died is not None:
            how = f"killed by {signal.Signals(-died).name}" if died < 0 else f"exit status {died}"
            return {"error": f"server {how} during the run: {srv.stderr_tail()}",
                    "status": "failed"}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if rc != 0 or not lines:
        return {"error": f"wrk exit status {rc}: {(err or out).strip()[-200:]}", "status": "failed"}
    res = json.loads(lines[-1])
    errors = {k: v for k, v in res["errors"].items() if v}
    if errors or res["requests"] <= 0:
        return {"error": f"wrk saw errors {errors} over {res['requests']} requests",
                "status": "failed"}
    secs = res["duration_us"] / 1e6
    req = res["requests"]
    out = {"requests": req, "seconds": secs, "rps": req / secs,
           "cpu_us": (c1 - c0) / req * 1e6, "p50_us": res["p50_us"], "p99_us": res["p99_us"],
           "server_busy": (c1 - c0) / secs, "client_busy": wrk_cpu / secs}
    if (ut1 - ut0) + (st1 - st0) > 0:
        out["kernel_share"] = (st1 - st0) / ((ut1 - ut0) + (st1 - st0))
    out["other_busy"] = max(0.0, (mb1 - mb0) - (c1 - c0) - wrk_cpu) / secs
    return out


def run_http(progress=print) -> Matrix:
    ensure_wrk()
    modes = http_servers()
    conns = int(os.environ.get("RINGLOOP_BENCH_HTTP_CONNS", "50"))
    seconds = max(1, round(_seconds("RINGLOOP_BENCH_HTTP_SECONDS", 2, 1)))
    warmup = max(0, int(_seconds("RINGLOOP_BENCH_HTTP_WARMUP", 1, 0)))
    loops = loops_selected()
    m = Matrix("http", modes, [0], [conns], loops, repeats(), seconds, {})
    started = time.monotonic()
    with _partial_on_interrupt(m, started, progress):
        _http_repeats(m, seconds, warmup, started, progress)
    m.elapsed = time.monotonic() - started
    return m


def _http_repeats(m: Matrix, seconds: int, warmup: int, started: float, progress) -> None:
    conns = m.conns[0]
    unsupported: dict[tuple, dict] = {}
    for rep in range(m.repeats):
        for mode in m.modes:
            for loop in m.loops:
                runs = m.runs.setdefault(m.key(mode, 0, conns, loop), [])
                if (loop, mode) in unsupported:
                    runs.append(unsupported[(loop, mode)])
                    continue
                if runs and "error" in runs[-1]:
                    continue
                r = measure_quietly(measure_http, mode, loop, conns, seconds, warmup)
                if r.get("status") in ("not implemented", "not installed"):
                    unsupported[(loop, mode)] = r
                runs.append(r)
        progress(f"http: repeat {rep + 1}/{m.repeats} done ({time.monotonic() - started:.0f} s)")


# --- reporting ----------------------------------------------------------------------


def _k(x: float) -> str:
    return f"{x / 1e3:.1f} k" if x >= 1e3 else f"{x:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def problems(m: Matrix, only_mode: str | None = None) -> list[str]:
    """Every run that failed or did the work wrong (never anything about speed), for
    one mode (CEILING: the C ceiling) or all. "not implemented" / "not installed" are
    reported in the tables, not here."""
    found = []
    for (mode, size, conns, loop), runs in m.runs.items():
        if only_mode is not None and mode != only_mode:
            continue
        for r in runs:
            if "error" in r and r.get("status") not in ("not implemented", "not installed"):
                found.append(f"{m.kind} {mode} {fmt_size(size) + ' ' if size else ''}"
                             f"x{conns} on {loop}: {r['error']}")
                break
            if "error" not in r and r["requests"] <= 0:
                found.append(f"{m.kind} {mode} x{conns} on {loop}: no request completed")
                break
    return found


def _why(m: Matrix, mode, size, conns, loop) -> str:
    runs = m.cell(mode, size, conns, loop)
    err = next((r for r in runs if "error" in r), None)
    return err["error"] if err else ""


def detail(m: Matrix) -> str:
    """Per-cell text tables: medians [min–max] and what limited the run."""
    server_cpu, client_cpu = cpus()
    pin = ("unpinned" if server_cpu is None else
           f"server on cpu {server_cpu}, load generator on cpu {client_cpu}")
    client = "loadgen" if m.kind == "echo" else "wrk"
    out = []
    groups = ([(s, c) for s in m.sizes for c in m.conns])
    for size, conns in groups:
        title = (f"echo {fmt_size(size)} x {conns} conn{'s' * (conns != 1)}" if m.kind == "echo"
                 else f"HTTP/1.1 keep-alive, wrk -t1 -c{conns}")
        out.append(f"\n## {title}: {m.repeats} interleaved repeats, {m.window:g} s windows, {pin}")
        out.append("(medians; busy = CPU seconds ÷ window; others = CPU used meanwhile by every "
                   "other process on the machine; kernel = sys share of the server's CPU)")
        first = "mode" if m.kind == "echo" else "server"
        out.append(f"{first:<13}{'loop':<9}{'req/s [min–max]':>24}{'server CPU µs/req':>26}"
                   f"{'p50 µs':>9}{'p99 µs':>9}{'server busy':>12}{client + ' busy':>13}"
                   f"{'others':>8}{'kernel':>8}")
        modes = list(m.modes) + ([CEILING] if CEILING in m.loops else [])
        for mode in modes:
            for loop in (m.loops if mode != CEILING else [CEILING]):
                if loop == CEILING and mode != CEILING:
                    continue
                label = mode if mode != CEILING else "C ceiling"
                st = m.status(mode, size, conns, loop)
                if st:
                    why = _why(m, mode, size, conns, loop)
                    out.append(f"{label:<13}{loop:<9}  {st}{': ' + why if why else ''}"[:240])
                    continue
                runs = m.cell(mode, size, conns, loop)
                rps = [r["rps"] for r in runs]
                cpu = [r["cpu_us"] for r in runs]
                med = lambda f: m.median(mode, size, conns, loop, f)  # noqa: E731
                ks, other = med("kernel_share"), med("other_busy")
                note = ""
                if med("client_busy") >= CLIENT_BOUND and med("server_busy") < 0.9:
                    note = "  client-bound"
                rps_text = f"{_k(statistics.median(rps))} [{_k(min(rps))}–{_k(max(rps))}]"
                out.append(
                    f"{label:<13}{loop:<9}{rps_text:>24}"
                    f"{f'{statistics.median(cpu):.2f} [{min(cpu):.2f}–{max(cpu):.2f}]':>26}"
                    f"{med('p50_us'):>9.0f}{med('p99_us'):>9.0f}"
                    f"{med('server_busy') * 100:>11.0f}%{med('client_busy') * 100:>12.0f}%"
                    f"{'' if other is None else f'{other * 100:.0f}%':>8}"
                    f"{'' if ks is None else f'{ks * 100:.0f}%':>8}{note}")
    return "\n".join(out)


def summary(m: Matrix) -> str:
    """One markdown table: per loop "median req/s, median server CPU µs/req", and ratios."""
    def cell(mode, size, conns, loop) -> str:
        if loop not in m.loops:
            return "not run"
        st = m.status(mode, size, conns, loop)
        if st:
            return st
        rps = m.median(mode, size, conns, loop, "rps")
        cpu = m.median(mode, size, conns, loop, "cpu_us")
        mark = ""
        if (m.median(mode, size, conns, loop, "client_busy") >= CLIENT_BOUND
                and m.median(mode, size, conns, loop, "server_busy") < 0.9):
            mark = " †"
        return f"{_k(rps)}/s, {cpu:.2f} µs{mark}"

    cols = [lp for lp in _harness.LOOPS] + ([CEILING] if m.kind == "echo" else [])
    if m.kind == "echo":
        head = ("| mode | size | conns | asyncio | uvloop | ringloop | C ceiling "
                "| uvloop÷ringloop CPU/req | ringloop÷ceiling CPU/req |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        head = ("| server | conns | asyncio | uvloop | ringloop "
                "| uvloop÷ringloop CPU/req | asyncio÷ringloop CPU/req |\n"
                "|---|---:|---:|---:|---:|---:|---:|")
    rows = [head]
    for size in m.sizes:
        for conns in m.conns:
            for mode in m.modes:
                cpu = {lp: m.median(mode, size, conns, lp, "cpu_us") for lp in cols}
                cells = [cell(mode, size, conns, lp) for lp in cols]
                if m.kind == "echo":
                    rows.append("| " + " | ".join(
                        [mode, fmt_size(size), str(conns), *cells,
                         _ratio(cpu["uvloop"], cpu["ringloop"]),
                         _ratio(cpu["ringloop"], cpu[CEILING])]) + " |")
                else:
                    rows.append("| " + " | ".join(
                        [mode.removeprefix("http-"), str(conns), *cells,
                         _ratio(cpu["uvloop"], cpu["ringloop"]),
                         _ratio(cpu["asyncio"], cpu["ringloop"])]) + " |")
    return "\n".join(rows)


def legend(m: Matrix) -> str:
    server_cpu, client_cpu = cpus()
    client = "loadgen (C, epoll)" if m.kind == "echo" else "wrk -t1"
    lines = [
        f"Cells: median requests/s, median server CPU µs per request (user+sys of the server "
        f"process over the measured window ÷ requests); {m.repeats} interleaved repeats, "
        f"{m.window:g} s windows, fresh server process per measurement, server on cpu "
        f"{server_cpu}, {client} on cpu {client_cpu}.",
        "uvloop÷ringloop CPU/req > 1: ringloop spends less CPU per request than uvloop.",
    ]
    others = [r.get("other_busy", 0) for runs in m.runs.values() for r in runs if "error" not in r]
    busy = [o for o in others if o > 0.10]
    if busy:
        lines.append(f"WARNING: other processes used > 10 % of a CPU during {len(busy)} of "
                     f"{len(others)} measurements (max {max(busy):.0%}): absolute numbers are "
                     f"skewed; compare ratios, or re-run on an idle machine.")
    if m.kind == "echo":
        lines.append("ringloop÷ceiling CPU/req: ringloop's CPU per request over the C io_uring "
                     "echo server's (1.00× = at the ceiling).")
    lines.append(f"† = the load generator was ≥ {CLIENT_BOUND:.0%} busy while the server was "
                 "< 90 % busy (req/s limited by the client; CPU/req still holds).")
    return " ".join(lines)


def print_report(matrix, title: str) -> None:
    """Print a finished matrix: the detail table, then the summary."""
    print(detail(matrix))
    print(f"\n# {title} summary ({matrix.elapsed:.0f} s)\n")
    print(legend(matrix) + "\n")
    print(summary(matrix), flush=True)
