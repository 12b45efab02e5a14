"""Waiters: how a thread-safe rt primitive parks an asyncio task or a plain thread.

Every channel and sync primitive keeps its state under one ``threading.Lock`` and
parks its waiters in deques of ``Waiter`` objects.  The protocol:

- a waiter is created and queued *under the primitive's lock*;
- whoever wakes it pops it from the queue and sets ``w.woken = True`` (and, for a
  hand-off, ``w.value``) *under the same lock*, then calls ``w.wake()`` *after*
  releasing the lock;
- the parked side, when cancelled or timed out, takes the lock again: if ``woken`` is
  still False it removes itself from the queue; if True, the wake (and whatever was
  handed to it) must be passed on, so nothing is lost.

``wake()`` may be called from any thread: on the waiter's own loop (the common case)
it resolves the future directly, without any cross-thread call; from another thread
or loop it goes through ``loop.call_soon_threadsafe``.  A blocking waiter (a plain
thread in ``*_blocking``) is a pre-acquired ``_thread`` lock that ``wake()`` releases.
"""

from __future__ import annotations

import _thread
import asyncio
from asyncio import events
from time import monotonic

_get_running_loop = events._get_running_loop
_new = object.__new__


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Waiter:
    """``loop``/``fut`` for a task, ``lock`` for a thread; ``woken`` and ``value``
    are written only under the owning primitive's lock.  Made by the two factories
    below, without an ``__init__`` (the waiter is on every park's path)."""

    __slots__ = ("loop", "fut", "lock", "woken", "value")

    def wake(self) -> None:
        """Resolve the waiter; any thread, never under the primitive's lock."""
        fut = self.fut
        if fut is None:
            self.lock.release()
        elif _get_running_loop() is self.loop:
            if not fut.done():
                fut.set_result(None)
        else:
            try:
                self.loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that loop is closed: its task is gone
                pass


def async_waiter() -> Waiter:
    """A waiter for the current task (call under the primitive's lock)."""
    loop = _get_running_loop()
    if loop is None:
        raise RuntimeError("no running event loop")
    w = _new(Waiter)
    w.loop = loop
    w.fut = loop.create_future()
    w.lock = None
    w.woken = False
    w.value = None
    return w


def blocking_waiter() -> Waiter:
    """A waiter for the current plain thread (call under the primitive's lock)."""
    if _get_running_loop() is not None:
        raise RuntimeError(
            "a *_blocking call would block the running event loop; await the async "
            "variant instead"
        )
    lock = _thread.allocate_lock()
    lock.acquire()
    w = _new(Waiter)
    w.loop = w.fut = w.value = None
    w.lock = lock
    w.woken = False
    return w


def park_blocking(w: Waiter, timeout: float | None) -> bool:
    """Block the calling thread until woken; False if ``timeout`` ran out first
    (the caller then takes its lock and checks ``w.woken``)."""
    if timeout is None:
        w.lock.acquire()
        return True
    return w.lock.acquire(timeout=max(0.0, timeout))



def claim_all(queue) -> list:
    """Under the primitive's lock: empty ``queue`` (list or deque) and mark every
    waiter in it woken; pass the result to ``wake_all`` after releasing the lock."""
    waiters = list(queue)
    queue.clear()
    for w in waiters:
        w.woken = True
    return waiters


def wake_all(waiters) -> None:
    """Wake every waiter (never under the primitive's lock)."""
    for w in waiters:
        w.wake()


def unpark(w: Waiter, lock, queue) -> bool:
    """After a cancel or timeout: take ``w`` off ``queue`` (under ``lock``) unless it
    was woken meanwhile; returns ``w.woken``."""
    lock.acquire()
    try:
        if not w.woken:
            queue.remove(w)
        return w.woken
    finally:
        lock.release()


async def park(w: Waiter, lock, queue) -> None:
    """Await an async waiter queued in ``queue`` under ``lock``; if cancelled, unpark
    it and re-raise (a wake that raced the cancel is simply dropped)."""
    try:
        await w.fut
    except BaseException:
        unpark(w, lock, queue)
        raise


def park_until(w: Waiter, lock, queue, deadline: float | None, what: str) -> None:
    """Block on a blocking waiter queued in ``queue`` under ``lock`` until woken or
    ``deadline`` (``time.monotonic``); TimeoutError("<what> timed out") if the time
    ran out before anyone woke it."""
    left = None if deadline is None else deadline - monotonic()
    if not park_blocking(w, left) and not unpark(w, lock, queue):
        raise TimeoutError(f"{what} timed out")
