"""Combinators over awaitables: join, select, race, as_completed.

Every argument may be a coroutine, a task (a JoinHandle) or any future; coroutines
become tasks on the running loop.  Structured: none of these returns (or raises) while
a task it started, or a loser it was given, is still running -- losers are cancelled
*and awaited*, also when the caller itself is cancelled.  Loop-thread only.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any, Awaitable, Iterable, TypeVar

from ._errors import TaskAborted
from ._task import _consume, _wait_all

__all__ = ["join", "select", "race", "as_completed"]

T = TypeVar("T")


def _futures(aws, loop, order) -> list[asyncio.Future]:
    for aw in aws:
        if not inspect.isawaitable(aw):
            raise TypeError(f"an awaitable is required, not {type(aw).__name__}")
    futs: list[Any] = [None] * len(aws)
    for i in order:
        futs[i] = asyncio.ensure_future(aws[i], loop=loop)
    return futs


async def _cancel_and_wait(futs) -> None:
    for f in futs:
        f.cancel()
    await _wait_all(futs)
    for f in futs:
        _consume(f)


async def join(*aws: Awaitable[Any], return_exceptions: bool = False) -> tuple[Any, ...]:
    """Await all concurrently; their results as a tuple in argument order.  The first
    failure cancels (and awaits) the rest and raises ExceptionGroup of the failures
    (asyncio.TaskGroup semantics).  ``return_exceptions=True``: nothing is cancelled,
    exceptions are returned in place of results (asyncio.gather's flag)."""
    if return_exceptions:
        return tuple(await asyncio.gather(*aws, return_exceptions=True))
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(_await(aw)) for aw in aws]
    return tuple(t.result() for t in tasks)


async def _await(aw):
    return await aw


async def _first(aws, biased: bool, successful: bool):
    loop = asyncio.get_running_loop()
    n = len(aws)
    if n == 0:
        raise ValueError("needs at least one awaitable")
    order = list(range(n))
    if not biased:
        random.shuffle(order)
    futs = _futures(aws, loop, order)
    waiter = loop.create_future()

    def wake(_f) -> None:
        if not waiter.done():
            waiter.set_result(None)

    errors: dict[int, BaseException] = {}
    winner = None
    try:
        for f in futs:
            f.add_done_callback(wake)
        while winner is None:
            if not any(f.done() for i, f in enumerate(futs) if i not in errors):
                await waiter
                waiter = loop.create_future()
            for i in order if not biased else range(n):
                f = futs[i]
                if not f.done() or i in errors:
                    continue
                if successful and (f.cancelled() or f.exception() is not None):
                    errors[i] = (TaskAborted(f"awaitable {i} was cancelled")
                                 if f.cancelled() else f.exception())
                    continue
                winner = i
                break
            if winner is None and len(errors) == n:
                break
    finally:
        for f in futs:
            f.remove_done_callback(wake)
        await _cancel_and_wait([f for i, f in enumerate(futs) if i != winner])
    if winner is None:
        raise ExceptionGroup("race: every awaitable failed",
                             [errors[i] for i in range(n)])
    return winner, futs[winner].result()


async def select(*aws: Awaitable[Any], biased: bool = False) -> tuple[int, Any]:
    """The first awaitable to finish wins: returns ``(index, value)``, or re-raises its
    exception.  Every loser is cancelled and awaited before this returns.
    ``biased=False`` starts them in random order and picks at random among several
    finished at once (fairness); ``biased=True`` prefers argument order (tokio's
    ``biased;``)."""
    return await _first(aws, biased, successful=False)


async def race(*aws: Awaitable[T]) -> T:
    """The first *successful* result; failures are ignored while another may still
    succeed.  Losers are cancelled and awaited.  If all fail: ExceptionGroup."""
    return (await _first(aws, True, successful=True))[1]


class as_completed:
    """``async for task in as_completed(aws, limit=None)``: each task as it finishes
    (call ``.result()`` or await it).  ``limit`` caps how many run at once.  Used as
    ``async with as_completed(...) as it:``, leaving the block cancels and awaits
    whatever is still running."""

    def __init__(self, aws: Iterable[Awaitable[T]], *, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1 or None")
        self._todo = list(aws)
        self._limit = limit
        self._running: set[asyncio.Future] = set()
        self._done: list[asyncio.Future] = []
        self._waiter: asyncio.Future | None = None
        self._next = 0

    def _on_done(self, f: asyncio.Future) -> None:
        self._running.discard(f)
        self._done.append(f)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while self._next < len(self._todo) and (
                self._limit is None or len(self._running) < self._limit):
            f = asyncio.ensure_future(self._todo[self._next], loop=loop)
            self._todo[self._next] = None
            self._next += 1
            self._running.add(f)
            f.add_done_callback(self._on_done)

    def __aiter__(self) -> as_completed:
        return self

    async def __anext__(self) -> asyncio.Future:
        self._start()
        while not self._done:
            if not self._running:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        f = self._done.pop(0)
        self._start()
        return f

    async def aclose(self) -> None:
        """Cancel and await everything still running; drop what never started."""
        for aw in self._todo[self._next:]:
            if asyncio.iscoroutine(aw):
                aw.close()
        self._todo.clear()
        self._next = 0
        running = list(self._running)
        await _cancel_and_wait(running)

    async def __aenter__(self) -> as_completed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
