"""Tasks on the loop: create_task, task factories, eager tasks, and the stdlib
combinators (gather, TaskGroup, timeout, wait_for, shield, wait, cancellation)."""

import asyncio
import contextvars
import inspect
import sys

import pytest

var = contextvars.ContextVar("var", default="default")

CREATE_TASK_TAKES_KWARGS = any(
    p.kind is inspect.Parameter.VAR_KEYWORD
    for p in inspect.signature(asyncio.BaseEventLoop.create_task).parameters.values()
)


async def value_after(value, delay=0):
    await asyncio.sleep(delay)
    return value


# ------------------------------------------------------------------- create_task


def test_create_task_returns_exact_task(loop):
    task = loop.create_task(value_after(1))
    assert type(task) is asyncio.Task
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == 1


def test_create_task_name(loop):
    named = loop.create_task(value_after(1), name="my-task")
    unnamed = loop.create_task(value_after(2))
    assert named.get_name() == "my-task"
    assert unnamed.get_name().startswith("Task-")
    loop.run_until_complete(asyncio.gather(named, unnamed))


def test_create_task_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")

    async def read_and_write():
        before = var.get()
        var.set("written")
        await asyncio.sleep(0)
        return before, var.get()

    t1 = loop.create_task(read_and_write(), context=ctx)
    t2 = loop.create_task(read_and_write())
    assert loop.run_until_complete(t1) == ("in-ctx", "written")
    assert loop.run_until_complete(t2) == ("default", "written")
    assert ctx[var] == "written"
    assert var.get() == "default"


def test_task_copies_current_context(loop):
    async def child():
        return var.get()

    async def main():
        var.set("parent")
        t = asyncio.get_running_loop().create_task(child())
        var.set("changed-after")
        return await t

    assert loop.run_until_complete(main()) == "parent"


def test_create_task_rejects_non_coroutine(loop):
    with pytest.raises(TypeError):
        loop.create_task(42)


def test_create_task_before_run(loop):
    order = []

    async def job(i):
        order.append(i)

    tasks = [loop.create_task(job(i)) for i in range(10)]
    loop.run_until_complete(asyncio.gather(*tasks))
    assert order == list(range(10))


# ------------------------------------------------------------------ task factory


