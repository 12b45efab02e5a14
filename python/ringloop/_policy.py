"""Deprecated asyncio policy shims: ringloop.EventLoopPolicy and install().

Loaded lazily by ringloop.__getattr__, so importing ringloop never touches
asyncio's policy API (deprecated in Python 3.14, removed in 3.16). Prefer
``ringloop.run(main())`` or ``loop_factory=ringloop.new_event_loop``.
"""

from __future__ import annotations

import asyncio
import sys
import warnings

from ._loop import EventLoop

_BasePolicy = getattr(asyncio.events, "BaseDefaultEventLoopPolicy", None) or getattr(
    asyncio.events, "_BaseDefaultEventLoopPolicy"
)


class EventLoopPolicy(_BasePolicy):
    """An asyncio event loop policy whose loops are ringloop loops."""

    def _loop_factory(self) -> EventLoop:
        return EventLoop()

    def __repr__(self) -> str:
        return "<ringloop.EventLoopPolicy>"


def install() -> None:
    """Make ringloop the default asyncio loop through the policy API."""
    if sys.version_info >= (3, 12):
        warnings.warn(
            "ringloop.install() is deprecated in favor of ringloop.run() "
            "or asyncio.run(..., loop_factory=ringloop.new_event_loop)",
            DeprecationWarning,
            stacklevel=2,
        )
    asyncio.set_event_loop_policy(EventLoopPolicy())
