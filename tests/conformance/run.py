#!/usr/bin/env python3
"""CPython test.test_asyncio conformance run for ringloop.

    python tests/conformance/run.py --loop ringloop            # default modules
    python tests/conformance/run.py --loop asyncio --modules locks queues
    python tests/conformance/run.py --compare --json out.json  # asyncio | ringloop
    python tests/conformance/run.py --list                     # known modules

Each module runs in its own worker subprocess (worker.py) with the chosen loop
bound as the default loop factory.  A per-test watchdog ends a worker whose test
runs longer than --test-timeout; a whole-module timeout is the backstop.  When a
worker hangs or dies, the test that was running is re-run alone (with the per-test
timeout) to confirm, recorded as "hang"/"crash", and the tests the worker never
reached are run in a fresh worker -- so one bad test never loses the rest.

Results are checked against known_failures.txt (ringloop side).  Exit status: 0 if
every test passed or is a listed known failure and no listed failure passes; 1
otherwise; 2 if the test suite or the loop is not available.  See README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from modules import DEFAULT_MODULES, MODULES  # noqa: E402

WORKER = os.path.join(HERE, "worker.py")
KNOWN_FAILURES = os.path.join(HERE, "known_failures.txt")
FAILED = ("fail", "error", "hang", "crash")


class Unavailable(Exception):
    """The test suite or the loop under test cannot be used at all."""


# ---------------------------------------------------------------- interpreter

def check_python(python: str) -> dict:
    """Ask the worker interpreter whether its test.test_asyncio is importable."""
    p = subprocess.run([python, WORKER, "--check"], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise Unavailable(f"{python} {WORKER} --check failed:\n{p.stderr}")
    info = json.loads(p.stdout)
    if not info["ok"]:
        raise Unavailable(info["message"])
    return info


def module_available(info: dict, spec) -> bool:
    """Whether the interpreter's own test suite (check_python's `info`) has the
    spec's module; patch releases add modules too (test_staggered: 3.12.x)."""
    name = spec.module.rpartition(".")[2]
    return os.path.exists(os.path.join(info["test_dir"], "test_asyncio", name + ".py"))


# ---------------------------------------------------------------- known failures

def load_known_failures(path: str = KNOWN_FAILURES, python_version: str = "",
                        loop: str = "ringloop") -> dict[str, str]:
    """``test_id [tag ...] # reason`` per line.  Tags restrict an entry: a Python
    version prefix (``3.13``, ``3.11.7``) and/or a loop name (``asyncio``; default
    ``ringloop``).  Returns {test_id: reason} for the given Python and loop."""
    known: dict[str, str] = {}
    if not os.path.exists(path):
        return known
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            body, _, reason = raw.partition("#")
            words = body.split()
            if not words:
                continue
            tid, tags = words[0], words[1:]
            if not reason.strip():
                raise ValueError(f"{path}:{n}: {tid}: a reason after '#' is required")
            versions = [t for t in tags if t[:1].isdigit()]
            loops = [t for t in tags if not t[:1].isdigit()] or ["ringloop"]
            if versions and not any(python_version == v or
                                    python_version.startswith(v + ".")
                                    for v in versions):
                continue
            if loop not in loops:
                continue
            known[tid] = reason.strip()
    return known


# ---------------------------------------------------------------- one module

def _read_events(path):
    events = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:    # torn last line of a killed worker
                    pass
    return events


def _run_worker(python, loop, spec, only, timeout, test_timeout):
    """One worker process.  Returns (events, how, stderr_tail)."""
    fd, out = tempfile.mkstemp(prefix=f"conf-{spec.name}-", suffix=".jsonl")
    os.close(fd)
    cmd = [python, WORKER, "--loop", loop, "--module", spec.name, "--out", out,
           "--test-timeout", str(test_timeout)]
    if only is not None:
        cmd += ["--only", *only]
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    env.pop("PYTHONASYNCIODEBUG", None)   # stock runs don't set it either
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=HERE)
        try:
            rc = proc.wait(timeout)
            how = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            how = "timeout"
        err.seek(0)
        text = err.read()
    events = _read_events(out)
    os.unlink(out)
    if how != "ok" and "Timeout (" in text:
        how = "watchdog"          # faulthandler's per-test timeout fired
    return events, how, text[-6000:]


