"""Thread-safe, cross-loop synchronisation: Semaphore (+ Permit), Mutex (+ MutexGuard),
RwLock, Notify, Event.

Each primitive keeps its state under one ``threading.Lock`` and parks waiters per
``_waiter``'s protocol, so a task on loop A is woken correctly by a plain thread or a
task on loop B, and the same-loop case makes no cross-thread call.  The Semaphore is
fair (FIFO, tokio's): permits are handed to the head waiter in ``release``; a waiter
cancelled after being handed permits gives them back, so no permit is lost.  Mutex
and RwLock are built on it (a mutex is one permit; a writer takes all of an RwLock's
permits, a reader one).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Generic, TypeVar

from ._errors import SemaphoreClosed
from ._waiter import (
    Waiter, async_waiter, blocking_waiter, claim_all, park, park_blocking, unpark, wake_all,
)

__all__ = ["Semaphore", "Permit", "Mutex", "MutexGuard", "RwLock", "Notify", "Event"]

T = TypeVar("T")
_CLOSED: Any = object()


# --------------------------------------------------------------------------- Semaphore


class Semaphore:
    """A fair counting semaphore.  ``permit = await sem.acquire(n)`` /
    ``permit.release()``, or ``async with sem:``; ``sem.release()`` also returns one
    permit, as in asyncio."""

    def __init__(self, permits: int) -> None:
        if permits < 0:
            raise ValueError("permits must be >= 0")
        self._lock = threading.Lock()
        self._permits = permits
        self._waiters: collections.deque[Waiter] = collections.deque()
        self._closed = False

    # Under the lock: hand permits to waiters from the head while they fit.
    def _grant(self) -> list[Waiter]:
        woken = []
        waiters = self._waiters
        while waiters and waiters[0].value <= self._permits:
            w = waiters.popleft()
            self._permits -= w.value
            w.woken = True
            woken.append(w)
        return woken

    def _begin(self, n: int, make_waiter) -> Waiter | None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self._lock.acquire()
        try:
            if self._closed:
                raise SemaphoreClosed("semaphore closed")
            if not self._waiters and self._permits >= n:
                self._permits -= n
                return None
            if make_waiter is None:
                return _CLOSED  # "would wait"
            w = make_waiter()
            w.value = n
            self._waiters.append(w)
            return w
        finally:
            self._lock.release()

    def _abandon(self, w: Waiter, n: int) -> bool:
        """A waiter gives up; True if it had been granted its permits (now returned)."""
        self._lock.acquire()
        try:
            if w.woken:
                if w.value is _CLOSED:
                    return False
                self._permits += n
                granted = True
            else:
                self._waiters.remove(w)
                granted = False
            woken = self._grant()
        finally:
            self._lock.release()
        for x in woken:
            x.wake()
        return granted

    async def acquire(self, n: int = 1) -> Permit:
        """Wait for ``n`` permits (FIFO); SemaphoreClosed if closed meanwhile."""
        w = self._begin(n, async_waiter)
        if w is not None:
            try:
                await w.fut
            except BaseException:
                self._abandon(w, n)
                raise
            if w.value is _CLOSED:
                raise SemaphoreClosed("semaphore closed")
        return Permit(self, n)

    def try_acquire(self, n: int = 1) -> Permit | None:
        """``n`` permits now, or None if that would wait."""
        return None if self._begin(n, None) is _CLOSED else Permit(self, n)

    def acquire_blocking(self, n: int = 1, timeout: float | None = None) -> Permit:
        """``acquire`` for plain threads; TimeoutError after ``timeout`` seconds."""
        w = self._begin(n, blocking_waiter)
        if w is not None:
            if not park_blocking(w, timeout) and not self._abandon(w, n):
                raise TimeoutError("acquire_blocking timed out")
            if w.value is _CLOSED:
                raise SemaphoreClosed("semaphore closed")
        return Permit(self, n)

    def release(self, n: int = 1) -> None:
        """Return ``n`` permits (also how a Permit is released)."""
        self.add_permits(n)

    def add_permits(self, n: int) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        self._lock.acquire()
        try:
            self._permits += n
            woken = self._grant()
        finally:
            self._lock.release()
        for w in woken:
            w.wake()

    def close(self) -> None:
        """Fail every waiting and future ``acquire`` with SemaphoreClosed; permits
        already held stay valid."""
        self._lock.acquire()
        try:
            self._closed = True
            for w in self._waiters:
                w.value = _CLOSED
            waiters = claim_all(self._waiters)
        finally:
            self._lock.release()
        wake_all(waiters)

    def is_closed(self) -> bool:
        return self._closed

    @property
    def available_permits(self) -> int:
        return self._permits

    def locked(self) -> bool:
        """True if an ``acquire()`` of one permit would wait (asyncio's name)."""
        return self._permits < 1 or bool(self._waiters)

    async def __aenter__(self) -> Permit:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (f"<Semaphore permits={self._permits} waiters={len(self._waiters)}"
                f"{' closed' if self._closed else ''}>")


class Permit:
    """Permits held from a Semaphore; ``release()`` (idempotent) or use as a
    context manager; ``forget()`` drops them without returning them."""

    __slots__ = ("_sem", "n")

    def __init__(self, sem: Semaphore, n: int) -> None:
        self._sem = sem
        self.n = n

    def release(self) -> None:
        sem, self._sem = self._sem, None
        if sem is not None:
            sem.add_permits(self.n)

    def forget(self) -> None:
        self._sem = None

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- Mutex


class MutexGuard(Generic[T]):
    """Proof of holding a Mutex (or an RwLock's write side): ``guard.value`` reads and
    writes the protected value; ``release()`` (idempotent) or leave the ``with``."""

    __slots__ = ("_owner", "_permit")

    def __init__(self, owner, permit: Permit) -> None:
        self._owner = owner
        self._permit = permit

    @property
    def value(self) -> T:
        self._check()
        return self._owner._value

    @value.setter
    def value(self, v: T) -> None:
        self._check()
        self._owner._value = v

    def _check(self) -> None:
        if self._permit._sem is None:
            raise RuntimeError("the lock guard was released")

    def release(self) -> None:
        self._permit.release()

    def __enter__(self) -> MutexGuard[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> MutexGuard[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _Acquire:
    """What ``Mutex.lock()`` / ``RwLock.read()`` / ``write()`` return: await it for the
    guard, or ``async with`` it to hold the lock for a block."""

    __slots__ = ("_make", "_guard")

    def __init__(self, make) -> None:
        self._make = make
        self._guard = None

    def __await__(self):
        return self._make().__await__()

    async def __aenter__(self):
        self._guard = await self._make()
        return self._guard if not isinstance(self._guard, _ReadGuard) else self._guard.value

    async def __aexit__(self, *exc: object) -> None:
        self._guard.release()


class Mutex(Generic[T]):
    """An async mutex owning an optional value (tokio's ``Mutex<T>``), fair FIFO and
    thread-safe.  ``async with m.lock() as guard: guard.value += 1`` (or
    ``async with m as guard``); ``guard = await m.lock()`` ... ``guard.release()``."""

    def __init__(self, value: T | None = None) -> None:
        self._value = value
        self._sem = Semaphore(1)

    def lock(self) -> _Acquire:
        return _Acquire(self._lock)

    async def _lock(self) -> MutexGuard[T]:
        return MutexGuard(self, await self._sem.acquire())

    def try_lock(self) -> MutexGuard[T] | None:
        """The guard now, or None if the mutex is held."""
        p = self._sem.try_acquire()
        return None if p is None else MutexGuard(self, p)

    def lock_blocking(self, timeout: float | None = None) -> MutexGuard[T]:
        """``lock`` for plain threads; TimeoutError after ``timeout`` seconds."""
        return MutexGuard(self, self._sem.acquire_blocking(timeout=timeout))

    def locked(self) -> bool:
        return self._sem.available_permits == 0

    async def __aenter__(self) -> MutexGuard[T]:
        self._held = await self._lock()
        return self._held

    async def __aexit__(self, *exc: object) -> None:
        self._held.release()


class _ReadGuard:
    __slots__ = ("_owner", "_permit")

    def __init__(self, owner, permit: Permit) -> None:
        self._owner = owner
        self._permit = permit

    @property
    def value(self):
        return self._owner._value

    def release(self) -> None:
        self._permit.release()


class RwLock(Generic[T]):
    """Many readers or one writer, fair FIFO (a waiting writer holds back new
    readers).  ``async with rw.read() as value``; ``async with rw.write() as guard:
    guard.value = ...``."""

    MAX_READERS = 1 << 30

    def __init__(self, value: T | None = None) -> None:
        self._value = value
        self._sem = Semaphore(self.MAX_READERS)

    def read(self) -> _Acquire:
        return _Acquire(self._read)

    def write(self) -> _Acquire:
        return _Acquire(self._write)

    async def _read(self) -> _ReadGuard:
        return _ReadGuard(self, await self._sem.acquire(1))

    async def _write(self) -> MutexGuard[T]:
        return MutexGuard(self, await self._sem.acquire(self.MAX_READERS))

    def try_read(self) -> _ReadGuard | None:
        p = self._sem.try_acquire(1)
        return None if p is None else _ReadGuard(self, p)

    def try_write(self) -> MutexGuard[T] | None:
        p = self._sem.try_acquire(self.MAX_READERS)
        return None if p is None else MutexGuard(self, p)


# --------------------------------------------------------------------------- Notify

_ONE, _ALL = "one", "all"


class Notify:
    """tokio's Notify: ``notify_one()`` wakes one waiter or, with none waiting, stores
    one permit that the next ``notified()`` consumes at once; ``notify_waiters()``
    wakes every current waiter and stores nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._permit = False
        self._waiters: collections.deque[Waiter] = collections.deque()

    def _begin(self, make_waiter) -> Waiter | None:
        self._lock.acquire()
        try:
            if self._permit:
                self._permit = False
                return None
            w = make_waiter()
            self._waiters.append(w)
            return w
        finally:
            self._lock.release()

    def _abandon(self, w: Waiter) -> bool:
        """True if the waiter had been notified (a notify_one is then passed on)."""
        nxt = None
        self._lock.acquire()
        try:
            if not w.woken:
                self._waiters.remove(w)
                return False
            if w.value is _ONE:
                if self._waiters:
                    nxt = self._waiters.popleft()
                    nxt.woken, nxt.value = True, _ONE
                else:
                    self._permit = True
        finally:
            self._lock.release()
        if nxt is not None:
            nxt.wake()
        return True

    async def notified(self) -> None:
        w = self._begin(async_waiter)
        if w is not None:
            try:
                await w.fut
            except BaseException:
                self._abandon(w)
                raise

    def notified_blocking(self, timeout: float | None = None) -> bool:
        """Wait from a plain thread; False if ``timeout`` ran out first."""
        w = self._begin(blocking_waiter)
        return w is None or park_blocking(w, timeout) or unpark(w, self._lock, self._waiters)

    def notify_one(self) -> None:
        self._lock.acquire()
        try:
            if not self._waiters:
                self._permit = True
                return
            w = self._waiters.popleft()
            w.woken, w.value = True, _ONE
        finally:
            self._lock.release()
        w.wake()

    def notify_waiters(self) -> None:
        self._lock.acquire()
        try:
            waiters = list(self._waiters)
            self._waiters.clear()
            for w in waiters:
                w.woken, w.value = True, _ALL
        finally:
            self._lock.release()
        for w in waiters:
            w.wake()


# --------------------------------------------------------------------------- Event


class Event:
    """A thread-safe, loop-independent ``asyncio.Event``: ``set`` from any thread or
    loop wakes every waiter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = False
        self._waiters: list[Waiter] = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._lock.acquire()
        try:
            self._flag = True
            waiters = claim_all(self._waiters)
        finally:
            self._lock.release()
        wake_all(waiters)

    def clear(self) -> None:
        self._flag = False

    def _begin(self, make_waiter) -> Waiter | None:
        self._lock.acquire()
        try:
            if self._flag:
                return None
            w = make_waiter()
            self._waiters.append(w)
            return w
        finally:
            self._lock.release()

    async def wait(self) -> bool:
        w = self._begin(async_waiter)
        if w is not None:
            await park(w, self._lock, self._waiters)
        return True

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Wait from a plain thread; False if ``timeout`` ran out first."""
        w = self._begin(blocking_waiter)
        return w is None or park_blocking(w, timeout) or unpark(w, self._lock, self._waiters)
