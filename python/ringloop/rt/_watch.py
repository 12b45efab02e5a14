"""watch(initial): one value that changes over time; receivers wait for changes.

One ``_Cell`` per channel, under one lock: ``value``, a ``version`` counter bumped by
every send, the handle counts and parked receivers (woken as notifications on every
send and when the last sender closes).  A receiver remembers the version it has seen;
``changed()`` returns once a newer version exists (marking it seen), and raises
ChannelClosed only when the sender side is closed and nothing unseen is left.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Generic, TypeVar

from ._closing import CloseOnExit
from ._errors import ChannelClosed
from ._waiter import async_waiter, claim_all, park, wake_all

__all__ = ["watch", "WatchSender", "WatchReceiver"]

T = TypeVar("T")


class _Cell:
    __slots__ = ("lock", "value", "version", "senders", "receivers", "waiters")

    def __init__(self, value) -> None:
        self.lock = threading.Lock()
        self.value = value
        self.version = 0
        self.senders = 1
        self.receivers = 0
        self.waiters: list = []

    def publish(self, fn) -> None:
        self.lock.acquire()
        try:
            self.value = fn(self.value)
            self.version += 1
            waiters = claim_all(self.waiters)
        finally:
            self.lock.release()
        wake_all(waiters)


class WatchSender(CloseOnExit, Generic[T]):
    __slots__ = ("_c", "_closed")

    def __init__(self, c: _Cell) -> None:
        self._c = c
        self._closed = False

    def send(self, value: T) -> None:
        """Replace the value and wake every receiver waiting in ``changed()``."""
        if self._closed:
            raise ChannelClosed("this sender is closed", value)
        self._c.publish(lambda _old: value)

    def send_modify(self, fn: Callable[[T], T]) -> None:
        """Replace the value with ``fn(old)`` atomically (``fn`` runs under the lock:
        keep it short, and do not touch this channel from it)."""
        if self._closed:
            raise ChannelClosed("this sender is closed")
        self._c.publish(fn)

    def borrow(self) -> T:
        return self._c.value

    def subscribe(self) -> WatchReceiver[T]:
        """A receiver that has seen the current value."""
        return WatchReceiver(self._c)

    def receiver_count(self) -> int:
        return self._c.receivers

    def clone(self) -> WatchSender[T]:
        with self._c.lock:
            self._c.senders += 1
        return WatchSender(self._c)

    def close(self) -> None:
        c = self._c
        c.lock.acquire()
        try:
            if self._closed:
                return
            self._closed = True
            c.senders -= 1
            waiters = claim_all(c.waiters) if c.senders == 0 else []
        finally:
            c.lock.release()
        wake_all(waiters)


class WatchReceiver(Generic[T]):
    __slots__ = ("_c", "_seen", "_closed")

    def __init__(self, c: _Cell) -> None:
        c.lock.acquire()
        try:
            c.receivers += 1
            self._seen = c.version
        finally:
            c.lock.release()
        self._c = c
        self._closed = False

    def borrow(self) -> T:
        """The current value; does not mark it seen."""
        return self._c.value

    def borrow_and_update(self) -> T:
        """The current value, marked seen."""
        with self._c.lock:
            self._seen = self._c.version
            return self._c.value

    def has_changed(self) -> bool:
        """True if a value newer than the last one seen exists; ChannelClosed if the
        sender side is closed."""
        c = self._c
        if c.senders == 0:
            raise ChannelClosed("every sender is closed")
        return c.version != self._seen

    async def changed(self) -> None:
        """Wait until a value newer than the last one seen arrives, and mark it seen.
        ChannelClosed once every sender is closed and nothing new is left."""
        c = self._c
        while True:
            c.lock.acquire()
            try:
                if c.version != self._seen:
                    self._seen = c.version
                    return
                if c.senders == 0:
                    raise ChannelClosed("every sender is closed")
                w = async_waiter()
                c.waiters.append(w)
            finally:
                c.lock.release()
            await park(w, c.lock, c.waiters)

    async def wait_for(self, predicate: Callable[[T], bool]) -> T:
        """The first value (the current one included) for which ``predicate`` holds."""
        while True:
            value = self.borrow_and_update()
            if predicate(value):
                return value
            await self.changed()

    def clone(self) -> WatchReceiver[T]:
        r = WatchReceiver(self._c)
        r._seen = self._seen
        return r

    def close(self) -> None:
        with self._c.lock:
            if not self._closed:
                self._closed = True
                self._c.receivers -= 1

    def __aiter__(self):
        """Yields the current value, then each new one (values replaced faster than
        the loop reads them are skipped: a watch holds only the latest)."""
        return self._iterate()

    async def _iterate(self):
        yield self.borrow_and_update()
        while True:
            try:
                await self.changed()
            except ChannelClosed:
                return
            yield self.borrow_and_update()


def watch(initial: Any) -> tuple[WatchSender[Any], WatchReceiver[Any]]:
    """A single-value channel: ``tx.send(v)``, ``await rx.changed()``, ``rx.borrow()``."""
    c = _Cell(initial)
    return WatchSender(c), WatchReceiver(c)
