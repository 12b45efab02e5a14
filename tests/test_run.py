"""Running and stopping: run_until_complete, run_forever, stop, close, is_running,
is_closed, the running-loop bookkeeping, ringloop.run / Runner and loop factories."""

import asyncio
import contextvars
import sys
import threading

import pytest


async def add(a, b):
    await asyncio.sleep(0)
    return a + b


# --------------------------------------------------------------- run_until_complete


def test_run_until_complete_coroutine(loop):
    assert loop.run_until_complete(add(2, 3)) == 5


def test_run_until_complete_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_done_future(loop):
    fut = loop.create_future()
    fut.set_result(7)
    assert loop.run_until_complete(fut) == 7


def test_run_until_complete_task(loop):
    task = loop.create_task(add(1, 1))
    assert loop.run_until_complete(task) == 2
    assert task.done()


def test_run_until_complete_awaitable_object(loop):
    class Awaitable:
        def __await__(self):
            return add(20, 22).__await__()

    assert loop.run_until_complete(Awaitable()) == 42


def test_run_until_complete_raises_exception(loop):
    async def fail():
        await asyncio.sleep(0)
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        loop.run_until_complete(fail())
    # The exception was retrieved: no "exception never retrieved" report at gc.


def test_run_until_complete_cancelled_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_not_awaitable(loop):
    with pytest.raises(TypeError):
        loop.run_until_complete(42)


def test_run_until_complete_other_loops_future(loop, loop_factory):
    other = loop_factory()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_run_until_complete_stopped_early(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
        loop.run_until_complete(fut)
    # The loop is reusable and the future can still complete.
    loop.call_soon(fut.set_result, 1)
    assert loop.run_until_complete(fut) == 1


def test_run_until_complete_repeatedly(loop):
    for i in range(50):
        assert loop.run_until_complete(add(i, 1)) == i + 1


def test_two_loops_alternate_in_one_thread(loop, loop_factory):
    other = loop_factory()
    try:
        calls = []
        loop.call_later(0.001, calls.append, "a-timer")
        other.call_later(0.001, calls.append, "b-timer")
        far_a = loop.call_later(3600, calls.append, "never")
        far_b = other.call_later(3600, calls.append, "never")
        for i in range(5):
            assert loop.run_until_complete(asyncio.sleep(0.002, ("a", i))) == ("a", i)
            assert other.run_until_complete(asyncio.sleep(0.002, ("b", i))) == ("b", i)
        assert sorted(calls) == ["a-timer", "b-timer"]
        far_a.cancel()
        far_b.cancel()
    finally:
        other.close()


def test_stop_twice_in_one_run_is_consumed(loop):
    def cb():
        loop.stop()
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    # The next run is not stopped early by the second stop().
    assert loop.run_until_complete(asyncio.sleep(0.002, "full")) == "full"


def test_running_loop_bookkeeping(loop):
    assert asyncio._get_running_loop() is None
    assert not loop.is_running()

    async def main():
        assert asyncio.get_running_loop() is loop
        assert asyncio.get_event_loop() is loop
        assert loop.is_running()
        return asyncio.current_task()

    task = loop.run_until_complete(main())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_is_running_in_callback(loop):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [True]
    assert loop.is_running() is False


# ---------------------------------------------------------------------- stop()


def test_stop_before_run_forever_runs_one_iteration(loop):
    calls = []

    def cb():
        calls.append(1)
        loop.call_soon(calls.append, 2)  # scheduled during the iteration: not run yet

    loop.call_soon(cb)
    loop.stop()
    loop.run_forever()
    assert calls == [1]
    # stop() was consumed: the next run is a normal one.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1, 2]


def test_stop_twice_before_run(loop):
    calls = []
    loop.stop()
    loop.stop()
    loop.call_soon(calls.append, 1)
    loop.run_forever()
    assert calls == [1]


def test_stop_in_callback_lets_current_batch_finish(loop):
    calls = []
    loop.call_soon(calls.append, "a")
    loop.call_soon(loop.stop)
    loop.call_soon(calls.append, "b")
    loop.run_forever()
    assert calls == ["a", "b"]


def test_stop_from_coroutine(loop):
    async def main():
        await asyncio.sleep(0)
        loop.stop()
        return "x"

    task = loop.create_task(main())
    loop.run_forever()
    assert task.result() == "x"


def test_run_forever_returns_after_stop_with_pending_timer(loop):
    calls = []
    h = loop.call_later(3600, calls.append, "never")
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert calls == []
    h.cancel()


def test_stop_when_not_running_does_not_raise(loop):
    assert loop.stop() is None
    loop.run_forever()  # consumes the stop


def test_stop_before_run_with_only_far_timer_returns(loop):
    # stop() before run_forever(): one non-blocking iteration, even though the only
    # scheduled thing is an hour away (asyncio polls with timeout 0 when stopping).
    calls = []
    h = loop.call_later(3600, calls.append, "never")
    loop.stop()
    loop.run_forever()
    assert calls == []
    assert not loop.is_running()
    h.cancel()


def test_stop_in_last_callback_with_only_far_timer_returns(loop):
    h = loop.call_later(3600, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert not loop.is_running()
    h.cancel()


# ------------------------------------------------------------------- re-entrancy


def _runtime_errors_inside(loop, fn):
    """Calls fn() from a callback of the running loop, then stops the loop;
    returns the RuntimeError messages fn raised."""
    errors = []

    def cb():
        try:
            fn()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    return errors


# Note: each nested call gets its own test.  CPython 3.13.0's run_forever() runs its
# cleanup even when its "already running" check fails, which marks the *outer* run as
# not running any more (fixed in later 3.13 releases); one nested call per run keeps
# the asyncio reference meaningful on 3.13.0.


def test_run_forever_reentrant_raises(loop):
    errors = _runtime_errors_inside(loop, loop.run_forever)
    assert len(errors) == 1 and "already running" in errors[0], errors
    assert not loop.is_running()
    assert loop.run_until_complete(add(1, 1)) == 2


def test_run_until_complete_reentrant_raises(loop):
    fut = loop.create_future()
    fut.set_result(None)

    errors = _runtime_errors_inside(loop, lambda: loop.run_until_complete(fut))
    assert len(errors) == 1 and "already running" in errors[0], errors
    assert not loop.is_running()
    assert loop.run_until_complete(add(1, 1)) == 2


def test_run_other_loop_while_running_raises(loop, loop_factory):
    other = loop_factory()
    done = other.create_future()
    done.set_result(None)
    errors = []

    async def main():
        try:
            other.run_until_complete(done)
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            other.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))

    try:
        loop.run_until_complete(main())
    finally:
        other.close()
    assert len(errors) == 2
    assert all("another loop is running" in e for e in errors), errors


