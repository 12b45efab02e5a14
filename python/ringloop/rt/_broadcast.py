"""broadcast(capacity): every receiver sees every item sent after it subscribed.

One ``_Ring`` per channel, under one lock: a fixed ring of ``capacity`` slots indexed
by sequence number (``seq % capacity``); ``next_seq`` is the next item's number and
the oldest still held is ``max(0, next_seq - capacity)``.  A receiver is a read
position.  ``send`` never waits: when the ring is full it overwrites the oldest item,
and a receiver whose position fell behind gets ``Lagged(n)`` once, then continues
from the oldest item still held (tokio's semantics).  Parked receivers are woken as
notifications on every send and on close; they re-check their position.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any, Generic, TypeVar

from ._closing import CloseOnExit
from ._errors import ChannelClosed, ChannelEmpty, Lagged
from ._waiter import async_waiter, blocking_waiter, claim_all, park, park_until

__all__ = ["broadcast", "BroadcastSender", "BroadcastReceiver"]

T = TypeVar("T")


class _Ring:
    __slots__ = ("lock", "slots", "capacity", "next_seq", "senders", "receivers", "waiters")

    def __init__(self, capacity: int) -> None:
        self.lock = threading.Lock()
        self.capacity = capacity
        self.slots: list = [None] * capacity
        self.next_seq = 0
        self.senders = 1
        self.receivers = 0
        self.waiters: list = []

    def read(self, rx: BroadcastReceiver, make_waiter):
        """Under the lock: the next item for ``rx`` (advancing it), Lagged, end of
        stream, or a parked waiter ``(None, w)``."""
        oldest = self.next_seq - self.capacity
        if rx._pos < oldest:
            skipped, rx._pos = oldest - rx._pos, oldest
            raise Lagged(skipped)
        if rx._pos < self.next_seq:
            item = self.slots[rx._pos % self.capacity]
            rx._pos += 1
            return item, None
        if rx._closed:
            raise ChannelClosed("this receiver is closed")
        if self.senders == 0:
            raise ChannelClosed("every sender is closed")
        if make_waiter is None:
            raise ChannelEmpty("nothing new")
        w = make_waiter()
        self.waiters.append(w)
        return None, w

    def wake_all(self) -> None:
        """Under the lock: take every parked waiter; the caller wakes them after."""
        return claim_all(self.waiters)


class BroadcastSender(CloseOnExit, Generic[T]):
    __slots__ = ("_r", "_closed")

    def __init__(self, r: _Ring) -> None:
        self._r = r
        self._closed = False

    def send(self, item: T) -> int:
        """Publish ``item`` to every current receiver (never waits); returns how many
        receivers there are.  ChannelClosed (with ``.item``) when there are none."""
        r = self._r
        r.lock.acquire()
        try:
            if self._closed:
                raise ChannelClosed("this sender is closed", item)
            if r.receivers == 0:
                raise ChannelClosed("no receivers", item)
            r.slots[r.next_seq % r.capacity] = item
            r.next_seq += 1
            waiters = r.wake_all() if r.waiters else ()
            n = r.receivers
        finally:
            r.lock.release()
        for w in waiters:
            w.wake()
        return n

    def subscribe(self) -> BroadcastReceiver[T]:
        """A new receiver that sees the items sent from now on."""
        return BroadcastReceiver(self._r)

    def receiver_count(self) -> int:
        return self._r.receivers

    def clone(self) -> BroadcastSender[T]:
        r = self._r
        r.lock.acquire()
        try:
            if self._closed:
                raise ChannelClosed("this sender is closed")
            r.senders += 1
        finally:
            r.lock.release()
        return BroadcastSender(r)

    def close(self) -> None:
        """Close this handle; receivers see end-of-stream once the last sender is
        closed and they have read what is buffered."""
        r = self._r
        r.lock.acquire()
        try:
            if self._closed:
                return
            self._closed = True
            r.senders -= 1
            waiters = r.wake_all() if r.senders == 0 else ()
        finally:
            r.lock.release()
        for w in waiters:
            w.wake()


class BroadcastReceiver(CloseOnExit, Generic[T]):
    """``await rx.recv()``: the next item, ``Lagged(n)`` after falling behind, or
    ChannelClosed at end of stream.  ``async for`` skips over lags."""

    __slots__ = ("_r", "_pos", "_closed")

    def __init__(self, r: _Ring) -> None:
        r.lock.acquire()
        try:
            r.receivers += 1
            self._pos = r.next_seq
        finally:
            r.lock.release()
        self._r = r
        self._closed = False

    def _read(self, make_waiter):
        """``_Ring.read`` for this receiver, under the ring's lock."""
        r = self._r
        r.lock.acquire()
        try:
            return r.read(self, make_waiter)
        finally:
            r.lock.release()

    async def recv(self) -> T:
        r = self._r
        while True:
            item, w = self._read(async_waiter)
            if w is None:
                return item
            await park(w, r.lock, r.waiters)

    def try_recv(self) -> T:
        """The next item without waiting; ChannelEmpty if there is none yet."""
        return self._read(None)[0]

    def recv_blocking(self, timeout: float | None = None) -> T:
        r = self._r
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            item, w = self._read(blocking_waiter)
            if w is None:
                return item
            park_until(w, r.lock, r.waiters, deadline, "recv_blocking")

    def subscribe(self) -> BroadcastReceiver[T]:
        """Another receiver starting at the newest position (tokio resubscribe)."""
        return BroadcastReceiver(self._r)

    def close(self) -> None:
        r = self._r
        r.lock.acquire()
        try:
            if self._closed:
                return
            self._closed = True
            r.receivers -= 1
        finally:
            r.lock.release()

    def __len__(self) -> int:
        """Items sent that this receiver has not read yet (lagged ones included)."""
        return self._r.next_seq - self._pos

    def __aiter__(self) -> BroadcastReceiver[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            try:
                return await self.recv()
            except Lagged:
                continue
            except ChannelClosed:
                raise StopAsyncIteration from None


def broadcast(capacity: int) -> tuple[BroadcastSender[Any], BroadcastReceiver[Any]]:
    """A fan-out channel holding the last ``capacity`` items (``capacity >= 1``);
    returns the sender and a first receiver (more with ``subscribe()``)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError("capacity must be an int")
    if capacity < 1:
        raise ValueError("broadcast capacity must be >= 1")
    r = _Ring(capacity)
    return BroadcastSender(r), BroadcastReceiver(r)
