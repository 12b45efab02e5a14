"""oneshot(): a single value (or exception) sent once, from any thread, to one
awaiting receiver on any loop (or a plain thread).

State under one lock: ``value``/``exc`` (set once), ``sent``, ``closed_tx``,
``closed_rx`` and the parked receivers (normally at most one; every waiter is woken
when the value arrives or the sender closes unsent).
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any, Generic, TypeVar

from ._errors import ChannelClosed, ChannelEmpty
from ._waiter import async_waiter, blocking_waiter, claim_all, park, park_until, wake_all

__all__ = ["oneshot", "OneshotSender", "OneshotReceiver"]

T = TypeVar("T")


class _Slot:
    __slots__ = ("lock", "value", "exc", "sent", "closed_tx", "closed_rx", "waiters")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = self.exc = None
        self.sent = self.closed_tx = self.closed_rx = False
        self.waiters: list = []

    def finish(self, **fields) -> None:
        self.lock.acquire()
        try:
            if self.sent or self.closed_tx:
                raise ChannelClosed("oneshot already sent or closed", fields.get("value"))
            if self.closed_rx and "value" in fields:
                raise ChannelClosed("the oneshot receiver is closed", fields["value"])
            for k, v in fields.items():
                setattr(self, k, v)
            waiters = claim_all(self.waiters)
        finally:
            self.lock.release()
        wake_all(waiters)

    def poll(self):
        """Under the lock: the outcome if there is one, else raise ChannelEmpty."""
        if self.sent:
            if self.exc is not None:
                raise self.exc
            return self.value
        if self.closed_tx:
            raise ChannelClosed("the oneshot sender closed without sending")
        if self.closed_rx:
            raise ChannelClosed("this receiver is closed")
        raise ChannelEmpty("nothing sent yet")

    def poll_or_queue(self, make_waiter):
        """``(outcome, None)`` as ``poll``, or if nothing is there yet
        ``(None, w)`` with a new waiter from ``make_waiter`` queued (takes the lock)."""
        self.lock.acquire()
        try:
            try:
                return self.poll(), None
            except ChannelEmpty:
                w = make_waiter()
                self.waiters.append(w)
                return None, w
        finally:
            self.lock.release()


class OneshotSender(Generic[T]):
    __slots__ = ("_s",)

    def __init__(self, s: _Slot) -> None:
        self._s = s

    def send(self, value: T) -> None:
        """Deliver ``value`` (never waits); ChannelClosed if the receiver is closed or
        this sender was already used."""
        self._s.finish(value=value, sent=True)

    def send_exception(self, exc: BaseException) -> None:
        """Deliver an error instead of a value: the receiver's await raises it."""
        self._s.finish(exc=exc, sent=True)

    def close(self) -> None:
        """Close without sending (the receiver gets ChannelClosed); no-op after send."""
        try:
            self._s.finish(closed_tx=True)
        except ChannelClosed:
            pass

    def is_closed(self) -> bool:
        """True when the receiver is closed (a send would fail)."""
        return self._s.closed_rx


class OneshotReceiver(Generic[T]):
    """``value = await rx``; ChannelClosed if the sender closed without sending."""

    __slots__ = ("_s",)

    def __init__(self, s: _Slot) -> None:
        self._s = s

    def __await__(self):
        return self.recv().__await__()

    async def recv(self) -> T:
        s = self._s
        while True:
            value, w = s.poll_or_queue(async_waiter)
            if w is None:
                return value
            await park(w, s.lock, s.waiters)

    def try_recv(self) -> T:
        """The value if sent; ChannelEmpty if not yet."""
        with self._s.lock:
            return self._s.poll()

    def recv_blocking(self, timeout: float | None = None) -> T:
        """Wait for the value from a plain thread; TimeoutError after ``timeout``."""
        s = self._s
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            value, w = s.poll_or_queue(blocking_waiter)
            if w is None:
                return value
            park_until(w, s.lock, s.waiters, deadline, "recv_blocking")

    def close(self) -> None:
        """Refuse the value: a later ``send`` raises ChannelClosed."""
        with self._s.lock:
            self._s.closed_rx = True


def oneshot() -> tuple[OneshotSender[Any], OneshotReceiver[Any]]:
    """A one-value channel: ``tx.send(v)`` from anywhere, ``await rx`` once."""
    s = _Slot()
    return OneshotSender(s), OneshotReceiver(s)