def run_module(spec, loop: str, python: str = sys.executable,
               test_timeout: float = 30.0, module_timeout: float | None = None,
               only: list[str] | None = None) -> dict:
    """Run one module; never raises for test problems.  Returns a dict with the
    per-test results and the binding counters."""
    t0 = time.monotonic()
    module_timeout = module_timeout or spec.timeout
    res = {"module": spec.name, "loop": loop, "tests": {}, "loops": 0,
           "other_loops": 0, "workers": 0, "notes": [], "fatal": None,
           "partial": only is not None}
    tests = res["tests"]
    planned: list[str] | None = None
    escaped: list[str] = []     # tests that built a loop outside the factory
    while True:
        events, how, tail = _run_worker(python, loop, spec, only,
                                        module_timeout, test_timeout)
        res["workers"] += 1
        started = None
        for ev in events:
            kind = ev["event"]
            if kind == "fatal":
                res["fatal"] = ev["message"]
                break
            if kind == "plan":
                if planned is None:
                    planned = ev["tests"]
                    if ev.get("missing_classes"):
                        res["notes"].append("classes not in this CPython version: "
                                            + ", ".join(ev["missing_classes"]))
                res["python"] = ev["python"]
            elif kind == "start":
                started = ev["id"]
            elif kind == "result":
                tests[ev["id"]] = {k: ev[k] for k in ("outcome", "detail", "time")}
                if ev.get("other_loops"):
                    escaped.append(ev["id"])
                res["loops_partial"] = ev["loops"]
                if ev["id"] == started:
                    started = None
            elif kind == "done":
                res["loops"] += ev["loops"]
                res["other_loops"] += ev["other_loops"]
        if res["fatal"]:
            break
        if any(ev["event"] == "done" for ev in events):
            if res["other_loops"]:
                res["notes"].append(f"{res['other_loops']} loop(s) built outside "
                                    f"the {loop} factory"
                                    + (f", by {', '.join(escaped)}" if escaped else ""))
            break
        # the worker hung or died
        res["loops"] += res.pop("loops_partial", 0)
        kind = "hang" if how in ("timeout", "watchdog") else "crash"
        if started is None:
            tid = f"test_{spec.name}.<module {'teardown' if planned else 'load'}>"
            tests[tid] = {"outcome": kind, "detail": f"worker {how}:\n{tail}",
                          "time": 0}
            break
        # confirm: the culprit alone, with the per-test timeout
        ev2, how2, tail2 = _run_worker(python, loop, spec, [started],
                                       test_timeout + 30, test_timeout)
        res["workers"] += 1
        alone = next((e["outcome"] for e in ev2 if e["event"] == "result"
                      and e["id"] == started), None)
        alone = alone if how2 == "ok" else ("hang" if how2 in ("timeout", "watchdog")
                                            else "crash")
        note = (f"worker {how} in this test; run alone: {alone}"
                + ("" if alone in FAILED else " (order-dependent)"))
        tests[started] = {"outcome": kind, "detail": f"{note}\n{tail}", "time": None}
        res["notes"].append(f"{started}: {note}")
        if planned is None:
            break
        only = [t for t in planned if t not in tests]
        if not only:
            break
    res.pop("loops_partial", None)
    res["elapsed"] = round(time.monotonic() - t0, 2)
    counts = {k: 0 for k in ("run", "pass", "fail", "error", "skip", "hang", "crash")}
    for r in tests.values():
        counts[r["outcome"]] += 1
        counts["run"] += r["outcome"] != "skip"
    res["counts"] = counts
    return res


