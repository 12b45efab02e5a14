"""Streams over TCP and Unix sockets: servers, connections, TLS, sendfile.

The orchestration (address resolution, happy eyeballs, the Server object,
Unix socket files, sendfile's fallback) is asyncio's own, borrowed from the
running Python's asyncio so it follows each version exactly. What it
builds on is ringloop's: the transport (``_transports.SocketTransport``)
and the accept loop, one multishot accept per listening socket
(``_core.Acceptor``) instead of a readiness callback. TLS is asyncio's
``sslproto.SSLProtocol`` (a BufferedProtocol) running over that transport.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from asyncio import (base_events, constants, selector_events, sslproto,
                     trsock, unix_events)

from . import _core
from ._transports import SocketTransport

__all__ = ("NetworkMixin",)

logger = logging.getLogger("asyncio")

_Base = base_events.BaseEventLoop
_Selector = selector_events.BaseSelectorEventLoop
_Unix = unix_events._UnixSelectorEventLoop

# Errors after which asyncio stops accepting for ACCEPT_RETRY_DELAY.
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# Errors about one failed connection: keep accepting.
_TRANSIENT = (errno.EAGAIN, errno.EINTR, errno.ECONNABORTED, errno.EPROTO,
              errno.EPERM)


class NetworkMixin:
    """Loop methods for stream sockets; mixed into EventLoop."""

    # -- connections and servers (asyncio's orchestration) ----------------

    create_connection = _Base.create_connection
    create_server = _Base.create_server
    create_unix_connection = _Unix.create_unix_connection
    create_unix_server = _Unix.create_unix_server
    connect_accepted_socket = _Base.connect_accepted_socket
    start_tls = _Base.start_tls

    _connect_sock = _Base._connect_sock
    _create_connection_transport = _Base._create_connection_transport
    _ensure_resolved = _Base._ensure_resolved
    _create_server_getaddrinfo = _Base._create_server_getaddrinfo
    _accept_connection2 = _Selector._accept_connection2

    def _make_socket_transport(self, sock, protocol, waiter=None, *,
                               extra=None, server=None):
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(
            self, rawsock, protocol, sslcontext, waiter=None, *,
            server_side=False, server_hostname=None, extra=None,
            server=None,
            ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
            ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
        # TLS is asyncio's own SSLProtocol (a BufferedProtocol) over
        # ringloop's transport, which feeds it through get_buffer().
        ssl_protocol = sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side,
            server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra,
                                    server=server)
        return ssl_protocol._app_transport

    # -- sendfile -----------------------------------------------------------

    sendfile = _Base.sendfile
    _sendfile_native = _Selector._sendfile_native
    _sendfile_fallback = _Base._sendfile_fallback

    # -- accepting ----------------------------------------------------------

    def _start_serving(self, protocol_factory, sock, sslcontext=None,
                       server=None, backlog=100,
                       ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                       ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
        fd = sock.fileno()
        if fd in self._acceptors:
            return
        family, type_, proto = sock.family, sock.type, sock.proto

        def accepted(result: int) -> None:
            if result < 0:
                self._accept_failed(acceptor, sock, -result)
                return
            conn = socket.socket(family, type_, proto, fileno=result)
            conn.setblocking(False)
            if self._debug:
                logger.debug("%r got a new connection: %r", server, conn)
            self.create_task(self._accept_connection2(
                protocol_factory, conn, {}, sslcontext, server,
                ssl_handshake_timeout, ssl_shutdown_timeout))

        acceptor = _core.Acceptor(self, sock, accepted)
        self._acceptors[fd] = acceptor
        acceptor.start()

    def _accept_failed(self, acceptor, sock, err: int) -> None:
        if err in _TRANSIENT:
            acceptor.start()
            return
        exc = OSError(err, os.strerror(err))
        if err in _OUT_OF_RESOURCES:
            message = "socket.accept() out of system resource"
        else:
            message = "Error on accepting a connection"
        self.call_exception_handler({
            "message": message,
            "exception": exc,
            "socket": trsock.TransportSocket(sock),
        })
        self.call_later(constants.ACCEPT_RETRY_DELAY, acceptor.start)

    def _stop_serving(self, sock) -> None:
        # Python 3.13's create_unix_server records the socket file it made
        # (cleanup_socket=True) so that closing the server removes it.
        inode = self._unix_server_sockets.pop(sock, None)
        path = sock.getsockname() if inode is not None else None
        acceptor = self._acceptors.pop(sock.fileno(), None)
        if acceptor is not None:
            acceptor.close()  # refuses new connections from now on
        sock.close()
        if path is not None:
            _remove_socket_file(path, inode)


def _remove_socket_file(path, inode) -> None:
    """Removes a Unix server's socket file unless another took its place."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to clean up listening UNIX socket %r: %r",
                     path, err)
