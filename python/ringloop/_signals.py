"""Signal handlers: add_signal_handler and remove_signal_handler.

asyncio's selector-loop design: while any handler is installed,
``signal.set_wakeup_fd`` points at the write end of a non-blocking
socketpair whose read end the loop watches (``_add_reader``,
csrc/py/fdwatch.c); the Python-level handler is a no-op, and each signal
number read from the socket schedules the registered ``events.Handle`` as
an ordinary callback. Why not signalfd: it only sees signals blocked in
every thread (a thread started before the loop would take them instead),
and it bypasses Python's own signal machinery, which asyncio.Runner's
SIGINT handling and ``signal.signal`` users rely on. The wakeup fd keeps
Python's handlers running as usual (the ring wait returns EINTR and the
loop calls PyErr_CheckSignals); the socket only carries the numbers.

Rules are asyncio's (``_check_signal`` taken by reference): main thread
only (set_wakeup_fd raises ValueError elsewhere, turned into
RuntimeError), invalid numbers ValueError, uncatchable ones RuntimeError,
coroutines TypeError. Removing the last handler restores the wakeup fd
that was set before the first one (asyncio sets -1); closing the loop
removes every handler and closes the socketpair. Loop thread (= main
thread) only.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import warnings
from asyncio import coroutines, events, unix_events

__all__ = ("SignalsMixin",)

logger = logging.getLogger("asyncio")
_Unix = unix_events._UnixSelectorEventLoop


class SignalsMixin:
    """add_signal_handler / remove_signal_handler; mixed into EventLoop."""

    _check_signal = _Unix._check_signal
    _rl_sig_socks = None  # (read end, write end) once a handler was added
    _rl_sig_prev_fd = -1  # the wakeup fd to restore after the last handler
    _rl_sig_watched = False  # the read end is registered with _add_reader

    def add_signal_handler(self, sig, callback, *args):
        """Add a handler for a signal.  UNIX only.

        Raise ValueError if the signal number is invalid or uncatchable.
        Raise RuntimeError if there is a problem setting up the handler.
        """
        if (coroutines.iscoroutine(callback) or
                coroutines.iscoroutinefunction(callback)):
            raise TypeError("coroutines cannot be used "
                            "with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        rsock, wsock = self._rl_sig_socketpair()
        try:
            # Raises ValueError outside the main thread: checked before
            # the loop's fd watch is touched.
            prev = signal.set_wakeup_fd(wsock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        if not self._signal_handlers and prev != wsock.fileno():
            self._rl_sig_prev_fd = prev
        if not self._rl_sig_watched:
            try:
                self._add_reader(rsock.fileno(), self._rl_sig_read, rsock)
            except BaseException:
                self._rl_sig_restore_wakeup_fd()
                raise
            self._rl_sig_watched = True

        handle = events.Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, unix_events._sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._rl_sig_restore_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig} cannot be caught')
            raise

    def remove_signal_handler(self, sig):
        """Remove a handler for a signal.  UNIX only.

        Return True if a signal handler was removed, False if not.
        """
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = (signal.default_int_handler if sig == signal.SIGINT
                   else signal.SIG_DFL)
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig} cannot be caught')
            raise
        if not self._signal_handlers:
            self._rl_sig_restore_wakeup_fd()
        return True

    def _rl_sig_socketpair(self):
        """The wakeup socketpair (read end, write end), made on first use;
        the loop watches the read end from the first handler on."""
        if self._rl_sig_socks is None:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            self._rl_sig_socks = (rsock, wsock)
        return self._rl_sig_socks

    def _rl_sig_read(self, rsock):
        while True:
            try:
                data = rsock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for sig in data:
                if sig:
                    self._handle_signal(sig)

    def _handle_signal(self, sig):
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return  # a signal without a handler (e.g. SIGINT for Runner)
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self.call_soon(handle._run)

    def _rl_sig_restore_wakeup_fd(self):
        prev, self._rl_sig_prev_fd = self._rl_sig_prev_fd, -1
        try:
            signal.set_wakeup_fd(prev)
        except (ValueError, OSError) as exc:
            # The previous fd was closed meanwhile (or not main thread).
            logger.info('set_wakeup_fd(%d) failed: %s', prev, exc)
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError):
                pass

    def _close_core(self):
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(f"Closing the loop {self!r} "
                          f"on interpreter shutdown "
                          f"stage, skipping signal handlers removal",
                          ResourceWarning,
                          source=self)
            self._signal_handlers.clear()
        try:
            super()._close_core()
        finally:
            socks, self._rl_sig_socks = self._rl_sig_socks, None
            for sock in socks or ():
                sock.close()
