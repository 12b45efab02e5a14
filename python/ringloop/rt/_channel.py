"""MPMC channels: ``channel(capacity) -> (Sender, Receiver)``.

Owns one ``_Chan`` state per channel: the buffer, the parked senders and receivers,
and the handle counts, all under one ``threading.Lock`` (see ``_waiter`` for the
parking protocol).  Any thread may use any handle; an async waiter is woken directly
when the waker runs on the waiter's loop, through ``call_soon_threadsafe`` otherwise.

Invariants (under the lock):
- ``items`` holds accepted items, FIFO.  It may exceed ``capacity`` by the number of
  receivers that were woken for an item they have not yet taken (a send to a channel
  with a parked receiver always succeeds at once, also with capacity 0).
- ``offers`` is used only with capacity 0 (rendezvous): a parked sender's waiter whose
  ``value`` is its item; a receiver takes it and marks it ``_TAKEN``; the last
  receiver closing marks it ``_REFUSED``.  ``offers`` and ``recv_waiters`` are never
  both non-empty.
- Receivers and bounded senders are woken as notifications and retry; one that is
  cancelled (or times out) after its wake passes the wake on, so no item, slot or
  wake-up is lost, and each item goes to exactly one receiver.
- A rendezvous sender cancelled after a receiver took its item still raises
  ``CancelledError`` (the item *was* delivered); its blocking twin returns normally.
"""

from __future__ import annotations

import collections
import sys
import threading
from time import monotonic as _monotonic
from typing import Any, Generic, TypeVar

from ._closing import AsyncCloseOnExit
from ._errors import ChannelClosed, ChannelEmpty, ChannelFull
from ._waiter import (
    Waiter, async_waiter, blocking_waiter, claim_all, park_blocking, wake_all,
)

__all__ = ["channel", "Sender", "Receiver"]

T = TypeVar("T")
_NOTHING: Any = object()
_TAKEN: Any = object()
_REFUSED: Any = object()


