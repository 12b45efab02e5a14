"""Pipe transports: connect_read_pipe and connect_write_pipe.

The transports are asyncio's own ``unix_events._UnixReadPipeTransport`` and
``_UnixWritePipeTransport``, taken by reference, so their checks (pipes,
sockets and character devices only; the fd made non-blocking), flow
control, EOF handling and the write pipe noticing its reader went away
follow each Python version exactly. They wait on the loop's readiness
callbacks (``_add_reader`` / ``_add_writer``: csrc/py/fdwatch.c, one epoll
set behind one ring poll) and read or write with ``os.read`` /
``os.write``, one call per readiness. Measured against uvloop's native
pipes in benchmarks/test_subprocess.py; see the README for the numbers.

Loop thread only, like every transport.
"""

from __future__ import annotations

from asyncio import base_events, unix_events

__all__ = ("PipesMixin",)

_Base = base_events.BaseEventLoop


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
        return unix_events._UnixWritePipeTransport(
            self, pipe, protocol, waiter, extra)