def test_run_from_second_thread_while_running_raises(loop):
    done = loop.create_future()
    done.set_result(None)
    result = {}

    def other_thread():
        try:
            loop.run_until_complete(done)
        except BaseException as exc:  # noqa: BLE001
            result["exc"] = exc
        else:
            result["exc"] = None

    async def main():
        t = threading.Thread(target=other_thread)
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.001)
        t.join()

    loop.run_until_complete(main())
    assert isinstance(result["exc"], RuntimeError)
    assert "already running" in str(result["exc"])


# ------------------------------------------------------------------------ close()


def test_close_state(loop):
    assert not loop.is_closed()
    loop.close()
    assert loop.is_closed()
    loop.close()  # idempotent
    assert loop.is_closed()


def test_close_with_pending_callbacks(loop):
    calls = []
    loop.call_soon(calls.append, 1)
    loop.call_later(10, calls.append, 2)
    loop.close()
    assert calls == []
    assert loop.is_closed()


def test_closed_loop_refuses_to_run(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    fut_coro = add(1, 2)
    try:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.run_until_complete(fut_coro)
    finally:
        fut_coro.close()


def test_closed_loop_refuses_scheduling(loop):
    loop.close()
    for call in (
        lambda: loop.call_soon(lambda: None),
        lambda: loop.call_later(1, lambda: None),
        lambda: loop.call_at(loop.time() + 1, lambda: None),
        lambda: loop.call_soon_threadsafe(lambda: None),
        lambda: loop.run_in_executor(None, lambda: None),
    ):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    coro = add(1, 2)
    try:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.create_task(coro)
    finally:
        coro.close()


def test_close_while_running_raises(loop):
    errors = _runtime_errors_inside(loop, loop.close)
    assert len(errors) == 1 and "running" in errors[0]
    assert not loop.is_closed()


def test_time_works_after_close(loop):
    loop.close()
    assert isinstance(loop.time(), float)


def test_create_future_is_exact_future(loop):
    fut = loop.create_future()
    assert type(fut) is asyncio.Future
    assert fut.get_loop() is loop
    fut.cancel()


def test_loop_is_abstract_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    asyncio.set_event_loop(loop)  # type-checks on 3.12+; must be accepted
    try:
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)


