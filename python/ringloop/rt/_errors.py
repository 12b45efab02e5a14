"""ringloop.rt's exception types (one place, imported by every rt module).

Cancellation stays ``asyncio.CancelledError``, deadlines the builtin ``TimeoutError``
and multi-task failure an ``ExceptionGroup``: only what asyncio has no word for is
defined here.  Plain data, no state; safe from any thread.
"""

from __future__ import annotations

__all__ = [
    "RingloopError", "ChannelClosed", "WouldBlock", "ChannelFull", "ChannelEmpty",
    "Lagged", "TaskAborted", "SemaphoreClosed",
]


class RingloopError(Exception):
    """Base class of ringloop.rt's own errors."""


class ChannelClosed(RingloopError):
    """The other side of a channel is gone: ``recv`` after every sender closed and the
    buffer drained, or ``send`` after every receiver closed (``item`` is the value that
    was not delivered; ``None`` for receive-side errors)."""

    def __init__(self, message: str = "channel closed", item: object = None) -> None:
        super().__init__(message)
        self.item = item


class WouldBlock(RingloopError):
    """A ``try_*`` operation could not complete without waiting."""


class ChannelFull(WouldBlock):
    """``try_send`` on a channel with no free slot and no waiting receiver."""

    def __init__(self, message: str = "channel full", item: object = None) -> None:
        super().__init__(message)
        self.item = item


class ChannelEmpty(WouldBlock):
    """``try_recv`` on a channel with nothing to receive yet."""


class Lagged(RingloopError):
    """A broadcast receiver fell behind: ``skipped`` items were overwritten before it
    read them.  The receiver continues with the oldest item still buffered."""

    def __init__(self, skipped: int) -> None:
        super().__init__(f"receiver lagged behind by {skipped} items")
        self.skipped = skipped


class TaskAborted(RingloopError):
    """``join_task(handle)``: the joined task was cancelled (aborted) instead of
    finishing.  Not a ``CancelledError``: the awaiting task itself is not cancelled."""


class SemaphoreClosed(RingloopError):
    """``Semaphore.acquire`` after (or while waiting when) the semaphore was closed."""
