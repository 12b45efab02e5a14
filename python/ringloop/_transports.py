"""SocketTransport: ringloop's TCP and Unix stream transport.

The per-message work (receiving, data_received, write queue, sends, flow
control, pause/resume) is the C base class ``_core.StreamTransport``, itself
an ``asyncio.Transport`` subclass. This class adds what runs once per
connection: construction, repr, connection_lost and the destructor's
warning, mirroring asyncio's selector transport so that callbacks are
ordered exactly as asyncio orders them.
"""

from __future__ import annotations

import logging
import socket
import sys
import warnings
from asyncio import base_events, constants

from . import _core
from ._transport_common import fatal_error, socket_extra, start, transport_repr

__all__ = ("SocketTransport",)

logger = logging.getLogger("asyncio")

# asyncio's Server._attach/_detach take the transport from 3.13 on.
_SERVER_TRACKS_TRANSPORTS = sys.version_info >= (3, 13)


def _attach(server, transport) -> None:
    if _SERVER_TRACKS_TRANSPORTS:
        server._attach(transport)
    else:
        server._attach()


def _detach(server, transport) -> None:
    if _SERVER_TRACKS_TRANSPORTS:
        server._detach(transport)
    else:
        server._detach()


class SocketTransport(_core.StreamTransport):
    __slots__ = ()

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    max_size = 256 * 1024

    def __init__(self, loop, sock, protocol, waiter=None, extra=None,
                 server=None):
        self._extra = socket_extra(sock, extra)
        self._setup(loop, sock, protocol, server)
        base_events._set_nodelay(sock)
        if server is not None:
            _attach(server, self)
        start(loop, self, protocol, waiter)

    __repr__ = transport_repr
    _fatal_error = fatal_error

    def __del__(self, _warn=warnings.warn) -> None:
        sock = self._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()
            server = self._server
            if server is not None:
                _detach(server, self)
                self._server = None

    def _warn_lost_write(self) -> None:
        logger.warning("socket.send() raised exception.")

    def _call_connection_lost(self, exc) -> None:
        if self._sock is None:
            return  # already done
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            server = self._server
            self._release()
            if server is not None:
                self._server = None
                _detach(server, self)
            waiter = self._empty_waiter
            if waiter is not None:
                waiter.set_exception(
                    ConnectionError("Connection is closed by peer")
                )

    # -- loop.sendfile() support, as asyncio's selector transport --------

    def _make_empty_waiter(self):
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        if not self.get_write_buffer_size():
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None
