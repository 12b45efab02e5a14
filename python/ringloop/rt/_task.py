"""Tasks: spawn (strong-referenced asyncio tasks), tokio-style helpers on a task
handle, and TaskSet (tokio JoinSet x asyncio TaskGroup).

A JoinHandle *is* an exact ``asyncio.Task`` (``JoinHandle`` is an alias for typing):
measured, a Task subclass costs ~40 % more per spawn+await on ringloop (it leaves the
C Task's exact-type fast paths) while an exact task keeps every asyncio API working
unchanged.  The tokio operations are functions: ``abort(h)``, ``is_finished(h)``,
``join_task(h)``.

``spawn`` keeps every task in a set stored on its loop (``loop._rt_tasks`` =
``(set, set.discard)``) until it is done (the loop itself keeps only weak references,
cpython#88831); a loop closed with tasks still pending takes them to the garbage
collector with it, as asyncio does.  An exception nobody retrieved is reported by
asyncio's own Task finaliser through ``loop.call_exception_handler``.  Everything here
runs on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio import events
from collections import deque
from typing import Any, Coroutine, Generic, TypeVar

from .._core import _rt_spawn
from ._errors import TaskAborted

__all__ = ["spawn", "JoinHandle", "abort", "is_finished", "join_task", "current_task",
           "TaskSet"]

T = TypeVar("T")
JoinHandle = asyncio.Task

_get_running_loop = events._get_running_loop
current_task = asyncio.current_task


# spawn(coro, *, name=None, context=None) -> asyncio.Task: run ``coro`` as a task on
# the running loop (any asyncio loop) through ``loop.create_task`` and keep it alive
# until it is done.  In C (csrc/py/rt_spawn.c).  Measured (callgrind, ringloop, a
# trivial task, spawn+await vs create_task+await): +22 % instructions in C, +30 % as
# a Python function; what remains is the done callback, which the C Task schedules
# through loop.call_soon like any other.
spawn = _rt_spawn


def abort(handle: asyncio.Future, msg: Any = None) -> bool:
    """Request cancellation of a task (tokio ``JoinHandle::abort``); False if done."""
    return handle.cancel(msg)


def is_finished(handle: asyncio.Future) -> bool:
    return handle.done()


async def join_task(handle: asyncio.Future[T]) -> T:
    """Wait for a task's outcome, tokio-style: cancelling the *awaiting* task does not
    abort ``handle``, and a ``handle`` that was aborted raises TaskAborted (not
    CancelledError)."""
    if not handle.done():
        waiter = asyncio.get_running_loop().create_future()

        def wake(_handle: asyncio.Future) -> None:
            if not waiter.done():
                waiter.set_result(None)

        handle.add_done_callback(wake)
        try:
            await waiter  # cancelling us cancels only this waiter, never ``handle``
        finally:
            handle.remove_done_callback(wake)
    if handle.cancelled():
        raise TaskAborted(f"{handle!r} was aborted")
    return handle.result()


# --------------------------------------------------------------------------- TaskSet


class TaskSet(Generic[T]):
    """A set of tasks: tokio's JoinSet, and an async context manager like asyncio's
    TaskGroup.

    - ``spawn(coro)`` adds a member (a JoinHandle); ``limit=n`` runs at most n members
      at once (the rest wait, in spawn order, before starting their coroutine).
    - ``await ts.join_next()``: the next finished member (completion order), removed
      from the set, or None when the set is empty; ``async for h in ts`` likewise.
    - ``await ts.join_all()``: every result in spawn order; failures (and aborted
      members, as TaskAborted) raise an ExceptionGroup.
    - ``abort_all()``; ``await shutdown()`` = abort_all and wait for every member.
    - ``async with TaskSet() as ts:`` waits for every member on exit; the first failure
      cancels the other members and the body, and the failures are raised as an
      ExceptionGroup -- asyncio.TaskGroup's exact semantics (it *is* one inside).
    """

    def __init__(self, *, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1 or None")
        self._limit = None if limit is None else asyncio.Semaphore(limit)
        self._members: list[asyncio.Task] = []  # spawn order, not yet joined
        self._finished: deque[asyncio.Task] = deque()
        self._waiter: asyncio.Future | None = None
        self._group: asyncio.TaskGroup | None = None

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None,
              context: contextvars.Context | None = None) -> asyncio.Task[T]:
        if self._limit is not None:
            coro = _limited(self._limit, coro)
        if self._group is not None:
            # the TaskGroup holds its tasks strongly until they are done
            task = self._group.create_task(coro, name=name, context=context)
        else:
            task = spawn(coro, name=name, context=context)
        self._members.append(task)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task) -> None:
        self._finished.append(task)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __len__(self) -> int:
        return len(self._members)

    def is_empty(self) -> bool:
        return not self._members

    async def join_next(self) -> asyncio.Task[T] | None:
        """The next member to finish (already done; call ``.result()``), or None when
        the set is empty.  Cancelling the caller leaves the members running."""
        while not self._finished:
            if not self._members:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        task = self._finished.popleft()
        self._members.remove(task)
        return task

    def try_join_next(self) -> asyncio.Task[T] | None:
        """A finished member if there is one now, else None."""
        if not self._finished:
            return None
        task = self._finished.popleft()
        self._members.remove(task)
        return task

    def __aiter__(self) -> TaskSet[T]:
        return self

    async def __anext__(self) -> asyncio.Task[T]:
        task = await self.join_next()
        if task is None:
            raise StopAsyncIteration
        return task

    async def join_all(self) -> list[T]:
        """Wait for every member; their results in spawn order.  If any failed or was
        aborted, raise ExceptionGroup of those errors (aborts as TaskAborted)."""
        members = list(self._members)
        while await self.join_next() is not None:
            pass
        errors: list[BaseException] = []
        for t in members:
            if t.cancelled():
                errors.append(TaskAborted(f"{t.get_name()} was aborted"))
            elif t.exception() is not None:
                errors.append(t.exception())
        if errors:
            raise BaseExceptionGroup("TaskSet.join_all: members failed", errors)
        return [t.result() for t in members]

    def abort_all(self) -> None:
        for t in self._members:
            t.cancel()

    async def shutdown(self) -> None:
        """Abort every member and wait until all of them are done (removing them)."""
        self.abort_all()
        pending = list(self._members)
        await _wait_all(pending)
        for t in pending:
            _consume(t)
        self._members.clear()
        self._finished.clear()

    async def __aenter__(self) -> TaskSet[T]:
        if self._group is not None:
            raise RuntimeError("TaskSet is already entered")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, et, exc, tb):
        group = self._group
        try:
            return await group.__aexit__(et, exc, tb)
        finally:
            self._group = None
            for t in self._members:
                _consume(t)  # the group reported them already
            self._members.clear()
            self._finished.clear()

    def __repr__(self) -> str:
        return f"<TaskSet members={len(self._members)} finished={len(self._finished)}>"


async def _limited(sem: asyncio.Semaphore, coro):
    try:
        await sem.acquire()
    except BaseException:
        coro.close()  # never started: no "never awaited" warning
        raise
    try:
        return await coro
    finally:
        sem.release()


def _consume(fut: asyncio.Future) -> None:
    """Mark a done future's exception as retrieved."""
    if fut.done() and not fut.cancelled():
        fut.exception()


async def _wait_all(futs) -> None:
    """Wait until every future is done, even if this task is cancelled meanwhile (the
    cancellation is re-raised after): structured cleanup, nothing left running."""
    cancelled = False
    pending = [f for f in futs if not f.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
        pending = [f for f in pending if not f.done()]
    if cancelled:
        raise asyncio.CancelledError