def test_task_factory_identity_and_calls(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    t = loop.create_task(value_after("x"), name="named")
    assert t.get_name() == "named"
    assert loop.run_until_complete(t) == "x"
    assert calls[0][0] is loop

    ctx = contextvars.Context()
    t2 = loop.create_task(value_after("y"), context=ctx)
    assert loop.run_until_complete(t2) == "y"
    assert calls[1][1].get("context") is ctx

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    t3 = loop.create_task(value_after("z"))
    assert loop.run_until_complete(t3) == "z"
    assert len(calls) == 2


def test_task_factory_used_by_asyncio_apis(loop):
    made = []

    def factory(lp, coro, **kwargs):
        t = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(t)
        return t

    loop.set_task_factory(factory)

    async def main():
        return await asyncio.gather(value_after(1), value_after(2))

    assert loop.run_until_complete(main()) == [1, 2]
    # run_until_complete's task + the two gather children.
    assert len(made) == 3


def test_task_factory_may_return_future_subclass(loop):
    class MyTask(asyncio.Task):
        pass

    loop.set_task_factory(lambda lp, coro, **kw: MyTask(coro, loop=lp, **kw))
    t = loop.create_task(value_after(3))
    assert type(t) is MyTask
    assert loop.run_until_complete(t) == 3


def test_set_task_factory_non_callable(loop):
    with pytest.raises(TypeError):
        loop.set_task_factory(42)
    assert loop.get_task_factory() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_task_factory(loop):
    loop.set_task_factory(asyncio.eager_task_factory)
    assert loop.get_task_factory() is asyncio.eager_task_factory
    steps = []

    async def child():
        steps.append("child-start")
        await asyncio.sleep(0)
        steps.append("child-end")
        return "c"

    async def main():
        t = asyncio.get_running_loop().create_task(child())
        steps.append("after-create")
        return await t

    assert loop.run_until_complete(main()) == "c"
    assert steps == ["child-start", "after-create", "child-end"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_task_completing_synchronously(loop):
    loop.set_task_factory(asyncio.eager_task_factory)

    async def sync_child():
        return 5

    async def main():
        t = asyncio.get_running_loop().create_task(sync_child())
        assert t.done()
        return t.result()

    assert loop.run_until_complete(main()) == 5


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Task(eager_start=) is 3.12+")
def test_task_eager_start_direct(loop):
    # aiohttp builds asyncio.Task(coro, loop=loop, eager_start=True) directly: it relies
    # on loop.is_running() and on the running-loop bookkeeping.
    steps = []

    async def child():
        steps.append("child")
        return 1

    async def main():
        t = asyncio.Task(child(), loop=asyncio.get_running_loop(), eager_start=True)
        steps.append("after")
        assert t.done()
        return await t

    assert loop.run_until_complete(main()) == 1
    assert steps == ["child", "after"]


@pytest.mark.skipif(
    not CREATE_TASK_TAKES_KWARGS,
    reason="this Python's asyncio create_task() takes no **kwargs (added in 3.13.3/3.14)",
)
def test_create_task_eager_start_kwarg(loop):
    steps = []

    async def child():
        steps.append("child")
        await asyncio.sleep(0)
        return 2

    async def main():
        t = asyncio.get_running_loop().create_task(child(), eager_start=True)
        steps.append("after")
        return await t

    assert loop.run_until_complete(main()) == 2
    assert steps == ["child", "after"]


# --------------------------------------------------------------- current / all


def test_current_task_and_all_tasks(loop):
    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        me = asyncio.current_task()
        assert me is not None and me.get_loop() is loop
        others = [asyncio.get_running_loop().create_task(sleeper()) for _ in range(3)]
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {me, *others}
        assert asyncio.all_tasks(loop) == {me, *others}
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        assert asyncio.all_tasks() == {me}
        return me

    task = loop.run_until_complete(main())
    assert asyncio.current_task(loop) is None
    assert asyncio.all_tasks(loop) == set()
    assert task.done()


def test_current_task_in_plain_callback_is_none(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.current_task(loop)))
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [None]


# ------------------------------------------------------------------- combinators


def test_gather_results_in_order(loop):
    async def main():
        return await asyncio.gather(*(value_after(i, (10 - i) * 0.001) for i in range(10)))

    assert loop.run_until_complete(main()) == list(range(10))


def test_gather_return_exceptions(loop):
    async def bad():
        await asyncio.sleep(0)
        raise KeyError("k")

    async def main():
        return await asyncio.gather(value_after(1), bad(), return_exceptions=True)

    res = loop.run_until_complete(main())
    assert res[0] == 1 and isinstance(res[1], KeyError)


def test_gather_propagates_first_exception(loop):
    async def bad():
        raise KeyError("k")

    async def main():
        slow = asyncio.ensure_future(value_after(1, 0.01))
        with pytest.raises(KeyError):
            await asyncio.gather(slow, bad())
        return await slow

    assert loop.run_until_complete(main()) == 1


def test_taskgroup(loop):
    async def main():
        async with asyncio.TaskGroup() as tg:
            ts = [tg.create_task(value_after(i, 0.001)) for i in range(5)]
        return [t.result() for t in ts]

    assert loop.run_until_complete(main()) == list(range(5))


def test_taskgroup_failure_cancels_siblings(loop):
    cancelled = []

    async def sleeper():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def bad():
        await asyncio.sleep(0.001)
        raise ValueError("tg")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper())
            tg.create_task(sleeper())
            tg.create_task(bad())

    with pytest.raises(ExceptionGroup) as info:
        loop.run_until_complete(main())
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert cancelled == [True, True]


def test_timeout_expires(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(3600)
        return asyncio.current_task().cancelling()

    assert loop.run_until_complete(main()) == 0


def test_timeout_not_reached(loop):
    async def main():
        async with asyncio.timeout(30) as cm:
            v = await value_after(4, 0.001)
        assert not cm.expired()
        return v

    assert loop.run_until_complete(main()) == 4


def test_timeout_reschedule(loop):
    async def main():
        lp = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3600) as cm:
                cm.reschedule(lp.time() + 0.01)
                await asyncio.sleep(3600)
        return cm.expired()

    assert loop.run_until_complete(main()) is True


