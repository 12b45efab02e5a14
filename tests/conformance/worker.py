"""Runs ONE module of CPython's test.test_asyncio in this process, bound to one loop.

Started by run.py as a subprocess (one per module, so a hang or a crash costs only
that module).  Writes one JSON object per line to --out, flushed as it goes, so the
parent can tell which test was running when the process hung or died:

  {"event": "plan", "python": "3.13.0", "tests": [ids...]}
  {"event": "start", "id": ...}
  {"event": "result", "id": ..., "outcome": "pass|fail|error|skip", "detail": ..., "loops": N}
  {"event": "done", "loops": N, "other_loops": K, "elapsed": s}

A per-test watchdog (faulthandler.dump_traceback_later(exit=True)) kills the process
when one test runs longer than --test-timeout, after dumping every thread's stack
to stderr.

Test ids are unittest ids without the "test.test_asyncio." prefix,
e.g. "test_locks.LockTests.test_acquire".

    python worker.py --check             # is test.test_asyncio importable here?
    python worker.py --loop ringloop --module locks --out f.jsonl [--only ID ...]
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib
import json
import os
import re
import sys
import sysconfig
import threading
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modules import MODULES, PATCHES  # noqa: E402

PREFIX = "test.test_asyncio."


# ---------------------------------------------------------------- test package

def testsuite_package_name() -> str:
    return f"libpython{sys.version_info[0]}.{sys.version_info[1]}-testsuite"


def check_test_package() -> dict:
    """Is the interpreter's own ``test.test_asyncio`` importable?"""
    ver = ".".join(map(str, sys.version_info[:3]))
    info = {"python": ver, "executable": sys.executable, "ok": False}
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    try:
        import test
        import test.support  # noqa: F401
        import test.test_asyncio.utils  # noqa: F401
    except ImportError as e:
        info["message"] = (
            f"CPython's test suite (test.test_asyncio) is not installed for "
            f"{sys.executable} (Python {ver}): {e}.\n"
            f"  Debian/Ubuntu: apt-get install {testsuite_package_name()}\n"
            f"  Fedora/RHEL:   dnf install python3-test\n"
            f"  (pyenv and python.org builds ship it.)")
        return info
    test_dir = os.path.realpath(os.path.dirname(test.__file__))
    info["test_dir"] = test_dir
    if os.path.dirname(test_dir) != stdlib:
        info["message"] = (
            f"'test' resolves to {test_dir}, not to the interpreter's own "
            f"{stdlib}/test: another package named 'test' shadows CPython's test "
            f"suite (check sys.path / the current directory).")
        return info
    info["ok"] = True
    return info


# ---------------------------------------------------------------- loop binding

class Binding:
    """Counts the loops the factory builds, and loops built any other way."""

    def __init__(self, loop_name: str):
        self.loop_name = loop_name
        self.loops = 0
        self.other_loops = 0
        self._tls = threading.local()
        if loop_name == "ringloop":
            import ringloop
            base = ringloop.new_event_loop
        elif loop_name == "asyncio":
            # stand-in: the stock loop, constructed directly (never through the
            # policy, which is what we patch)
            base = asyncio.SelectorEventLoop
        else:
            raise SystemExit(f"unknown loop {loop_name!r}")
        self._base = base

        def factory():
            if getattr(self._tls, "inside", False):
                raise RuntimeError(
                    f"{loop_name} loop factory re-entered itself: it must construct "
                    f"the loop directly, not call asyncio.new_event_loop()")
            self._tls.inside = True
            try:
                loop = base()
            finally:
                self._tls.inside = False
            self.loops += 1
            return loop
        self.factory = factory

        # Loops that reach BaseEventLoop.__init__ outside the factory (TestLoop,
        # explicit SelectorEventLoop(), ...) are "other" loops: tests that escaped
        # the binding.
        orig_init = asyncio.base_events.BaseEventLoop.__init__
        binding = self

        def __init__(loop_self, *a, **kw):
            if not getattr(binding._tls, "inside", False):
                binding.other_loops += 1
            orig_init(loop_self, *a, **kw)
        asyncio.base_events.BaseEventLoop.__init__ = __init__

    def install(self) -> None:
        """Make the default policy build our loop.

        asyncio.new_event_loop(), asyncio.run(), asyncio.Runner() without
        loop_factory and IsolatedAsyncioTestCase (loop_factory None) all end in
        ``DefaultEventLoopPolicy.new_event_loop()`` → ``self._loop_factory()``
        (events.BaseDefaultEventLoopPolicy, 3.11-3.14).  The subclass
        unix_events._UnixDefaultEventLoopPolicy overrides the class attribute
        with _UnixSelectorEventLoop, so that is the class to patch.  A class
        attribute survives the ``asyncio.set_event_loop_policy(None)`` every test
        module calls in tearDownModule.
        """
        if sys.platform == "win32":
            raise SystemExit("the conformance run is for Linux")
        policy_cls = asyncio.unix_events._UnixDefaultEventLoopPolicy
        policy_cls._loop_factory = staticmethod(self.factory)
        # self-test: a fresh default policy must hand out our loop
        asyncio.set_event_loop_policy(None)
        before = self.loops
        loop = asyncio.get_event_loop_policy().new_event_loop()
        loop.close()
        asyncio.set_event_loop_policy(None)
        if self.loops != before + 1:
            raise SystemExit("binding failed: the default policy did not call the "
                             "loop factory")
        self.loops = before

    def bind_isolated_cases(self, module) -> None:
        """On 3.13+ an IsolatedAsyncioTestCase with its own ``loop_factory``
        bypasses the policy; point such classes at our factory.  Classes with
        loop_factory None are left alone: they reach the policy, and Runner then
        also calls set_event_loop() as in stock runs."""
        for obj in vars(module).values():
            if (isinstance(obj, type)
                    and issubclass(obj, unittest.IsolatedAsyncioTestCase)
                    and getattr(obj, "loop_factory", None) is not None):
                obj.loop_factory = staticmethod(self.factory)


