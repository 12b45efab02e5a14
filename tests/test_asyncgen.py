"""Async generators: the loop's firstiter/finalizer hooks, shutdown_asyncgens, and the
hooks being restored when the loop stops running."""

import asyncio
import gc
import sys
import warnings

import pytest


def make_gen(log, name="g"):
    async def gen():
        try:
            for i in range(10):
                yield i
                await asyncio.sleep(0)
        finally:
            log.append(f"{name}-finally")
            await asyncio.sleep(0)  # awaiting in finally needs a real aclose() on the loop
            log.append(f"{name}-closed")

    return gen()


def test_shutdown_asyncgens_finalizes_open_generators(loop):
    log = []
    gens = [make_gen(log, f"g{i}") for i in range(3)]

    async def main():
        for g in gens:
            assert await g.__anext__() == 0

    loop.run_until_complete(main())
    assert log == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert sorted(log) == sorted(
        [f"g{i}-{what}" for i in range(3) for what in ("finally", "closed")]
    )
    assert all(g.ag_frame is None for g in gens)


def test_shutdown_asyncgens_without_generators(loop):
    assert loop.run_until_complete(loop.shutdown_asyncgens()) is None


def test_gc_of_running_generator_schedules_aclose(loop):
    log = []

    async def main():
        g = make_gen(log)
        await g.__anext__()
        del g
        gc.collect()
        # The finalizer hook scheduled aclose() on the loop: let it run.
        for _ in range(10):
            await asyncio.sleep(0)
        return list(log)

    assert loop.run_until_complete(main()) == ["g-finally", "g-closed"]


def test_fully_consumed_generator_not_in_shutdown(loop):
    log = []

    async def main():
        return [x async for x in make_gen(log)]

    assert loop.run_until_complete(main()) == list(range(10))
    assert log == ["g-finally", "g-closed"]
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert log == ["g-finally", "g-closed"]


def test_asyncgen_hooks_installed_while_running_and_restored(loop):
    def firstiter(agen):
        pass

    def finalizer(agen):
        pass

    old = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    try:
        seen = []

        async def main():
            seen.append(sys.get_asyncgen_hooks())

        loop.run_until_complete(main())
        hooks_in_loop = seen[0]
        assert hooks_in_loop.firstiter is not firstiter
        assert hooks_in_loop.finalizer is not finalizer
        assert hooks_in_loop.firstiter is not None and hooks_in_loop.finalizer is not None
        after = sys.get_asyncgen_hooks()
        assert after.firstiter is firstiter
        assert after.finalizer is finalizer

        # Restored also when run_forever exits through an exception.
        def boom():
            raise KeyboardInterrupt

        loop.call_soon(boom)
        with pytest.raises(KeyboardInterrupt):
            loop.run_forever()
        after = sys.get_asyncgen_hooks()
        assert after.firstiter is firstiter and after.finalizer is finalizer
    finally:
        sys.set_asyncgen_hooks(*old)


@pytest.mark.expect_handler_calls
def test_shutdown_asyncgens_reports_aclose_errors(loop, exc_contexts):
    async def bad_gen():
        try:
            yield 1
        finally:
            raise ValueError("in finally")

    g = bad_gen()

    async def main():
        await g.__anext__()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(exc_contexts) == 1
    ctx = exc_contexts.pop()
    assert ctx["asyncgen"] is g
    assert isinstance(ctx["exception"], ValueError)
    assert "asynchronous generator" in ctx["message"]


def test_firstiter_after_shutdown_warns(loop):
    loop.run_until_complete(loop.shutdown_asyncgens())
    log = []

    async def main():
        g = make_gen(log)
        with pytest.warns(ResourceWarning):
            await g.__anext__()
        await g.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        loop.run_until_complete(main())
    assert log == ["g-finally", "g-closed"]