def evaluate(res: dict, known: dict[str, str]) -> dict:
    """Split a module's failures into known / unexpected; find known failures that
    now pass (stale entries) and the binding check."""
    prefix = MODULES[res["module"]].id_prefix
    failed = {t for t, r in res["tests"].items() if r["outcome"] in FAILED}
    passed = {t for t, r in res["tests"].items() if r["outcome"] == "pass"}
    # several specs may share one test module (events, events_core): an entry
    # is this spec's if its class ran here
    classes = {t.split(".")[1] for t in res["tests"] if t.count(".") >= 2}
    mine = {t for t in known if t.startswith(prefix)
            and (t.count(".") < 2 or t.split(".")[1] in classes)}
    ev = {
        "unexpected": sorted(failed - mine),
        "known": sorted(failed & mine),
        "stale": sorted(passed & mine),
        # listed but not run at all: renamed/removed test, or needs a version tag
        "absent": (sorted(mine - set(res["tests"]))
                   if res["tests"] and not res.get("partial") else []),
        "binding_ok": res["loops"] > 0 or not res["tests"],
    }
    ev["ok"] = (not res["fatal"] and not ev["unexpected"] and not ev["stale"]
                and not ev["absent"] and ev["binding_ok"])
    return ev


# ---------------------------------------------------------------- report

def _row(res, ev):
    if res is None:
        return ["-"] * 8
    c = res["counts"]
    bad = c["fail"] + c["error"] + c["hang"] + c["crash"]
    return [str(c["run"]), str(c["pass"]), str(c["fail"]),
            str(c["error"] + c["hang"] + c["crash"]), str(c["skip"]),
            f"{len(ev['known'])}" if bad or ev["known"] else "0",
            str(res["loops"]) + ("" if ev["binding_ok"] else "!"),
            f"{res['elapsed']:.1f}"]


def print_table(modules, loops, results, evals, out=sys.stdout):
    cols = ["run", "pass", "fail", "err", "skip", "known", "loops", "sec"]
    rows = []
    for m in modules:
        rows.append([m] + [v for lp in loops
                           for v in _row(results.get((lp, m)), evals.get((lp, m)))])
    tot = ["TOTAL"]
    for i in range(len(loops)):
        for j, c in enumerate(cols):
            vals = [r[1 + i * len(cols) + j] for r in rows if r[1 + i * len(cols) + j] != "-"]
            if c == "sec":
                tot.append(f"{sum(float(v) for v in vals):.1f}")
            else:
                tot.append(str(sum(int(v.rstrip("!")) for v in vals)))
    head = ["module"] + cols * len(loops)
    widths = [max(len(r[i]) for r in [head] + rows + [tot]) for i in range(len(head))]

    def line(r):
        parts = [r[0].ljust(widths[0])]
        for i in range(len(loops)):
            cells = range(1 + i * len(cols), 1 + (i + 1) * len(cols))
            parts.append(" ".join(r[k].rjust(widths[k]) for k in cells))
        return " | ".join(parts)
    group_w = [len(" ".join("x" * widths[k] for k in
                            range(1 + i * len(cols), 1 + (i + 1) * len(cols))))
               for i in range(len(loops))]
    print(" | ".join([" " * widths[0]] + [lp.center(w) for lp, w in zip(loops, group_w)]),
          file=out)
    print(line(head), file=out)
    rule = "-" * len(line(head))
    print(rule, file=out)
    for r in rows:
        print(line(r), file=out)
    print(rule, file=out)
    print(line(tot), file=out)
    print("(err = errors + hangs + crashes; known = failures listed in "
          "known_failures.txt; loops = loops built by the bound factory, "
          "'!' = none)", file=out)


