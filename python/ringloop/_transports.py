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
from asyncio import base_events, constants, futures, trsock

from . import _core

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
        self._extra = {} if extra is None else extra
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._setup(loop, sock, protocol, server)
        base_events._set_nodelay(sock)
        if server is not None:
            _attach(server, self)
        loop._transports[self._sock_fd] = self
        loop.call_soon(protocol.connection_made, self)
        # Reading starts once connection_made() has run, as in asyncio.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            info.append(f"read={self._read_state}")
            state = "polling" if self._sending else "idle"
            info.append(
                f"write=<{state}, bufsize={self.get_write_buffer_size()}>"
            )
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn=warnings.warn) -> None:
        sock = self._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()
            server = self._server
            if server is not None:
                _detach(server, self)
                self._server = None

    def _fatal_error(self, exc, message="Fatal error on transport") -> None:
        loop = self._loop
        if isinstance(exc, OSError):
            if loop is not None and loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        elif loop is not None:
            loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._force_close(exc)

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
