"""ringloop: a drop-in asyncio event loop on Linux io_uring.

    import asyncio, ringloop
    ringloop.run(main())                                   # or:
    asyncio.run(main(), loop_factory=ringloop.new_event_loop)
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Callable, Coroutine, TypeVar

from ._loop import EventLoop

__all__ = ["EventLoop", "new_event_loop", "run", "Runner"]
__version__ = "0.1.0"

_T = TypeVar("_T")


def new_event_loop() -> EventLoop:
    """A new ringloop event loop: the zero-argument loop factory for
    asyncio.run, asyncio.Runner, uvicorn --loop, anyio and pytest."""
    return EventLoop()


def run(
    main: Coroutine[Any, Any, _T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> _T:
    """asyncio.run() on a ringloop loop."""
    factory = loop_factory or new_event_loop
    if sys.version_info >= (3, 12):
        return asyncio.run(main, debug=debug, loop_factory=factory)
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError(
            "ringloop.run() cannot be called from a running event loop"
        )
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


class Runner(asyncio.Runner):
    """asyncio.Runner whose default loop factory is ringloop's."""

    def __init__(
        self,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        super().__init__(debug=debug, loop_factory=loop_factory or new_event_loop)


def __getattr__(name: str) -> Any:
    # The policy shims load lazily so that importing ringloop never touches
    # asyncio's deprecated policy API.
    if name in ("EventLoopPolicy", "install"):
        if sys.version_info >= (3, 16):
            raise AttributeError(
                f"ringloop.{name} is not available on Python 3.16+, where "
                "asyncio policies were removed; use ringloop.run() or "
                "loop_factory=ringloop.new_event_loop"
            )
        from . import _policy

        return getattr(_policy, name)
    raise AttributeError(f"module 'ringloop' has no attribute {name!r}")
