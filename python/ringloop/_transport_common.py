"""What the stream and datagram socket transports share, once per endpoint.

``SocketTransport`` (_transports.py) and ``DatagramTransport`` (_datagram.py)
both mirror asyncio's selector transports: the same extra info, the same start
(connection_made, then reading, then the waiter), the same repr and the same
_fatal_error.  The functions here are that common part; the two classes use the
last two directly as methods.
"""

from __future__ import annotations

import logging
from asyncio import futures, trsock

logger = logging.getLogger("asyncio")


def socket_extra(sock, extra):
    """The transport's extra-info dict: ``extra`` (or a new one) plus socket,
    sockname and (unless given) peername, as asyncio fills them."""
    extra = {} if extra is None else extra
    extra["socket"] = trsock.TransportSocket(sock)
    try:
        extra["sockname"] = sock.getsockname()
    except OSError:
        extra["sockname"] = None
    if "peername" not in extra:
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None
    return extra


def start(loop, transport, protocol, waiter) -> None:
    """Register the transport and schedule connection_made; reading starts once
    that has run, as in asyncio, then ``waiter`` (if any) gets its result."""
    loop._transports[transport._sock_fd] = transport
    loop.call_soon(protocol.connection_made, transport)
    loop.call_soon(transport._start_reading)
    if waiter is not None:
        loop.call_soon(futures._set_result_unless_cancelled, waiter, None)


def transport_repr(self) -> str:
    """``__repr__`` of both transports (asyncio's selector transport form)."""
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


def fatal_error(self, exc, message="Fatal error on transport") -> None:
    """``_fatal_error`` of both transports: report (OSErrors only in debug
    mode), then force-close with ``exc``."""
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
