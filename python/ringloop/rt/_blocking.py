"""spawn_blocking / to_thread: Python callables in ringloop's blocking pool.

The pool (``csrc/core/blocking.c``) is process-wide, capped (default
``min(32, cpu + 4)`` threads, like asyncio's default executor), grown on
demand; idle threads retire after 10 s.  A call returns an exact
``asyncio.Future`` from ``loop.create_future()``; its result crosses back to
the loop through the loop's *sink*: a list of finished jobs drained in one
batch, signalled on a ringloop loop through its cross-thread queue (the loop
is woken only if asleep) and on any other asyncio loop (stock, uvloop)
through an eventfd watched with ``loop.add_reader``.

Cancellation follows Tokio: cancelling the future before the job started
removes the job from the queue; once it runs it cannot be stopped, and its
result is dropped.  Closing the loop drops undelivered results; jobs still
running finish in the pool and are then discarded.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import os

from .. import _core

__all__ = ("spawn_blocking", "to_thread", "configure", "pool_stats")

_blocking_call = _core.blocking_call
_get_running_loop = asyncio.get_running_loop
_copy_context = contextvars.copy_context


def _close_hook(loop, close):
    def close_with_sink():
        if not loop.is_running():
            _detach(loop)
        return close()

    close_with_sink.__name__ = "close"
    return close_with_sink


def _detach(loop):
    sink = loop.__dict__.pop("_ringloop_sink", None)
    if sink is not None:
        if not isinstance(loop, _core.Loop):
            try:
                loop.remove_reader(sink.fileno())
            except Exception:  # noqa: BLE001 - the loop may already be half closed
                pass
        sink.close()
        loop.__dict__.pop("close", None)


def _attach(loop):
    if loop.is_closed():
        raise RuntimeError("Event loop is closed")
    if isinstance(loop, _core.Loop):
        # ringloop: results come through the loop's cross-thread queue.
        sink = _core.Sink(loop)
    else:
        sink = _core.Sink()
        loop.add_reader(sink.fileno(), sink.drain)
    loop._ringloop_sink = sink
    # Results must stop flowing into the eventfd before the loop goes away:
    # close() detaches the sink first (an instance attribute, so any loop
    # class with a __dict__ works).
    loop.close = _close_hook(loop, loop.close)
    return sink


def sink_for(loop):
    """The loop's sink, attached on first use."""
    try:
        return loop._ringloop_sink
    except AttributeError:
        return _attach(loop)


def spawn_blocking(fn, /, *args, **kwargs) -> asyncio.Future:
    """Run ``fn(*args, **kwargs)`` in the blocking pool; await the result.

    Returns an ``asyncio.Future`` of the running loop.  Cancelling it before
    the call started keeps the call from running; a running call cannot be
    interrupted (its result is discarded).
    """
    loop = _get_running_loop()
    try:
        sink = loop._ringloop_sink
    except AttributeError:
        sink = _attach(loop)
    return _blocking_call(sink, loop.create_future(), fn, args, kwargs or None, None)


async def to_thread(fn, /, *args, **kwargs):
    """Like ``asyncio.to_thread`` (a coroutine, so ``create_task`` accepts it):
    run ``fn`` in the blocking pool in a copy of the current context
    (contextvars) and return its result."""
    loop = _get_running_loop()
    try:
        sink = loop._ringloop_sink
    except AttributeError:
        sink = _attach(loop)
    return await _blocking_call(
        sink, loop.create_future(), fn, args, kwargs or None, _copy_context()
    )


def run_in_pool(loop, fn, args) -> asyncio.Future:
    """``loop.run_in_executor(None, fn, *args)`` on ringloop (no checks)."""
    try:
        sink = loop._ringloop_sink
    except AttributeError:
        sink = _attach(loop)
    return _blocking_call(sink, loop.create_future(), fn, args, None, None)


def configure(*, max_threads: int | None = None, idle_timeout: float | None = None,
              spin_us: int | None = None) -> None:
    """Set the pool's cap, idle-thread timeout (seconds) and spin time."""
    kw = {}
    if max_threads is not None:
        kw["max_threads"] = max_threads
    if idle_timeout is not None:
        kw["idle_ms"] = int(idle_timeout * 1000)
    if spin_us is not None:
        kw["spin_us"] = spin_us
    _core.blocking_configure(**kw)


def pool_stats() -> dict:
    """The pool's counters: threads alive, idle, jobs queued, the cap."""
    return _core.blocking_stats()


atexit.register(_core.blocking_shutdown)
atexit.register(_core.fs_shutdown)  # runs first: file tasks end in the pool's sinks
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core.blocking_after_fork)
    os.register_at_fork(after_in_child=_core.fs_after_fork)
