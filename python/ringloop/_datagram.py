"""Datagram endpoints: UDP and Unix datagram sockets.

``create_datagram_endpoint`` is asyncio's own, borrowed from the running
Python's ``BaseEventLoop`` so its argument checks, errors, address
resolution and socket options follow each version exactly. It builds on
``DatagramTransport`` below, whose per-datagram work (one multishot
receive on the ring, datagram_received, sendto and its queue) is the C
base class ``_core.DatagramTransport``. This file keeps what runs once per
endpoint, mirroring asyncio's selector datagram transport so callbacks are
ordered as asyncio orders them, and the rare sendto() to an address the C
fast path does not parse (host names...), which the socket module handles.
"""

from __future__ import annotations

import inspect
import logging
import socket
import sys
import warnings
from asyncio import base_events, selector_events

from . import _core
from ._transport_common import fatal_error, socket_extra, start, transport_repr

__all__ = ("DatagramMixin", "DatagramTransport")

logger = logging.getLogger("asyncio")


def _sends_empty_datagrams() -> bool:
    """Whether this Python's asyncio sends ``sendto(b"")`` (3.13, and some
    3.12 releases) or drops it; it also counts 8 header bytes per queued
    datagram in get_write_buffer_size() then."""
    try:
        source = inspect.getsource(
            selector_events._SelectorDatagramTransport.sendto)
    except (OSError, TypeError):
        return sys.version_info >= (3, 13)
    return "if not data:" not in source


_SEND_EMPTY = _sends_empty_datagrams()
_HEADER = 8 if _SEND_EMPTY else 0


class DatagramTransport(_core.DatagramTransport):
    __slots__ = ()

    max_size = 256 * 1024  # asyncio's; the C receive uses the same

    def __init__(self, loop, sock, protocol, address=None, waiter=None,
                 extra=None):
        self._extra = socket_extra(sock, extra)
        self._setup(loop, sock, protocol, address,
                    bool(self._extra["peername"]), _SEND_EMPTY, _HEADER)
        start(loop, self, protocol, waiter)

    __repr__ = transport_repr
    _fatal_error = fatal_error

    def __del__(self, _warn=warnings.warn) -> None:
        sock = self._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()

    def _warn_lost_send(self) -> None:
        logger.warning("socket.send() raised exception.")

    def _call_connection_lost(self, exc) -> None:
        if self._sock is None:
            return  # already done
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._release()

    def _sendto_fallback(self, data, addr) -> None:
        """sendto() to an address the C fast path does not parse: the
        socket module sends it (and raises what asyncio would see)."""
        if not self.get_write_buffer_size() and not self._sending:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal write error on datagram transport")
                return
        # Queued behind others (or no room): queue it under its numeric
        # address, which the socket module resolves.
        try:
            sock = self._sock
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                infos = socket.getaddrinfo(*addr[:2], family=sock.family,
                                           type=socket.SOCK_DGRAM)
                resolved = infos[0][4]
                if sock.family == socket.AF_INET6 and len(addr) > 2:
                    resolved = resolved[:2] + tuple(addr[2:])
            else:
                raise OSError(f"unsupported address {addr!r}")
            self._sendto_queue(data, resolved)
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on datagram transport")


class DatagramMixin:
    """The loop's datagram methods."""

    create_datagram_endpoint = base_events.BaseEventLoop.create_datagram_endpoint

    def _make_datagram_transport(self, sock, protocol, address=None,
                                 waiter=None, extra=None):
        return DatagramTransport(self, sock, protocol, address, waiter, extra)
