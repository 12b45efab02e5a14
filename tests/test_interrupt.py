"""Signals arriving while the loop is blocked waiting (Ctrl-C on a sleeping program):
Python-level signal handlers run promptly enough to matter, exceptions they raise
propagate out of run_forever, and asyncio.Runner's SIGINT handling works.

Every test keeps a fallback timer that stops the loop, so a loop that ignored the
signal fails the test instead of hanging it (pytest-timeout itself relies on a
signal)."""

import asyncio
import signal
import threading
import time

import pytest

pytestmark = [
    pytest.mark.skipif(
        threading.current_thread() is not threading.main_thread(),
        reason="signals are delivered to the main thread",
    ),
    pytest.mark.timeout(30),
]


class Interrupted(BaseException):
    pass


def _signal_later(signum, delay=0.05):
    """Send ``signum`` to the main thread from a helper thread after ``delay`` (the
    loop is then most likely blocked in its wait; either way the test holds)."""
    main = threading.main_thread().ident

    def fire():
        time.sleep(delay)
        signal.pthread_kill(main, signum)

    th = threading.Thread(target=fire)
    th.start()
    return th


@pytest.fixture
def usr1_handler():
    calls = []
    mode = {"raise": False}

    def handler(signum, frame):
        calls.append(signum)
        if mode["raise"]:
            raise Interrupted()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        yield calls, mode
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_raising_signal_handler_interrupts_blocked_loop(loop, usr1_handler):
    calls, mode = usr1_handler
    mode["raise"] = True
    fallback = loop.call_later(10, loop.stop)
    th = _signal_later(signal.SIGUSR1)
    try:
        with pytest.raises(Interrupted):
            loop.run_until_complete(asyncio.sleep(3600))
    finally:
        th.join()
        fallback.cancel()
    assert calls == [signal.SIGUSR1]
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    # The loop stays usable.
    assert loop.run_until_complete(asyncio.sleep(0.001, "after")) == "after"


def test_non_raising_signal_handler_loop_continues(loop, usr1_handler):
    calls, mode = usr1_handler
    fut = loop.create_future()
    fallback = loop.call_later(10, loop.stop)

    async def main():
        th = _signal_later(signal.SIGUSR1)
        # Wait until the handler ran (it runs in this thread, between iterations).
        while not calls:
            await asyncio.sleep(0.01)
        th.join()
        fut.set_result("continued")
        return await fut

    try:
        assert loop.run_until_complete(main()) == "continued"
    finally:
        fallback.cancel()
    assert calls == [signal.SIGUSR1]


def test_keyboard_interrupt_from_sigint_while_sleeping(loop):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT does not have Python's default handler in this process")
    fallback = loop.call_later(10, loop.stop)
    th = _signal_later(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(3600))
    finally:
        th.join()
        fallback.cancel()
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


def test_runner_sigint_cancels_main_task(loop_factory):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT does not have Python's default handler in this process")
    cancelled = []

    async def main():
        lp = asyncio.get_running_loop()
        fallback = lp.call_later(10, lp.stop)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        finally:
            fallback.cancel()

    th = _signal_later(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(main())
    finally:
        th.join()
    # Runner's SIGINT handler cancelled the main task (and restored the handler).
    assert cancelled == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
