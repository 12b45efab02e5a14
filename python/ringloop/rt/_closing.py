"""Closing handles: the ``with`` / ``async with`` protocol shared by channel handles.

A handle that mixes one of these in is returned by ``__enter__`` and closed (its own
``close()``) on exit; neither mixin adds instance state (``__slots__ = ()``).
"""

from __future__ import annotations

from typing import Self


class CloseOnExit:
    """``with handle:`` closes the handle on exit."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCloseOnExit(CloseOnExit):
    """``with`` and ``async with handle:`` both close the handle on exit."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