def _resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def select_classes(spec, module, binding) -> list[type]:
    classes = []
    if spec.patch:
        PATCHES[spec.patch](module, binding.factory)
    if spec.policy or spec.patch:
        if spec.classes is None:
            found = [obj for obj in vars(module).values()
                     if isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                     and obj.__module__ == module.__name__]
            classes.extend(sorted(found, key=lambda c: c.__name__))
        else:
            # a class may not exist in every CPython version; the parent notes it
            classes.extend(getattr(module, name) for name in spec.classes
                           if hasattr(module, name))
    for mx in spec.mixins:
        bases = tuple(_resolve(module, b) for b in mx.bases)

        def hook(self, _f=binding.factory):
            return _f()
        cls = type(mx.name, bases, {mx.hook: hook, "__module__": module.__name__,
                                    "__qualname__": mx.name})
        setattr(module, mx.name, cls)
        classes.append(cls)
    return classes


# ---------------------------------------------------------------- results

def short_id(test) -> str:
    tid = test.id()
    # unittest's _ErrorHolder: "setUpClass (test.test_asyncio.test_x.Cls)"
    m = re.fullmatch(r"(\w+) \((.*)\)", tid)
    if m:
        tid = f"{m.group(2)}.<{m.group(1)}>"
    return tid[len(PREFIX):] if tid.startswith(PREFIX) else tid


class StreamResult(unittest.TestResult):
    _RANK = {"skip": 0, "pass": 1, "fail": 2, "error": 3}

    def __init__(self, out, binding, test_timeout):
        super().__init__()
        self.out = out
        self.binding = binding
        self.test_timeout = test_timeout
        self._cur = None

    def emit(self, **rec):
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    @staticmethod
    def _fmt(err, limit=6000):
        text = "".join(traceback.format_exception(*err))
        return text if len(text) <= limit else text[:1500] + "\n...\n" + text[-4000:]

    # per test
    def startTest(self, test):
        super().startTest(test)
        self._cur = {"id": short_id(test), "outcome": None, "detail": "",
                     "t0": time.monotonic(), "other0": self.binding.other_loops}
        self.emit(event="start", id=self._cur["id"])
        if self.test_timeout:
            faulthandler.dump_traceback_later(self.test_timeout, exit=True)

    def stopTest(self, test):
        if self.test_timeout:
            faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)
        cur, self._cur = self._cur, None
        if cur is None:
            return
        self.emit(event="result", id=cur["id"], outcome=cur["outcome"] or "pass",
                  detail=cur["detail"], loops=self.binding.loops,
                  other_loops=self.binding.other_loops - cur["other0"],
                  time=round(time.monotonic() - cur["t0"], 3))

    def _set(self, test, outcome, detail=""):
        if self._cur is None or short_id(test) != self._cur["id"]:
            # class/module fixture error (_ErrorHolder) or a stray report
            self.emit(event="result", id=short_id(test), outcome=outcome, detail=detail,
                      loops=self.binding.loops, time=0)
            return
        if (self._cur["outcome"] is None
                or self._RANK[outcome] > self._RANK[self._cur["outcome"]]):
            self._cur["outcome"] = outcome
        if detail:
            self._cur["detail"] = (self._cur["detail"] + "\n" + detail).strip()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail", self._fmt(err))

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "error", self._fmt(err))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "pass", "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "fail", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(test, kind, f"{subtest.id()}:\n" + self._fmt(err))


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--loop", choices=["ringloop", "asyncio"])
    ap.add_argument("--module")
    ap.add_argument("--out")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--test-timeout", type=float, default=30.0)
    args = ap.parse_args(argv)

    if args.check:
        print(json.dumps(check_test_package()))
        return 0

    faulthandler.enable()
    info = check_test_package()
    out = open(args.out, "a", buffering=1)
    if not info["ok"]:
        out.write(json.dumps({"event": "fatal", "message": info["message"]}) + "\n")
        return 3
    spec = MODULES[args.module]
    try:
        binding = Binding(args.loop)
        binding.install()
    except BaseException as e:
        out.write(json.dumps({"event": "fatal", "message":
                              f"cannot bind {args.loop}: {e!r}\n"
                              + traceback.format_exc()}) + "\n")
        return 3

    result = StreamResult(out, binding, args.test_timeout)
    loader = unittest.TestLoader()
    try:
        module = importlib.import_module(spec.module)
        binding.bind_isolated_cases(module)
        classes = select_classes(spec, module, binding)
        if args.only:
            suite = loader.loadTestsFromNames([PREFIX + t for t in args.only])
        else:
            suite = unittest.TestSuite(loader.loadTestsFromTestCase(c)
                                       for c in classes)
    except BaseException:
        result.emit(event="result", id=f"test_{spec.name}.<load>", outcome="error",
                    detail=traceback.format_exc(), loops=binding.loops, time=0)
        result.emit(event="done", loops=binding.loops,
                    other_loops=binding.other_loops, elapsed=0)
        return 1

    def ids(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from ids(t)
            else:
                yield short_id(t)
    missing = [n for n in spec.classes or () if not hasattr(module, n)]
    result.emit(event="plan", python=info["python"], tests=list(ids(suite)),
                missing_classes=missing)
    t0 = time.monotonic()
    suite.run(result)
    result.emit(event="done", loops=binding.loops, other_loops=binding.other_loops,
                elapsed=round(time.monotonic() - t0, 3))
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
