"""Debug mode: set_debug/get_debug, PYTHONASYNCIODEBUG / -X dev, slow callback
warnings, the debug-only thread check, coroutine origin tracking."""

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest


def _env_debug_default():
    return sys.flags.dev_mode or bool(os.environ.get("PYTHONASYNCIODEBUG"))


def test_set_get_debug(loop):
    assert loop.get_debug() is _env_debug_default()
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_set_debug_truthy_values(loop):
    loop.set_debug(1)
    assert loop.get_debug()
    loop.set_debug(0)
    assert not loop.get_debug()


def test_debug_mode_future_source_traceback(loop):
    loop.set_debug(True)
    fut = loop.create_future()
    assert fut._source_traceback  # Future.__init__ asks loop.get_debug()
    loop.set_debug(False)
    fut2 = loop.create_future()
    assert not fut2._source_traceback
    fut.cancel()
    fut2.cancel()


def test_debug_mode_coroutine_origin_tracking(loop):
    assert sys.get_coroutine_origin_tracking_depth() == 0
    loop.set_debug(True)
    seen = []

    async def main():
        seen.append(sys.get_coroutine_origin_tracking_depth())

    loop.run_until_complete(main())
    assert seen[0] > 0
    assert sys.get_coroutine_origin_tracking_depth() == 0


def _loop_expr(loop_kind):
    return "asyncio.new_event_loop()" if loop_kind == "asyncio" else "ringloop.new_event_loop()"


@pytest.mark.parametrize(
    "how",
    [
        ("env", {"PYTHONASYNCIODEBUG": "1"}, []),
        ("devmode", {}, ["-X", "dev"]),
        ("off", {}, []),
    ],
    ids=lambda h: h[0],
)
def test_debug_from_environment_in_subprocess(loop_kind, loop_factory, how):
    name, extra_env, flags = how
    code = textwrap.dedent(
        f"""
        import asyncio
        {"import ringloop" if loop_kind == "ringloop" else ""}
        loop = {_loop_expr(loop_kind)}
        try:
            print(type(loop).__name__, loop.get_debug())
        finally:
            loop.close()
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env.pop("PYTHONDEVMODE", None)
    env.update(extra_env)
    proc = subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    cls_name, debug = proc.stdout.split()
    assert cls_name == ("EventLoop" if loop_kind == "ringloop" else "_UnixSelectorEventLoop")
    assert debug == ("False" if name == "off" else "True")


def test_slow_callback_duration_attribute(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.5
    assert loop.slow_callback_duration == 0.5


def test_slow_callback_warning_in_debug(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow():
        time.sleep(0.05)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(slow)
        loop.run_until_complete(asyncio.sleep(0))
    warnings = [
        r
        for r in caplog.records
        if r.name == "asyncio" and r.levelno == logging.WARNING and "Executing" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "took" in warnings[0].getMessage()
    assert "seconds" in warnings[0].getMessage()


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.set_debug(False)
    loop.slow_callback_duration = 0.001

    def slow():
        time.sleep(0.02)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(slow)
        loop.run_until_complete(asyncio.sleep(0))
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


def _call_from_other_thread(loop, fn):
    """Run fn() in a helper thread while ``loop`` runs; return what it raised."""
    out = {}

    def worker():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            out["exc"] = exc
        else:
            out["exc"] = None
        finally:
            loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=worker)
    loop.call_soon(th.start)
    loop.run_forever()
    th.join()
    return out["exc"]


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_debug_thread_check(loop, method):
    loop.set_debug(True)
    calls = []
    args = {
        "call_soon": (calls.append, "x"),
        "call_later": (0, calls.append, "x"),
        "call_at": (0, calls.append, "x"),
    }[method]
    exc = _call_from_other_thread(loop, lambda: getattr(loop, method)(*args))
    assert isinstance(exc, RuntimeError)
    assert "Non-thread-safe operation" in str(exc)
    loop.run_until_complete(asyncio.sleep(0.001))
    assert calls == []


def test_debug_call_soon_threadsafe_allowed_from_thread(loop):
    loop.set_debug(True)
    calls = []
    exc = _call_from_other_thread(loop, lambda: loop.call_soon_threadsafe(calls.append, "y"))
    assert exc is None
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["y"]


def test_debug_mode_run_works(loop):
    loop.set_debug(True)

    async def main():
        await asyncio.sleep(0.001)
        t = asyncio.ensure_future(asyncio.sleep(0, "v"))
        return await t

    assert loop.run_until_complete(main()) == "v"


def test_debug_callback_error_has_source_traceback(loop, exc_contexts):
    loop.set_debug(True)

    def bad():
        raise ValueError("dbg")

    h = loop.call_soon(bad)  # the line the traceback must point at
    loop.run_until_complete(asyncio.sleep(0))
    assert len(exc_contexts) == 1
    ctx = exc_contexts.pop()
    assert ctx["handle"] is h
    tb = ctx["source_traceback"]
    assert tb, "debug mode records where the handle was created"
    last = tb[-1]
    assert last.filename == __file__
    assert "loop.call_soon(bad)" in last.line


def test_set_debug_while_running(loop):
    seen = []

    async def main():
        lp = asyncio.get_running_loop()
        seen.append(sys.get_coroutine_origin_tracking_depth())
        lp.set_debug(True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append((lp.get_debug(), sys.get_coroutine_origin_tracking_depth()))
        lp.set_debug(False)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append((lp.get_debug(), sys.get_coroutine_origin_tracking_depth()))

    loop.set_debug(False)
    loop.run_until_complete(main())
    assert seen[0] == 0
    assert seen[1][0] is True and seen[1][1] > 0
    assert seen[2] == (False, 0)
    assert sys.get_coroutine_origin_tracking_depth() == 0
