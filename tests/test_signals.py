"""add_signal_handler / remove_signal_handler with asyncio's rules, signals
delivered while the loop sleeps, and Ctrl-C in asyncio.run / ringloop.run (in a
child Python running a small script). Every test runs on asyncio (the spec) and
ringloop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from net_helpers import run

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers can only be installed from the main thread",
)


@pytest.fixture(autouse=True)
def _restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2,
                                               signal.SIGINT, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_handler_runs_in_loop_while_sleeping(loop):
    calls = []

    async def main():
        fut = loop.create_future()

        def handler(*args):
            calls.append((args, asyncio.get_running_loop() is loop))
            fut.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, handler, "a", 1)
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
        # Delivered from another thread while the loop waits in the kernel.
        t = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
        t.start()
        try:
            await fut
        finally:
            t.join()
        assert loop.remove_signal_handler(signal.SIGUSR1)

    run(loop, main())
    assert calls == [(("a", 1), True)]


def test_handler_called_once_per_delivery(loop):
    calls = []

    async def main():
        loop.add_signal_handler(signal.SIGUSR1, calls.append, "x")
        loop.add_signal_handler(signal.SIGUSR2, calls.append, "y")
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGUSR1):
            n = len(calls)
            signal.raise_signal(sig)
            while len(calls) == n:
                await asyncio.sleep(0.001)
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGUSR2)

    run(loop, main())
    assert calls == ["x", "y", "x"]


def test_replacing_a_handler(loop):
    calls = []

    async def main():
        loop.add_signal_handler(signal.SIGUSR1, calls.append, 1)
        loop.add_signal_handler(signal.SIGUSR1, calls.append, 2)
        signal.raise_signal(signal.SIGUSR1)
        while not calls:
            await asyncio.sleep(0.001)
        loop.remove_signal_handler(signal.SIGUSR1)

    run(loop, main())
    assert calls == [2]


def test_remove_restores_defaults(loop):
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_all_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    # No wakeup fd left pointing at the closed loop.
    assert signal.set_wakeup_fd(-1) == -1


def test_invalid_signals(loop):
    with pytest.raises(TypeError, match="sig must be an int"):
        loop.add_signal_handler("SIGUSR1", lambda: None)
    with pytest.raises(TypeError):
        loop.remove_signal_handler(None)
    for bad in (0, -1, signal.NSIG + 10):
        with pytest.raises(ValueError, match="invalid signal number"):
            loop.add_signal_handler(bad, lambda: None)
        with pytest.raises(ValueError, match="invalid signal number"):
            loop.remove_signal_handler(bad)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signals(loop, sig):
    with pytest.raises(RuntimeError, match=f"sig {int(sig)} cannot be caught"):
        loop.add_signal_handler(sig, lambda: None)
    assert signal.set_wakeup_fd(-1) == -1  # undone


def test_coroutines_refused(loop):
    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)
    coro = coro_fn()
    try:
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            loop.add_signal_handler(signal.SIGUSR1, coro)
    finally:
        coro.close()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_not_main_thread(loop):
    errors = []

    def other():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and type(errors[0]) is RuntimeError
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_closed_loop_refuses(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)


@pytest.mark.expect_handler_calls
def test_handler_exception_goes_to_exception_handler(loop, exc_contexts):
    def bad():
        raise ZeroDivisionError

    async def main():
        loop.add_signal_handler(signal.SIGUSR1, bad)
        signal.raise_signal(signal.SIGUSR1)
        while not exc_contexts:
            await asyncio.sleep(0.001)
        loop.remove_signal_handler(signal.SIGUSR1)

    run(loop, main())
    assert isinstance(exc_contexts[0]["exception"], ZeroDivisionError)
    exc_contexts.clear()


@pytest.mark.ringloop_only(reason="asyncio sets the wakeup fd to -1 instead of "
                           "restoring the one that was set before")
def test_previous_wakeup_fd_restored(loop):
    import socket

    a, b = socket.socketpair()
    b.setblocking(False)
    prev = signal.set_wakeup_fd(b.fileno())
    try:
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.remove_signal_handler(signal.SIGUSR1)
        assert signal.set_wakeup_fd(b.fileno()) == b.fileno()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.close()
        assert signal.set_wakeup_fd(prev) == b.fileno()
    finally:
        signal.set_wakeup_fd(prev)
        a.close()
        b.close()


_SIGINT_SCRIPT = textwrap.dedent("""
    import asyncio, signal, sys
    kind, with_handler = sys.argv[1], sys.argv[2] == "1"
    cancelled = []

    async def main():
        if with_handler:
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, print)
        print("ready", flush=True)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    try:
        if kind == "ringloop":
            import ringloop
            ringloop.run(main())
        else:
            asyncio.run(main())
    except KeyboardInterrupt:
        print("KeyboardInterrupt", cancelled,
              signal.getsignal(signal.SIGINT) is signal.default_int_handler,
              flush=True)
        sys.exit(0)
    print("finished without interrupt", flush=True)
""")


@pytest.mark.parametrize("with_handler", [False, True])
def test_ctrl_c_in_run(loop_kind, with_handler, tmp_path):
    """Ctrl-C (SIGINT) in asyncio.run / ringloop.run cancels the main task and
    raises KeyboardInterrupt, also while the loop has a signal handler (and so a
    wakeup fd) installed."""
    script = tmp_path / "sigint.py"
    script.write_text(_SIGINT_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), loop_kind, str(int(with_handler))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == b"KeyboardInterrupt [True] True\n", err.decode()
    assert proc.returncode == 0
