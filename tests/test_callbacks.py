"""call_soon: order, arguments, contexts, handle cancellation, callback errors."""

import asyncio
import contextvars

import pytest


def run_briefly(loop, n=1):
    """Run ``n`` loop iterations' worth of already-scheduled callbacks."""
    for _ in range(n):
        loop.run_until_complete(asyncio.sleep(0))


def test_call_soon_fifo_order(loop):
    calls = []
    for i in range(100):
        loop.call_soon(calls.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == list(range(100))


def test_call_soon_many_exact_count(loop):
    n = 100_000
    count = 0

    def inc():
        nonlocal count
        count += 1

    for _ in range(n):
        loop.call_soon(inc)
    loop.run_until_complete(asyncio.sleep(0))
    assert count == n


def test_call_soon_chain(loop):
    # Each callback schedules the next: one hop per loop iteration.
    remaining = [10_000]
    fut = loop.create_future()

    def hop():
        remaining[0] -= 1
        if remaining[0]:
            loop.call_soon(hop)
        else:
            fut.set_result("done")

    loop.call_soon(hop)
    assert loop.run_until_complete(fut) == "done"


def test_call_soon_and_threadsafe_from_loop_thread_keep_fifo(loop):
    # asyncio appends both to one ready queue: from the loop's own thread their
    # relative order is the order of the calls.
    calls = []
    for i in range(20):
        if i % 3 == 0:
            loop.call_soon_threadsafe(calls.append, i)
        else:
            loop.call_soon(calls.append, i)
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == list(range(20))

    async def main():
        got = []
        lp = asyncio.get_running_loop()
        for i in range(20):
            (lp.call_soon_threadsafe if i % 2 else lp.call_soon)(got.append, i)
        await asyncio.sleep(0)
        return got

    assert loop.run_until_complete(main()) == list(range(20))


def test_call_soon_positional_args(loop):
    calls = []

    def cb(*args):
        calls.append(args)

    loop.call_soon(cb)
    loop.call_soon(cb, 1)
    loop.call_soon(cb, 1, "two", None, (3,))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [(), (1,), (1, "two", None, (3,))]


def test_call_soon_runs_exactly_once(loop):
    calls = []
    loop.call_soon(calls.append, "x")
    run_briefly(loop, 3)
    assert calls == ["x"]


def test_callbacks_scheduled_by_callbacks_run_later(loop):
    # A callback scheduled while the ready queue runs goes after those already queued.
    calls = []

    def first():
        calls.append("first")
        loop.call_soon(calls.append, "nested")

    loop.call_soon(first)
    loop.call_soon(calls.append, "second")
    loop.call_soon(loop.call_soon, loop.stop)
    loop.run_forever()
    assert calls == ["first", "second", "nested"]


def test_call_soon_returns_handle(loop):
    handle = loop.call_soon(lambda: None)
    assert callable(handle.cancel)
    assert handle.cancelled() is False
    run_briefly(loop)


def test_handle_cancel_before_run(loop):
    calls = []
    h = loop.call_soon(calls.append, "cancelled")
    loop.call_soon(calls.append, "kept")
    h.cancel()
    assert h.cancelled()
    run_briefly(loop)
    assert calls == ["kept"]


def test_handle_cancel_twice_is_harmless(loop):
    calls = []
    h = loop.call_soon(calls.append, 1)
    h.cancel()
    h.cancel()
    assert h.cancelled()
    run_briefly(loop)
    assert calls == []


def test_handle_cancel_from_earlier_callback(loop):
    calls = []
    h2 = None

    def first():
        calls.append(1)
        h2.cancel()

    loop.call_soon(first)
    h2 = loop.call_soon(calls.append, 2)
    loop.call_soon(calls.append, 3)
    run_briefly(loop)
    assert calls == [1, 3]


def test_handle_cancel_after_run(loop):
    calls = []
    h = loop.call_soon(calls.append, 1)
    run_briefly(loop)
    h.cancel()
    assert calls == [1]
    assert h.cancelled()


var = contextvars.ContextVar("var", default="default")


def test_call_soon_default_context_is_a_copy(loop):
    seen = []
    token = var.set("outer")
    try:

        def cb():
            seen.append(var.get())
            var.set("changed-in-callback")

        loop.call_soon(cb)
        run_briefly(loop)
        # The callback ran in a copy of the current context: our value is untouched.
        assert var.get() == "outer"
    finally:
        var.reset(token)
    assert seen == ["outer"]


def test_call_soon_explicit_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")
    seen = []

    def cb(tag):
        seen.append((tag, var.get()))
        var.set(f"set-by-{tag}")

    loop.call_soon(cb, "a", context=ctx)
    loop.call_soon(cb, "b", context=ctx)
    loop.call_soon(cb, "c")
    run_briefly(loop)
    assert seen == [("a", "in-ctx"), ("b", "set-by-a"), ("c", "default")]
    assert ctx[var] == "set-by-b"
    assert var.get() == "default"


def test_call_soon_context_none_means_current(loop):
    seen = []
    token = var.set("current")
    try:
        loop.call_soon(lambda: seen.append(var.get()), context=None)
        run_briefly(loop)
    finally:
        var.reset(token)
    assert seen == ["current"]


class Boom(Exception):
    pass


def test_exception_in_callback_goes_to_handler(loop, exc_contexts):
    calls = []

    def bad():
        raise Boom("boom")

    handle = loop.call_soon(bad)
    loop.call_soon(calls.append, "after")
    run_briefly(loop)
    # The loop carried on with the next callback.
    assert calls == ["after"]
    assert len(exc_contexts) == 1
    ctx = exc_contexts.pop()
    assert isinstance(ctx["exception"], Boom)
    assert str(ctx["exception"]) == "boom"
    assert "message" in ctx and isinstance(ctx["message"], str) and ctx["message"]
    assert ctx["handle"] is handle


def test_exception_in_timer_callback_goes_to_handler(loop, exc_contexts):
    def bad():
        raise Boom("timer")

    handle = loop.call_later(0, bad)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert len(exc_contexts) == 1
    ctx = exc_contexts.pop()
    assert isinstance(ctx["exception"], Boom)
    assert ctx["handle"] is handle
    assert ctx["message"]


def test_many_callback_exceptions_each_reported(loop, exc_contexts):
    def bad(i):
        raise Boom(i)

    for i in range(20):
        loop.call_soon(bad, i)
    run_briefly(loop)
    assert [c["exception"].args[0] for c in exc_contexts] == list(range(20))
    exc_contexts.clear()


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_propagate_out_of_run_forever(loop, exc_type, exc_contexts):
    calls = []

    def raiser():
        raise exc_type("out")

    loop.call_soon(calls.append, "before")
    loop.call_soon(raiser)
    loop.call_soon(calls.append, "after")
    with pytest.raises(exc_type):
        loop.run_forever()
    assert exc_contexts == []
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    assert calls == ["before"]

    # The loop stays usable, and the callback queued behind the raiser still runs once.
    async def main():
        await asyncio.sleep(0)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"
    assert calls == ["before", "after"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_propagate_out_of_run_until_complete(loop, exc_type):
    async def main():
        await asyncio.sleep(0)
        raise exc_type()

    with pytest.raises(exc_type):
        loop.run_until_complete(main())
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"


def test_callback_returning_value_is_ignored(loop):
    loop.call_soon(lambda: 42)
    loop.call_soon(lambda: object())
    run_briefly(loop)


def test_bound_methods_and_partials(loop):
    import functools

    calls = []

    class C:
        def meth(self, x):
            calls.append(("meth", x))

        def __call__(self, x):
            calls.append(("call", x))

    loop.call_soon(C().meth, 1)
    loop.call_soon(C(), 2)
    loop.call_soon(functools.partial(calls.append, ("partial", 3)))
    run_briefly(loop)
    assert calls == [("meth", 1), ("call", 2), ("partial", 3)]


def test_call_soon_rejects_unknown_keyword(loop):
    with pytest.raises(TypeError):
        loop.call_soon(lambda: None, bogus=1)


@pytest.mark.parametrize("nargs", [0, 1, 2, 3, 4, 5, 6, 8, 16, 100])
def test_call_soon_any_number_of_args(loop, nargs):
    got = []
    args = tuple(f"a{i}" for i in range(nargs))
    loop.call_soon(lambda *a: got.append(a), *args)
    loop.call_later(0, lambda *a: got.append(a), *args)
    loop.call_soon_threadsafe(lambda *a: got.append(a), *args)
    loop.run_until_complete(asyncio.sleep(0.001))
    assert got == [args, args, args]


def test_handle_kept_after_run_does_not_alias_new_handles(loop):
    # Handles that already ran but are still referenced must stay distinct objects:
    # cancelling an old handle cannot cancel a newer one.
    calls = []
    old = [loop.call_soon(calls.append, ("old", i)) for i in range(100)]
    run_briefly(loop)
    new = [loop.call_soon(calls.append, ("new", i)) for i in range(100)]
    assert not any(o is n for o in old for n in new[:5])
    for h in old:
        h.cancel()
    assert all(h.cancelled() for h in old)
    assert not any(h.cancelled() for h in new)
    run_briefly(loop)
    assert calls == [("old", i) for i in range(100)] + [("new", i) for i in range(100)]


def test_threadsafe_handles_cancelled_from_other_thread(loop):
    import threading

    n = 2000
    ran = []
    cancelled = set()
    done = loop.create_future()

    def worker():
        for i in range(n):
            h = loop.call_soon_threadsafe(ran.append, i)
            if i % 2:
                h.cancel()
                cancelled.add(i)
        loop.call_soon_threadsafe(done.set_result, None)

    th = threading.Thread(target=worker)
    th.start()
    try:
        loop.run_until_complete(done)
    finally:
        th.join()
    run_briefly(loop)
    # Every non-cancelled callback ran exactly once, in order; a cancelled one ran at
    # most once (only if the loop got to it before cancel()).
    kept = [i for i in ran if i not in cancelled]
    assert kept == [i for i in range(n) if i not in cancelled]
    assert len(ran) == len(set(ran))
