"""EventLoop: ringloop's asyncio event loop.

The C half (``ringloop._core.Loop``) owns the io_uring ring, the ready queue,
the timers and the cross-thread queue, and implements the hot methods. This
file adds asyncio's cold paths. Where the running Python's own asyncio already
implements a cold path on top of the loop's public methods and a few private
attributes, the method is taken from ``asyncio.BaseEventLoop`` as is, so its
semantics follow each Python version exactly (exception handling, async
generator hooks, executors, task factories).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import warnings
import weakref
from asyncio import base_events, coroutines, events, format_helpers, futures

from . import _core
from ._datagram import DatagramMixin
from ._network import NetworkMixin
from ._pipes import PipesMixin
from ._signals import SignalsMixin
from ._subprocess import SubprocessMixin
from ._sockets import SocketsMixin

__all__ = ("EventLoop",)

_Base = asyncio.BaseEventLoop
logger = logging.getLogger("asyncio")

# Loop methods that later work will provide; until then they raise a clear
# NotImplementedError naming the method and the missing feature.
_NOT_YET = {
    "TLS": ("start_tls",),
}


def _set_exception_unless_cancelled(fut, exc: BaseException) -> None:
    if not fut.cancelled():
        fut.set_exception(exc)


def _not_implemented(name: str, feature: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(
            f"ringloop does not implement loop.{name}() yet ({feature} "
            f"support is not built); use asyncio's default loop for it"
        )

    method.__name__ = method.__qualname__ = name
    return method


class EventLoop(SignalsMixin, SubprocessMixin, PipesMixin, DatagramMixin,
                NetworkMixin, SocketsMixin, _core.Loop,
                asyncio.AbstractEventLoop):
    """An asyncio event loop whose I/O runs on Linux io_uring."""

    def __init__(self) -> None:
        self.slow_callback_duration = 0.1
        self._exception_handler = None
        self._default_executor = None
        self._executor_shutdown_called = False
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._transports = weakref.WeakValueDictionary()  # fd -> transport
        self._acceptors = {}  # listening fd -> _core.Acceptor
        self._unix_server_sockets = {}  # socket -> inode (3.13 cleanup)
        self._signal_handlers = {}  # signal number -> events.Handle
        self._rl_children = {}  # pidfd -> subprocess transport
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self.set_debug(coroutines._is_debug_mode())

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # -- running and stopping -------------------------------------------

    def run_forever(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            events._set_running_loop(self)
            self._run()
        finally:
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._close_core()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    def __del__(self, _warn=warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    run_until_complete = _Base.run_until_complete
    set_debug = _Base.set_debug
    _check_closed = _Base._check_closed
    _check_running = _Base._check_running
    _check_callback = _Base._check_callback
    _set_coroutine_origin_tracking = _Base._set_coroutine_origin_tracking

    # -- tasks (create_task's fast path is in C) ------------------------

    set_task_factory = _Base.set_task_factory
    get_task_factory = _Base.get_task_factory
    _create_task_slow = _Base.create_task

    # -- errors ---------------------------------------------------------

    set_exception_handler = _Base.set_exception_handler
    get_exception_handler = _Base.get_exception_handler
    default_exception_handler = _Base.default_exception_handler
    call_exception_handler = _Base.call_exception_handler

    def _report_callback_error(self, handle, exc: BaseException) -> None:
        """Called by the C core when a callback raised."""
        source = format_helpers._format_callback_source(
            handle._callback, handle._args
        )
        context = {
            "message": f"Exception in callback {source}",
            "exception": exc,
            "handle": handle,
        }
        if handle._source_traceback:
            context["source_traceback"] = handle._source_traceback
        self.call_exception_handler(context)

    def _log_slow_callback(self, handle, seconds: float) -> None:
        """Called by the C core in debug mode for a slow callback."""
        logger.warning(
            "Executing %s took %.3f seconds",
            base_events._format_handle(handle),
            seconds,
        )

    # -- async generators -----------------------------------------------

    shutdown_asyncgens = _Base.shutdown_asyncgens
    _asyncgen_firstiter_hook = _Base._asyncgen_firstiter_hook
    _asyncgen_finalizer_hook = _Base._asyncgen_finalizer_hook

    # -- executors ------------------------------------------------------

    run_in_executor = _Base.run_in_executor
    set_default_executor = _Base.set_default_executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Join the default executor's threads, waiting at most `timeout`
        seconds (the Python 3.12 signature, on every supported version)."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        done = self.create_future()
        joiner = threading.Thread(target=self._do_shutdown, args=(done,))
        joiner.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(
                "The executor did not finishing joining its threads within "
                f"{timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._default_executor.shutdown(wait=False)
        else:
            joiner.join()

    def _do_shutdown(self, done) -> None:
        # Runs in the joiner thread; `done` may have been cancelled by the
        # timeout meanwhile.
        try:
            self._default_executor.shutdown(wait=True)
            settle, value = futures._set_result_unless_cancelled, None
        except Exception as exc:
            settle, value = _set_exception_unless_cancelled, exc
        if not self.is_closed():
            self.call_soon_threadsafe(settle, done, value)

    _check_default_executor = _Base._check_default_executor

    # -- not yet implemented --------------------------------------------

    for _feature, _names in _NOT_YET.items():
        for _name in _names:
            locals()[_name] = _not_implemented(_name, _feature)
    del _feature, _names, _name
