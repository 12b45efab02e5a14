"""ringloop.rt: a Tokio-style runtime API for asyncio code.

Everything here works on any running asyncio loop (stock asyncio, uvloop) and is
fastest on ringloop's.  Tasks are exact ``asyncio.Task`` objects, cancellation is
``asyncio.CancelledError``, deadlines raise the builtin ``TimeoutError`` and multiple
failures an ``ExceptionGroup``, so ``gather``, ``wait_for``, ``asyncio.timeout``,
``TaskGroup`` and anyio task groups all compose with it.  Channels and sync primitives
are thread-safe and usable across loops and from plain threads (``*_blocking``).

Tasks and combinators::

    from ringloop import rt

    async def main():
        h = rt.spawn(fetch(1))                 # kept alive until done
        value = await h                        # asyncio semantics
        value = await rt.join_task(h)          # tokio: our cancel doesn't abort h
        async with rt.TaskSet(limit=10) as ts:  # TaskGroup + JoinSet
            for url in urls:
                ts.spawn(fetch(url))
        i, v = await rt.select(rx.recv(), rt.sleep(1))   # losers cancelled and awaited
        v = await rt.race(mirror_a(), mirror_b())        # first success

Time::

        async with rt.timeout(1.5):            # asyncio.timeout: TimeoutError
            ...
        async with rt.move_on_after(1.5) as scope:
            ...
        if scope.cancelled_caught: ...
        v = await rt.with_timeout(1.5, fetch(1))
        async for t in rt.interval(0.1, missed_tick=rt.Skip): ...

Channels and sync::

        tx, rx = rt.channel(100)               # 0 rendezvous, N bounded, None unbounded
        await tx.send(item); item = await rx.recv()
        threading.Thread(target=lambda: tx.send_blocking(x)).start()
        async for item in rx: ...              # ends after every sender closed
        tx1, rx1 = rt.oneshot(); tx1.send(v); v = await rx1
        btx, brx = rt.broadcast(16); wtx, wrx = rt.watch(initial)
        sem = rt.Semaphore(4); m = rt.Mutex({}); rw = rt.RwLock(cfg)
        async with m.lock() as guard: guard.value["k"] = 1

Blocking work, files and DNS off the loop (C workers and a capped thread pool)::

        digest = await rt.spawn_blocking(hashlib.sha256, data)   # also loop.run_in_executor(None, ...)
        data = await rt.fs.read_file("big.bin")                  # io_uring on the C workers
        async with await rt.fs.open("log.txt", "ab") as f: await f.write(b"line\n")
        infos = await rt.resolve("example.com", 443)             # getaddrinfo in C
"""

from __future__ import annotations

from ._broadcast import BroadcastReceiver, BroadcastSender, broadcast
from ._channel import Receiver, Sender, channel
from ._combinators import as_completed, join, race, select
from ._errors import (ChannelClosed, ChannelEmpty, ChannelFull, Lagged, RingloopError,
                      SemaphoreClosed, TaskAborted, WouldBlock)
from ._oneshot import OneshotReceiver, OneshotSender, oneshot
from ._sync import Event, Mutex, MutexGuard, Notify, Permit, RwLock, Semaphore
from ._task import (JoinHandle, TaskSet, abort, current_task, is_finished, join_task,
                    spawn)
from ._time import (Burst, Delay, Interval, MissedTickBehavior, MoveOn, Skip, interval,
                    move_on_after, move_on_at, now, sleep, sleep_until, timeout,
                    timeout_at, with_timeout, yield_now)
from ._watch import WatchReceiver, WatchSender, watch
from . import fs
from ._blocking import spawn_blocking, to_thread
from ._dns import getaddrinfo, resolve

__all__ = [
    # tasks
    "spawn", "JoinHandle", "abort", "is_finished", "join_task", "current_task", "TaskSet",
    # combinators
    "join", "select", "race", "as_completed",
    # time
    "now", "sleep", "sleep_until", "yield_now", "timeout", "timeout_at", "move_on_after",
    "move_on_at", "MoveOn", "with_timeout", "interval", "Interval", "MissedTickBehavior",
    "Burst", "Delay", "Skip",
    # channels
    "channel", "Sender", "Receiver", "oneshot", "OneshotSender", "OneshotReceiver",
    "broadcast", "BroadcastSender", "BroadcastReceiver", "watch", "WatchSender",
    "WatchReceiver",
    # sync
    "Semaphore", "Permit", "Mutex", "MutexGuard", "RwLock", "Notify", "Event",
    # errors
    "RingloopError", "ChannelClosed", "WouldBlock", "ChannelFull", "ChannelEmpty",
    "Lagged", "TaskAborted", "SemaphoreClosed",
    # C-driven work: blocking pool, files on io_uring, DNS in C
    "spawn_blocking", "to_thread", "fs", "resolve", "getaddrinfo",
]

