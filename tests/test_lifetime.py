"""Object lifetimes: the loop drops its references to callbacks and their arguments
once they ran, were cancelled, or the loop was closed, and a closed loop is
collectable.  (A C loop that leaks a reference here leaks memory in production.)"""

import asyncio
import gc
import warnings
import weakref

import pytest


class Obj:
    pass


def _ref():
    o = Obj()
    return o, weakref.ref(o)


def test_args_released_after_callback_ran(loop):
    o, w = _ref()
    loop.call_soon(lambda x: None, o)
    del o
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert w() is None


def test_callback_released_after_run(loop):
    o, w = _ref()
    loop.call_soon(o.__init__)  # a bound method keeps its instance alive
    del o
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert w() is None


def test_args_released_on_cancel_of_soon_handle(loop):
    o, w = _ref()
    h = loop.call_soon(lambda x: None, o)
    del o
    h.cancel()
    gc.collect()
    # asyncio.Handle.cancel() drops callback and args at once (outside debug mode).
    assert w() is None
    del h
    loop.run_until_complete(asyncio.sleep(0))


def test_args_released_on_cancel_of_timer(loop):
    o, w = _ref()
    h = loop.call_later(3600, lambda x: None, o)
    del o
    h.cancel()
    gc.collect()
    assert w() is None


def test_args_released_after_timer_fired(loop):
    o, w = _ref()
    loop.call_later(0, lambda x: None, o)
    del o
    loop.run_until_complete(asyncio.sleep(0.005))
    gc.collect()
    assert w() is None


def test_many_cancelled_timers_release_everything(loop):
    refs = []
    for _ in range(1000):
        o, w = _ref()
        refs.append(w)
        loop.call_later(3600, lambda x: None, o).cancel()
        del o
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert all(w() is None for w in refs)


def test_close_releases_pending_callbacks_and_timers(loop):
    o, w = _ref()
    loop.call_soon(lambda x: None, o)
    loop.call_later(3600, lambda x: None, o)
    loop.call_at(loop.time() + 7200, lambda x: None, o)
    del o
    loop.close()
    gc.collect()
    assert w() is None


def test_threadsafe_callback_released(loop):
    o, w = _ref()
    loop.call_soon_threadsafe(lambda x: None, o)
    del o
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert w() is None


def test_close_releases_pending_threadsafe_callbacks(loop):
    import threading

    o, w = _ref()
    th = threading.Thread(target=lambda x: loop.call_soon_threadsafe(lambda y: None, x), args=(o,))
    del o
    th.start()
    th.join()
    del th
    loop.close()
    gc.collect()
    assert w() is None


def test_task_result_released(loop):
    async def make():
        return Obj()

    task = loop.create_task(make())
    loop.run_until_complete(task)
    w = weakref.ref(task.result())
    del task
    gc.collect()
    assert w() is None


def test_closed_loop_is_collectable(loop_factory):
    lp = loop_factory()

    async def main():
        await asyncio.sleep(0.001)
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(10)))
        asyncio.get_running_loop().call_later(3600, lambda: None)

    lp.run_until_complete(main())
    lp.close()
    w = weakref.ref(lp)
    del lp
    gc.collect()
    assert w() is None


def test_unclosed_loop_warns_and_is_collectable(loop_factory):
    lp = loop_factory()
    lp.run_until_complete(asyncio.sleep(0))
    w = weakref.ref(lp)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        del lp
        gc.collect()
        messages = [str(r.message) for r in rec if issubclass(r.category, ResourceWarning)]
    # The warning's `source` may keep the loop alive while the record exists.
    del rec
    gc.collect()
    assert any("unclosed event loop" in m for m in messages), messages
    assert w() is None


def test_finalizer_scheduling_during_close_gets_closed_error(loop):
    # Dropping queued callbacks at close() may run finalizers that try to schedule
    # more work: they get RuntimeError("Event loop is closed"), nothing crashes.
    seen = []

    class Scheduler:
        def __del__(self):
            try:
                loop.call_soon(lambda: None)
            except RuntimeError as exc:
                seen.append(str(exc))

    loop.call_soon(lambda x: None, Scheduler())
    loop.call_later(3600, lambda x: None, Scheduler())
    loop.close()
    gc.collect()
    assert seen == ["Event loop is closed", "Event loop is closed"]


def test_finalizer_scheduling_while_running(loop):
    # A callback's argument whose finalizer schedules work while the loop runs.
    calls = []

    class Scheduler:
        def __del__(self):
            loop.call_soon(calls.append, "from-del")

    loop.call_soon(lambda x: None, Scheduler())
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["from-del"]


def test_callback_cancelling_its_own_handle(loop):
    o, w = _ref()
    handles = []
    calls = []

    def cb(x):
        handles[0].cancel()
        calls.append(type(x).__name__)

    handles.append(loop.call_soon(cb, o))
    del o
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["Obj"]
    assert handles[0].cancelled()
    gc.collect()
    assert w() is None


@pytest.mark.parametrize("kind", ["soon", "later", "threadsafe"])
def test_cycle_through_handle_is_collectable(loop, kind):
    # The classic pattern: an object keeps its handle, the handle's callback is a
    # bound method of the object.  After the callback ran, only the cycle is left and
    # the garbage collector must be able to free it (handles take part in GC).
    class Owner:
        def __init__(self):
            if kind == "soon":
                self.handle = loop.call_soon(self.cb)
            elif kind == "later":
                self.handle = loop.call_later(0, self.cb)
            else:
                self.handle = loop.call_soon_threadsafe(self.cb)

        def cb(self):
            pass

    o = Owner()
    w = weakref.ref(o)
    del o
    loop.run_until_complete(asyncio.sleep(0.002))
    gc.collect()
    assert w() is None


def test_cycle_through_handle_args_is_collectable(loop):
    class Owner:
        pass

    o = Owner()
    o.handle = loop.call_soon(lambda x: None, o)
    w = weakref.ref(o)
    del o
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert w() is None