class _Chan:
    __slots__ = ("lock", "capacity", "limit", "items", "offers", "recv_waiters",
                 "send_waiters", "senders", "receivers")

    def __init__(self, capacity: int | None) -> None:
        self.lock = threading.Lock()
        self.capacity = capacity
        self.limit = sys.maxsize if capacity is None else capacity  # the fast paths' bound
        self.items: collections.deque = collections.deque()
        self.offers: collections.deque = collections.deque()
        self.recv_waiters: collections.deque = collections.deque()
        self.send_waiters: collections.deque = collections.deque()
        self.senders = 1
        self.receivers = 1

    # -- sending ------------------------------------------------------------------

    def put(self, item, closed: bool, make_waiter) -> Waiter | None:
        """Send ``item`` now, or park: returns None when sent, else the queued waiter.
        ``make_waiter`` None means "don't wait": ChannelFull instead."""
        wake = None
        self.lock.acquire()
        try:
            if closed:
                raise ChannelClosed("this sender is closed", item)
            if self.receivers == 0:
                raise ChannelClosed("every receiver is closed", item)
            if self.recv_waiters:
                self.items.append(item)
                wake = self.recv_waiters.popleft()
                wake.woken = True
            elif len(self.items) < self.limit:
                self.items.append(item)
                return None
            elif make_waiter is None:
                raise ChannelFull("channel full", item)
            else:
                w = make_waiter()
                if self.capacity == 0:
                    w.value = item
                    self.offers.append(w)
                else:
                    self.send_waiters.append(w)
                return w
        finally:
            self.lock.release()
        wake.wake()
        return None

    def put_woken(self, w: Waiter, item) -> bool:
        """After a parked sender was woken: True if its send is complete, False to
        retry; raises ChannelClosed if its offer was refused."""
        if self.capacity != 0:
            return False
        if w.value is _REFUSED:
            raise ChannelClosed("every receiver is closed", item)
        return True

    def put_abandon(self, w: Waiter) -> bool:
        """A parked sender gives up (cancelled, timed out); True if its item was
        delivered anyway (a receiver took the offer first)."""
        nxt = None
        self.lock.acquire()
        try:
            if not w.woken:
                (self.offers if self.capacity == 0 else self.send_waiters).remove(w)
                return False
            if self.capacity == 0:
                return w.value is _TAKEN
            if self.send_waiters and len(self.items) < self.limit:
                nxt = self.send_waiters.popleft()
                nxt.woken = True
        finally:
            self.lock.release()
        if nxt is not None:
            nxt.wake()
        return False

    # -- receiving ----------------------------------------------------------------

    def take(self, closed: bool, make_waiter):
        """Receive now: returns ``(item, None)``, or ``(_NOTHING, waiter)`` parked.
        ``make_waiter`` None means "don't wait": ChannelEmpty instead."""
        wake = None
        self.lock.acquire()
        try:
            if closed:
                raise ChannelClosed("this receiver is closed")
            if self.items:
                item = self.items.popleft()
                if self.send_waiters and len(self.items) < self.limit:
                    wake = self.send_waiters.popleft()
                    wake.woken = True
            elif self.offers:
                wake = self.offers.popleft()
                item, wake.value = wake.value, _TAKEN
                wake.woken = True
            elif self.senders == 0:
                raise ChannelClosed("every sender is closed")
            elif make_waiter is None:
                raise ChannelEmpty("channel empty")
            else:
                w = make_waiter()
                self.recv_waiters.append(w)
                return _NOTHING, w
        finally:
            self.lock.release()
        if wake is not None:
            wake.wake()
        return item, None

    def take_more(self, out: list, limit: int) -> None:
        """Append up to ``limit`` more ready items (buffered, then offered) to
        ``out`` without waiting; wake as many parked senders as that made room for."""
        woken = []
        self.lock.acquire()
        try:
            items, offers = self.items, self.offers
            freed = 0  # each item taken from the buffer frees one slot
            while len(out) < limit and (items or offers):
                if items:
                    out.append(items.popleft())
                    freed += 1
                else:
                    w = offers.popleft()
                    out.append(w.value)
                    w.value, w.woken = _TAKEN, True
                    woken.append(w)
            while freed and self.send_waiters:
                w = self.send_waiters.popleft()
                w.woken = True
                woken.append(w)
                freed -= 1
        finally:
            self.lock.release()
        for w in woken:
            w.wake()

    def take_abandon(self, w: Waiter) -> None:
        nxt = None
        self.lock.acquire()
        try:
            if not w.woken:
                self.recv_waiters.remove(w)
                return
            if (self.items or self.offers) and self.recv_waiters:
                nxt = self.recv_waiters.popleft()
                nxt.woken = True
        finally:
            self.lock.release()
        if nxt is not None:
            nxt.wake()

    # -- handles ------------------------------------------------------------------

    def drop_sender(self) -> None:
        self.lock.acquire()
        try:
            self.senders -= 1
            if self.senders:
                return
            waiters = claim_all(self.recv_waiters)
        finally:
            self.lock.release()
        wake_all(waiters)

    def drop_receiver(self) -> None:
        self.lock.acquire()
        try:
            self.receivers -= 1
            if self.receivers:
                return
            self.items.clear()
            for w in self.offers:
                w.value = _REFUSED
            waiters = claim_all(self.send_waiters) + claim_all(self.offers)
        finally:
            self.lock.release()
        wake_all(waiters)


class Sender(AsyncCloseOnExit, Generic[T]):
    """The sending side of a channel; ``clone()`` for more producers, ``close()`` (or
    ``with``/``async with``) when done: receivers see end-of-stream after the last
    sender closed and the buffer drained."""

    __slots__ = ("_ch", "_closed", "__weakref__")

    def __init__(self, ch: _Chan) -> None:
        self._ch = ch
        self._closed = False

    async def send(self, item: T) -> None:
        """Send, waiting for room (or, capacity 0, for a receiver to take it).
        ChannelClosed (with ``.item``) once every receiver is closed."""
        ch = self._ch
        while True:
            w = ch.put(item, self._closed, async_waiter)
            if w is None:
                return
            try:
                await w.fut
            except BaseException:
                ch.put_abandon(w)
                raise
            if ch.put_woken(w, item):
                return

    def try_send(self, item: T) -> None:
        """Send without waiting: ChannelFull (with ``.item``) if that would wait."""
        self._ch.put(item, self._closed, None)

    def send_blocking(self, item: T, timeout: float | None = None) -> None:
        """``send`` for plain threads (never from a running loop's thread);
        TimeoutError after ``timeout`` seconds without room."""
        ch = self._ch
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            w = ch.put(item, self._closed, blocking_waiter)
            if w is None:
                return
            left = None if deadline is None else deadline - _monotonic()
            if not park_blocking(w, left):
                if ch.put_abandon(w):
                    return
                raise TimeoutError("send_blocking timed out")
            if ch.put_woken(w, item):
                return

    def clone(self) -> Sender[T]:
        ch = self._ch
        ch.lock.acquire()
        try:
            if self._closed:
                raise ChannelClosed("this sender is closed")
            ch.senders += 1
        finally:
            ch.lock.release()
        return Sender(ch)

    def close(self) -> None:
        """Close this handle (idempotent)."""
        if not self._closed:
            self._closed = True
            self._ch.drop_sender()

    def is_closed(self) -> bool:
        """True when this handle is closed or every receiver is gone."""
        return self._closed or self._ch.receivers == 0

    def __repr__(self) -> str:
        return f"<Sender {'closed' if self._closed else 'open'} {_describe(self._ch)}>"


