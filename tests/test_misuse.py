"""Bad arguments get the same exception types asyncio raises.

One documented difference: asyncio type-checks call_soon/call_later/call_at callbacks
only in debug mode; ringloop always does (TypeError at call time).  Those checks are
therefore run in debug mode for both loops, plus a ringloop-only test for non-debug."""

import asyncio

import pytest


async def coro_func():
    return 1


NOT_CALLABLE = [1, "str", None, object()]


def _schedule(loop, method, cb):
    if method == "call_soon":
        return loop.call_soon(cb)
    if method == "call_later":
        return loop.call_later(0, cb)
    if method == "call_at":
        return loop.call_at(loop.time(), cb)
    if method == "call_soon_threadsafe":
        return loop.call_soon_threadsafe(cb)
    raise AssertionError(method)


METHODS = ["call_soon", "call_later", "call_at", "call_soon_threadsafe"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", NOT_CALLABLE, ids=repr)
def test_non_callable_in_debug(loop, method, bad):
    loop.set_debug(True)
    with pytest.raises(TypeError):
        _schedule(loop, method, bad)
    loop.run_until_complete(asyncio.sleep(0))


@pytest.mark.parametrize("method", METHODS)
def test_coroutine_function_in_debug(loop, method):
    loop.set_debug(True)
    with pytest.raises(TypeError):
        _schedule(loop, method, coro_func)


@pytest.mark.parametrize("method", METHODS)
def test_coroutine_object_in_debug(loop, method):
    loop.set_debug(True)
    coro = coro_func()
    try:
        with pytest.raises(TypeError):
            _schedule(loop, method, coro)
    finally:
        coro.close()


@pytest.mark.ringloop_only(
    reason="documented difference: ringloop rejects non-callables at call time even "
    "without debug mode (asyncio only checks in debug mode and fails later, in the "
    "exception handler)"
)
@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
@pytest.mark.parametrize("bad", NOT_CALLABLE, ids=repr)
def test_non_callable_without_debug_ringloop(loop, method, bad):
    loop.set_debug(False)
    with pytest.raises(TypeError):
        _schedule(loop, method, bad)
    loop.run_until_complete(asyncio.sleep(0))


def test_call_later_none_delay(loop):
    with pytest.raises(TypeError):
        loop.call_later(None, lambda: None)


def test_call_at_none_when(loop):
    with pytest.raises(TypeError):
        loop.call_at(None, lambda: None)


@pytest.mark.parametrize("bad", ["1", [1], object()], ids=repr)
def test_call_later_non_number_delay(loop, bad):
    with pytest.raises(TypeError):
        loop.call_later(bad, lambda: None)


def test_call_soon_without_callback(loop):
    with pytest.raises(TypeError):
        loop.call_soon()


def test_run_until_complete_non_awaitable(loop):
    for bad in (None, 1, "x", lambda: None):
        with pytest.raises(TypeError):
            loop.run_until_complete(bad)
    assert not loop.is_running()


def test_create_task_non_coroutine(loop):
    for bad in (None, 1, coro_func, loop.create_future()):
        with pytest.raises(TypeError):
            loop.create_task(bad)


def test_closed_loop_errors(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_at(0, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    # create_future on a closed loop is allowed (asyncio does not check).
    fut = loop.create_future()
    assert fut.get_loop() is loop


def test_set_debug_requires_argument(loop):
    with pytest.raises(TypeError):
        loop.set_debug()


def test_future_from_other_loop_awaited(loop, loop_factory):
    other = loop_factory()
    try:
        fut = other.create_future()

        async def main():
            await fut

        with pytest.raises(RuntimeError):
            loop.run_until_complete(main())
    finally:
        other.close()


def test_call_soon_non_context_never_runs_callback(loop, exc_contexts):
    # asyncio accepts any object as context= and fails when the handle runs (the error
    # goes to the exception handler); a stricter loop may raise TypeError at call time.
    # Either way the callback must not run and the loop must survive.
    calls = []
    try:
        loop.call_soon(calls.append, 1, context="not a context")
    except TypeError:
        raised = True
    else:
        raised = False
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == []
    if not raised:
        assert len(exc_contexts) == 1
        assert isinstance(exc_contexts[0]["exception"], (AttributeError, TypeError))
        exc_contexts.clear()
    assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"


@pytest.mark.ringloop_only(
    reason="documented difference: ringloop type-checks callbacks without debug mode"
)
@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_coroutine_object_without_debug_ringloop(loop, method):
    loop.set_debug(False)
    coro = coro_func()
    try:
        with pytest.raises(TypeError, match="coroutine"):
            _schedule(loop, method, coro)
    finally:
        coro.close()
