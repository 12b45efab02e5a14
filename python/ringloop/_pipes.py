"""Pipe transports: connect_read_pipe and connect_write_pipe.

Reading is asyncio's own ``unix_events._UnixReadPipeTransport``, taken by
reference: one ``os.read`` per readiness of the loop's readiness callbacks
(``_add_reader``: csrc/py/fdwatch.c, one epoll set behind one ring poll).
It measured level with uvloop (benchmarks/test_subprocess.py).

Writing is asyncio's ``_UnixWritePipeTransport`` with its data path
replaced: ``write()`` still tries ``os.write`` at once, as asyncio does,
but what does not fit goes to a ``_core.PipeWriter`` (csrc/py/pipewriter.c),
which writes it in C on the pipe's readiness and calls back once when all
of it is written, instead of a Python callback, an ``os.write`` and a
buffer shift per 64 KiB of pipe space. A ``bytes`` argument is written
from the caller's object, without a copy. Everything else (the checks:
pipes, sockets and character devices only; the fd made non-blocking;
``get_extra_info('pipe')``; flow control; write_eof / close / abort; the
reader-went-away watch; errors) is asyncio's, by reference.

State of the write transport: ``_buffer`` holds what was written while a
send is in progress; ``_rl_sending`` counts the bytes of that send
(get_write_buffer_size is their sum). A send's completion starts the next
one from ``_buffer``, or, with nothing left, resumes the protocol and
finishes a pending close, as asyncio's ``_write_ready`` does. ``_close``
cancels a send in progress (its completion then never runs).

Loop thread only, like every transport.
"""

from __future__ import annotations

import os
from asyncio import base_events, constants, unix_events
from asyncio.log import logger

from . import _core

__all__ = ("PipesMixin",)

_Base = base_events.BaseEventLoop


class _WritePipeTransport(unix_events._UnixWritePipeTransport):
    """asyncio's write pipe transport writing through a _core.PipeWriter."""

    _rl_sending = 0

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        super().__init__(loop, pipe, protocol, waiter, extra)
        self._rl_writer = _core.PipeWriter(loop, self._fileno)

    def get_write_buffer_size(self):
        return len(self._buffer) + self._rl_sending

    def write(self, data):
        assert isinstance(data, (bytes, bytearray, memoryview)), repr(data)
        if isinstance(data, bytearray):
            data = memoryview(data)
        if not data:
            return

        if self._conn_lost or self._closing:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning('pipe closed by peer or '
                               'os.write(pipe, data) raised exception.')
            self._conn_lost += 1
            return

        if self._rl_sending:
            self._buffer += data
        else:
            # Attempt to send it right away first.
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, 'Fatal write error on pipe transport')
                return
            if n == len(data):
                return
            if type(data) is not bytes:
                data, n = bytes(data[n:]), 0  # the caller may reuse it
            self._rl_send(data, n)
        self._maybe_pause_protocol()

    def _rl_send(self, data, offset):
        self._rl_writer.send(data, offset, self._rl_sent)
        self._rl_sending = len(data) - offset

    def _rl_sent(self, n, err):
        """The PipeWriter's callback: the send ended (err: an errno)."""
        self._rl_sending = 0
        if err:
            self._buffer.clear()
            self._conn_lost += 1
            self._fatal_error(OSError(err, os.strerror(err)),
                              'Fatal write error on pipe transport')
            return
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            self._rl_send(data, 0)
            return
        self._maybe_resume_protocol()  # May write more.
        if self._closing and not self._rl_sending:
            self._loop._remove_reader(self._fileno)
            self._call_connection_lost(None)

    def _read_ready(self):
        # Pipe was closed by peer.
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self._buffer or self._rl_sending:
            self._close(BrokenPipeError())
        else:
            self._close()

    def write_eof(self):
        if self._closing:
            return
        assert self._pipe
        self._closing = True
        if not self._buffer and not self._rl_sending:
            self._loop._remove_reader(self._fileno)
            self._loop.call_soon(self._call_connection_lost, None)

    def _close(self, exc=None):
        self._closing = True
        if self._rl_sending:
            self._rl_sending = 0
            self._rl_writer.cancel()
        self._buffer.clear()
        self._loop._remove_reader(self._fileno)
        self._loop.call_soon(self._call_connection_lost, exc)


class PipesMixin:
    """connect_read_pipe / connect_write_pipe; mixed into EventLoop."""

    connect_read_pipe = _Base.connect_read_pipe
    connect_write_pipe = _Base.connect_write_pipe

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None,
                                  extra=None):
        return unix_events._UnixReadPipeTransport(
            self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None,
                                   extra=None):
        return _WritePipeTransport(self, pipe, protocol, waiter, extra)