def test_wait_for(loop):
    async def main():
        assert await asyncio.wait_for(value_after(1), 30) == 1
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), 0.01)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), 0)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


def test_shield(loop):
    async def main():
        inner = asyncio.ensure_future(value_after("inner", 0.01))
        outer = asyncio.shield(inner)
        await asyncio.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        return await inner

    assert loop.run_until_complete(main()) == "inner"


def test_cancel_with_message_and_cleanup(loop):
    events = []

    async def worker():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            events.append(("cancelled", exc.args))
            await asyncio.sleep(0)  # cleanup may still await
            events.append("cleanup-done")
            raise

    async def main():
        t = asyncio.get_running_loop().create_task(worker())
        await asyncio.sleep(0)
        assert t.cancel("stop please")
        assert t.cancelling() == 1
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled()
        assert not t.cancel()  # already done
        return t

    loop.run_until_complete(main())
    assert events == [("cancelled", ("stop please",)), "cleanup-done"]


def test_cancel_task_before_it_starts(loop):
    started = []

    async def worker():
        started.append(True)

    t = loop.create_task(worker())
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(t)
    assert started == []


def test_uncancel_swallowed_cancellation(loop):
    async def main():
        t = asyncio.current_task()
        asyncio.get_running_loop().call_soon(t.cancel)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            assert t.uncancel() == 0
        await asyncio.sleep(0)
        return "survived"

    assert loop.run_until_complete(main()) == "survived"


def test_wait_first_completed_and_as_completed(loop):
    async def main():
        fast = asyncio.ensure_future(value_after("fast", 0.001))
        slow = asyncio.ensure_future(value_after("slow", 3600))
        done, pending = await asyncio.wait({fast, slow}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        slow.cancel()
        order = []
        for f in asyncio.as_completed([value_after(2, 0.02), value_after(1, 0.001)]):
            order.append(await f)
        await asyncio.gather(slow, return_exceptions=True)
        return order

    assert loop.run_until_complete(main()) == [1, 2]


def test_many_tasks(loop):
    async def main():
        return sum(await asyncio.gather(*(value_after(1) for _ in range(5000))))

    assert loop.run_until_complete(main()) == 5000


def test_future_callbacks_and_await(loop):
    async def main():
        lp = asyncio.get_running_loop()
        fut = lp.create_future()
        got = []
        fut.add_done_callback(lambda f: got.append(f.result()))
        lp.call_later(0.001, fut.set_result, "r")
        assert await fut == "r"
        await asyncio.sleep(0)
        return got

    assert loop.run_until_complete(main()) == ["r"]


@pytest.mark.expect_handler_calls
def test_unretrieved_task_exception_reported(loop, exc_contexts):
    import gc

    async def bad():
        raise ZeroDivisionError

    t = loop.create_task(bad())
    loop.run_until_complete(asyncio.sleep(0.001))
    assert t.done()
    del t
    gc.collect()
    assert len(exc_contexts) == 1
    ctx = exc_contexts[0]
    assert ctx["message"] == "Task exception was never retrieved"
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert "future" in ctx
    exc_contexts.clear()


def test_tasks_interleave_one_step_per_iteration(loop):
    order = []

    async def worker(name):
        for i in range(3):
            order.append(f"{name}{i}")
            await asyncio.sleep(0)

    async def main():
        lp = asyncio.get_running_loop()
        a = lp.create_task(worker("a"))
        b = lp.create_task(worker("b"))
        lp.call_soon(order.append, "cb")
        await asyncio.gather(a, b)

    loop.run_until_complete(main())
    assert order == ["a0", "b0", "cb", "a1", "b1", "a2", "b2"]


def test_future_done_callbacks_order_and_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "cb-ctx")
    order = []

    async def main():
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: order.append(("first", var.get())))
        fut.add_done_callback(lambda f: order.append(("second", var.get())), context=ctx)
        fut.add_done_callback(lambda f: order.append(("third", var.get())))
        fut.set_result(None)
        assert order == []  # done callbacks are scheduled, not called synchronously
        await asyncio.sleep(0)
        return order

    assert loop.run_until_complete(main()) == [
        ("first", "default"),
        ("second", "cb-ctx"),
        ("third", "default"),
    ]