class Receiver(AsyncCloseOnExit, Generic[T]):
    """The receiving side of a channel; each item goes to exactly one receiver.
    ``async for item in rx`` ends cleanly at end-of-stream."""

    __slots__ = ("_ch", "_closed", "__weakref__")

    def __init__(self, ch: _Chan) -> None:
        self._ch = ch
        self._closed = False

    async def recv(self) -> T:
        """The next item; ChannelClosed after every sender closed and the buffer is
        drained."""
        ch = self._ch
        while True:
            item, w = ch.take(self._closed, async_waiter)
            if w is None:
                return item
            try:
                await w.fut
            except BaseException:
                ch.take_abandon(w)
                raise

    async def recv_many(self, limit: int) -> list[T]:
        """Wait for one item, then take up to ``limit`` in all that are ready, in one
        call (fewer wake-ups for batch consumers).  ChannelClosed as ``recv``."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        out = [await self.recv()]
        if limit > 1:
            self._ch.take_more(out, limit)
        return out

    def try_recv(self) -> T:
        """Receive without waiting: ChannelEmpty if nothing is there yet."""
        return self._ch.take(self._closed, None)[0]

    def recv_blocking(self, timeout: float | None = None) -> T:
        """``recv`` for plain threads (never from a running loop's thread);
        TimeoutError after ``timeout`` seconds without an item."""
        ch = self._ch
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            item, w = ch.take(self._closed, blocking_waiter)
            if w is None:
                return item
            left = None if deadline is None else deadline - _monotonic()
            if not park_blocking(w, left):
                ch.take_abandon(w)
                if w.woken:  # woken just as the time ran out: one last try
                    try:
                        return self.try_recv()
                    except ChannelEmpty:
                        pass
                raise TimeoutError("recv_blocking timed out")

    def clone(self) -> Receiver[T]:
        ch = self._ch
        ch.lock.acquire()
        try:
            if self._closed:
                raise ChannelClosed("this receiver is closed")
            ch.receivers += 1
        finally:
            ch.lock.release()
        return Receiver(ch)

    def close(self) -> None:
        """Close this handle (idempotent); when the last receiver closes, buffered
        items are dropped and senders get ChannelClosed."""
        if not self._closed:
            self._closed = True
            self._ch.drop_receiver()

    def __len__(self) -> int:
        return len(self._ch.items)

    def __aiter__(self) -> Receiver[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.recv()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def __iter__(self):
        """Blocking iteration for plain threads (``recv_blocking`` until closed)."""
        while True:
            try:
                yield self.recv_blocking()
            except ChannelClosed:
                return

    def __repr__(self) -> str:
        return f"<Receiver {'closed' if self._closed else 'open'} {_describe(self._ch)}>"


def _describe(ch: _Chan) -> str:
    cap = "unbounded" if ch.capacity is None else f"capacity={ch.capacity}"
    return f"{cap} buffered={len(ch.items)} senders={ch.senders} receivers={ch.receivers}"


def channel(capacity: int | None) -> tuple[Sender[Any], Receiver[Any]]:
    """A multi-producer multi-consumer channel, thread-safe and usable across loops.

    ``capacity``: 0 = rendezvous (a send waits for a receiver), N = at most N buffered
    items, None = unbounded.  (Unlike ``asyncio.Queue``, 0 does *not* mean unbounded.)
    """
    if capacity is not None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int or None, not {type(capacity).__name__}")
        if capacity < 0:
            raise ValueError("capacity must be >= 0 or None")
    ch = _Chan(capacity)
    return Sender(ch), Receiver(ch)