def test_repr_open_and_closed(loop):
    r = repr(loop)
    assert isinstance(r, str) and r
    loop.close()
    assert isinstance(repr(loop), str)


# --------------------------------------------------------- Runner / run / factories


def _expected_type(loop_kind):
    if loop_kind == "asyncio":
        return asyncio.SelectorEventLoop
    import ringloop

    return ringloop.EventLoop


def test_asyncio_runner_loop_factory(loop_kind, loop_factory):
    var = contextvars.ContextVar("v", default=None)

    async def main(x):
        var.set(x)
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main(1)) is _expected_type(loop_kind)
        lp = runner.get_loop()
        assert isinstance(lp, _expected_type(loop_kind))
        # Runner.run twice reuses the loop and the runner's context.
        assert runner.run(main(2)) is _expected_type(loop_kind)
        assert runner.get_loop() is lp
    assert lp.is_closed()


async def _sleep_forever(cancelled):
    """A task body that only ends by cancellation, which it records."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


def test_asyncio_runner_cancels_leftover_tasks(loop_factory):
    cancelled = []

    async def main():
        asyncio.get_running_loop().create_task(_sleep_forever(cancelled))
        await asyncio.sleep(0)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    assert cancelled == [True]


def test_asyncio_runner_debug(loop_factory):
    async def main():
        return asyncio.get_running_loop().get_debug()

    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        assert runner.run(main()) is True


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_loop_factory(loop_kind, loop_factory):
    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=loop_factory) is _expected_type(loop_kind)


@pytest.mark.ringloop_only(reason="ringloop.run is ringloop's API")
def test_ringloop_run(loop_kind):
    import ringloop

    async def main(x):
        await asyncio.sleep(0.001)
        lp = asyncio.get_running_loop()
        return x, type(lp), lp.get_debug()

    assert ringloop.run(main(5)) == (5, ringloop.EventLoop, False)
    assert ringloop.run(main(6), debug=True) == (6, ringloop.EventLoop, True)


@pytest.mark.ringloop_only(reason="ringloop.run is ringloop's API")
def test_ringloop_run_propagates_and_cleans_up(loop_kind):
    import ringloop

    cancelled = []
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())
        asyncio.get_running_loop().create_task(_sleep_forever(cancelled))
        await asyncio.sleep(0)
        raise LookupError("propagated")

    with pytest.raises(LookupError, match="propagated"):
        ringloop.run(main())
    assert cancelled == [True]
    assert loops[0].is_closed()
    assert asyncio._get_running_loop() is None


def test_run_refuses_inside_running_loop(loop_kind):
    # asyncio.run() / ringloop.run() called from a coroutine: RuntimeError, raised
    # before any loop is made, so no coroutine is left un-awaited (no RuntimeWarning).
    import gc
    import warnings

    if loop_kind == "asyncio":
        run = asyncio.run
    else:
        import ringloop

        run = ringloop.run

    async def inner():
        return 1

    async def outer():
        coro = inner()
        try:
            with pytest.raises(RuntimeError, match="running event loop"):
                run(coro)
        finally:
            coro.close()
        return "ok"

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert run(outer()) == "ok"
        gc.collect()
    assert [str(r.message) for r in rec if issubclass(r.category, RuntimeWarning)] == []


@pytest.mark.ringloop_only(reason="ringloop.run is ringloop's API")
def test_ringloop_run_with_loop_factory(loop_kind):
    import ringloop

    made = []

    def factory():
        lp = ringloop.new_event_loop()
        made.append(lp)
        return lp

    async def main():
        return asyncio.get_running_loop()

    assert ringloop.run(main(), loop_factory=factory) is made[0]
    assert made[0].is_closed()


@pytest.mark.ringloop_only(reason="ringloop.Runner is ringloop's API")
def test_ringloop_runner_default_factory(loop_kind):
    import ringloop

    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop())

    with ringloop.Runner() as runner:
        assert runner.run(main()) is ringloop.EventLoop
        lp = runner.get_loop()
    assert lp.is_closed()


@pytest.mark.ringloop_only(reason="ringloop's factory and loop class")
def test_new_event_loop_and_class(loop_kind):
    import ringloop

    lp = ringloop.new_event_loop()
    try:
        assert type(lp) is ringloop.EventLoop
        assert issubclass(ringloop.EventLoop, asyncio.AbstractEventLoop)
    finally:
        lp.close()
    lp2 = ringloop.EventLoop()
    try:
        assert lp2.run_until_complete(add(1, 2)) == 3
    finally:
        lp2.close()