def print_problems(loops, modules, results, evals, known_by_loop, verbose, out):
    for lp in loops:
        for m in modules:
            res, ev = results.get((lp, m)), evals.get((lp, m))
            if res is None:
                continue
            if res["fatal"]:
                print(f"\n[{lp}] {m}: FATAL: {res['fatal']}", file=out)
                continue
            if not ev["binding_ok"]:
                print(f"\n[{lp}] {m}: BINDING NOT EFFECTIVE: {len(res['tests'])} "
                      f"tests ran but the {lp} factory built no loop "
                      f"({res['other_loops']} other loops)", file=out)
            for t in ev["unexpected"]:
                r = res["tests"][t]
                print(f"\n[{lp}] UNEXPECTED {r['outcome'].upper()}: {t}", file=out)
                detail = r["detail"].strip().splitlines()
                show = detail if verbose else detail[-12:]
                print("    " + "\n    ".join(show), file=out)
            for t in ev["stale"]:
                print(f"\n[{lp}] KNOWN FAILURE NOW PASSES (remove it from "
                      f"known_failures.txt): {t}  # {known_by_loop[lp][t]}", file=out)
            for t in ev["absent"]:
                print(f"\n[{lp}] KNOWN FAILURE NOT RUN (renamed? add a version "
                      f"tag?): {t}", file=out)
            for n in res["notes"]:
                print(f"[{lp}] note: {n}", file=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop", choices=["ringloop", "asyncio"], default="ringloop")
    ap.add_argument("--compare", action="store_true",
                    help="run asyncio and ringloop, side by side")
    ap.add_argument("--modules", nargs="+", metavar="NAME",
                    help="module names without test_ (comma or space separated); "
                         "'all' = every known module; default: "
                         + " ".join(DEFAULT_MODULES))
    ap.add_argument("--tests", nargs="+", metavar="ID",
                    help="run only these tests (ids like test_locks.LockTests."
                         "test_repr; a class or module prefix works too)")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the workers (default: this one)")
    ap.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--test-timeout", type=float, default=30.0)
    ap.add_argument("--module-timeout", type=float, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--list", action="store_true", help="list known modules")
    args = ap.parse_args(argv)

    if args.list:
        for s in MODULES.values():
            how = "policy" if s.policy else ""
            how += (" + " if how and s.mixins else "") + (
                "mixins " + ",".join(m.hook for m in s.mixins) if s.mixins else "")
            how += f"patch:{s.patch}" if s.patch else ""
            print(f"{s.name:16} {'default' if s.default else '       '}  {how}")
        return 0

    names = []
    only_by_module: dict[str, list[str]] = {}
    for t in args.tests or ():
        m = t.split(".")[0].removeprefix("test_")
        only_by_module.setdefault(m, []).append(t)
    for item in args.modules or (list(only_by_module) or DEFAULT_MODULES):
        names += [n for n in item.split(",") if n]
    if names == ["all"]:
        names = list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        ap.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    loops = ["asyncio", "ringloop"] if args.compare else [args.loop]

    try:
        info = check_python(args.python)
    except Unavailable as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    pyver = info["python"]
    specs = [MODULES[n] for n in names]
    skipped = [s.name for s in specs if not module_available(info, s)]
    specs = [s for s in specs if module_available(info, s)]
    print(f"Python {pyver} ({args.python}); test suite {info['test_dir']}/test_asyncio")
    if skipped:
        print(f"not in CPython {pyver}'s test suite: {', '.join(skipped)}")

    known_by_loop = {lp: load_known_failures(python_version=pyver, loop=lp)
                     for lp in loops}
    results, evals = {}, {}
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as ex:
        futs = {ex.submit(run_module, s, lp, args.python, args.test_timeout,
                          args.module_timeout, only_by_module.get(s.name)): (lp, s.name)
                for lp in loops for s in specs}
        for f in concurrent.futures.as_completed(futs):
            key = futs[f]
            results[key] = f.result()
            evals[key] = evaluate(results[key], known_by_loop[key[0]])
    wall = time.monotonic() - t0

    fatal = {r["fatal"] for r in results.values() if r["fatal"]}
    modules = [s.name for s in specs]
    print()
    print_table(modules, loops, results, evals)
    print(f"wall time {wall:.1f}s, {args.jobs} job(s)")
    print_problems(loops, modules, results, evals, known_by_loop, args.verbose,
                   sys.stdout)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": pyver, "executable": args.python, "loops": loops,
                       "wall": round(wall, 2),
                       "results": [dict(results[k], **{"eval": evals[k]})
                                   for k in sorted(results)]}, f, indent=1)
    if fatal:
        return 2
    return 0 if all(e["ok"] for e in evals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
