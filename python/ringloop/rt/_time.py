"""Time: sleep, sleep_until, yield_now, now, timeouts and intervals, on the running
loop's clock (``loop.time()``).

``timeout``/``timeout_at`` *are* asyncio's (same object, same semantics per Python
version, builtin TimeoutError).  ``move_on_after``/``move_on_at`` wrap one and
swallow its own expiry.  ``interval`` follows tokio's ``Interval``: the first tick is
immediate, and a tick that is late by more than ``LATE`` is handled by the chosen
``MissedTickBehavior``.  All of it is per-task and loop-thread only.
"""

from __future__ import annotations

import asyncio
import enum
from asyncio import events
from typing import Awaitable, TypeVar

__all__ = [
    "now", "sleep", "sleep_until", "yield_now", "timeout", "timeout_at",
    "move_on_after", "move_on_at", "MoveOn", "with_timeout", "interval", "Interval",
    "MissedTickBehavior",
]

T = TypeVar("T")

sleep = asyncio.sleep
timeout = asyncio.timeout
timeout_at = asyncio.timeout_at


def now() -> float:
    """The running loop's clock (``loop.time()``)."""
    return events.get_running_loop().time()


async def sleep_until(deadline: float) -> None:
    """Sleep until the loop clock reaches ``deadline`` (returns at once if past)."""
    await asyncio.sleep(max(0.0, deadline - events.get_running_loop().time()))


async def yield_now() -> None:
    """Let every other ready callback run once, then continue."""
    await asyncio.sleep(0)


class MoveOn:
    """``async with move_on_after(s) as scope:`` — like ``asyncio.timeout`` but expiry
    just leaves the block: ``scope.cancelled_caught`` says whether it did."""

    __slots__ = ("_timeout", "cancelled_caught")

    def __init__(self, when: float | None) -> None:
        self._timeout = asyncio.Timeout(when)
        self.cancelled_caught = False

    def when(self) -> float | None:
        return self._timeout.when()

    def reschedule(self, when: float | None) -> None:
        self._timeout.reschedule(when)

    def expired(self) -> bool:
        return self._timeout.expired()

    async def __aenter__(self) -> MoveOn:
        await self._timeout.__aenter__()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool | None:
        try:
            return await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if not self._timeout.expired():
                raise
            self.cancelled_caught = True
            return True


def move_on_after(seconds: float | None) -> MoveOn:
    """A block that is cancelled after ``seconds`` and then simply exits."""
    loop = events.get_running_loop()
    return MoveOn(None if seconds is None else loop.time() + seconds)


def move_on_at(deadline: float | None) -> MoveOn:
    """``move_on_after`` with an absolute loop-clock deadline."""
    return MoveOn(deadline)


async def with_timeout(seconds: float | None, aw: Awaitable[T]) -> T:
    """``await aw`` with a deadline (tokio's ``time::timeout``): TimeoutError after
    ``seconds``, and ``aw`` (a coroutine, or a task/future, which is cancelled) stops."""
    async with asyncio.timeout(seconds):
        return await aw


class MissedTickBehavior(enum.Enum):
    """What an Interval does about ticks it could not deliver on time (tokio's):

    - Burst: deliver the missed ticks at once, back to back, to catch up.
    - Delay: restart the schedule from now: the next tick is ``period`` after now.
    - Skip: drop the missed ticks; the next tick is the next one on the original grid.
    """

    Burst = "burst"
    Delay = "delay"
    Skip = "skip"

    def next_deadline(self, deadline: float, now: float, period: float) -> float:
        """The deadline after a tick due at ``deadline`` was delivered late at ``now``."""
        if self is MissedTickBehavior.Burst:
            return deadline + period
        if self is MissedTickBehavior.Delay:
            return now + period
        return now + period - ((now - deadline) % period)


class Interval:
    """Ticks every ``period`` seconds of loop time: ``t = await iv.tick()`` returns the
    deadline of the tick (loop clock), or ``async for t in iv``."""

    LATE = 0.005  # a tick later than this counts as missed (tokio's 5 ms)

    def __init__(self, period: float, start: float | None,
                 missed_tick: MissedTickBehavior) -> None:
        if period <= 0:
            raise ValueError("interval period must be > 0")
        self.period = period
        self.missed_tick_behavior = missed_tick
        self._deadline = start

    async def tick(self) -> float:
        loop = events.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time()
        deadline = self._deadline
        if loop.time() < deadline:
            await asyncio.sleep(deadline - loop.time())
        self._deadline = self.next_deadline(deadline, loop.time())
        return deadline

    def next_deadline(self, deadline: float, now: float) -> float:
        if now > deadline + self.LATE:
            return self.missed_tick_behavior.next_deadline(deadline, now, self.period)
        return deadline + self.period

    def reset(self) -> None:
        """Restart the schedule: the next tick is ``period`` from now."""
        self._deadline = events.get_running_loop().time() + self.period

    def __aiter__(self) -> Interval:
        return self

    async def __anext__(self) -> float:
        return await self.tick()


def interval(period: float, *, start: float | None = None,
             missed_tick: MissedTickBehavior | str = MissedTickBehavior.Burst) -> Interval:
    """An Interval whose first tick is at ``start`` (loop clock; default: the first
    ``tick()``), then every ``period`` seconds."""
    return Interval(period, start, MissedTickBehavior(missed_tick))


Burst, Delay, Skip = MissedTickBehavior.Burst, MissedTickBehavior.Delay, MissedTickBehavior.Skip
__all__ += ["Burst", "Delay", "Skip"]
