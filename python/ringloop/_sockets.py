"""The loop's low-level socket API, readiness callbacks and name resolution.

sock_recv / sock_recv_into / sock_recvfrom / sock_recvfrom_into /
sock_sendall / sock_sendto / sock_connect / sock_accept / sock_sendfile,
add_reader / add_writer / remove_reader / remove_writer, getaddrinfo /
getnameinfo, with asyncio's argument checks and errors (each method below
follows asyncio/selector_events.py, 3.11-3.13, line by line up to the point
where it has to wait).

Every sock_* call first tries the socket call without waiting, as asyncio
does; only when that would block does it wait, on an operation of the
loop's ring (``_core.SockOps``, csrc/py/sockops.c) that completes an
``_IOFuture``. Cancelling that future cancels the ring operation at once,
so a cancelled receive or accept never loses data or a connection (see
sockops.c for why). add_reader and friends keep asyncio's bookkeeping in
C (``_core.FdWatch``, csrc/py/fdwatch.c): an epoll set polled through the
ring, level-triggered like asyncio's selector loop.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import socket
import sys
from asyncio import base_events, exceptions, futures, selector_events

from . import _core

__all__ = ("SocketsMixin",)

_Base = base_events.BaseEventLoop
_Selector = selector_events.BaseSelectorEventLoop
_ops = _core.SockOps()

_EVENT_READ = 1  # selectors.EVENT_READ
_EVENT_WRITE = 2  # selectors.EVENT_WRITE
# With these flags the resolver functions never leave the machine (no DNS,
# no /etc/services): they answer on the loop thread at once.
_NUMERIC_AI = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_NUMERIC_NI = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


class _IOFuture(futures.Future):
    """The future a waiting sock_* call awaits. cancel() also cancels the
    ring operation right away, before the loop next enters the kernel
    (a done-callback would only run an iteration later)."""

    __slots__ = ("_rl_op",)

    def cancel(self, msg=None):
        if not super().cancel(msg=msg):
            return False
        try:
            op = self._rl_op
        except AttributeError:  # the operation could not be started
            return True
        op.cancel()
        return True


async def _await_op(fut):
    try:
        return await fut
    except BaseException:
        # The coroutine was closed or thrown into: nobody will take the
        # result, so the operation must not take data either.
        fut.cancel()
        raise


class SocketsMixin:
    """sock_*, add_reader/add_writer and the resolver; mixed into EventLoop."""

    # -- readiness callbacks ----------------------------------------------

    @functools.cached_property
    def _fdwatch(self):
        return _core.FdWatch(self)

    _ensure_fd_no_transport = _Selector._ensure_fd_no_transport
    add_reader = _Selector.add_reader
    remove_reader = _Selector.remove_reader
    add_writer = _Selector.add_writer
    remove_writer = _Selector.remove_writer

    def _add_reader(self, fd, callback, *args):
        self._check_closed()
        return self._fdwatch.add(fd, _EVENT_READ, callback, args)

    def _remove_reader(self, fd):
        if self.is_closed():
            return False
        return self._fdwatch.remove(fd, _EVENT_READ)

    def _add_writer(self, fd, callback, *args):
        self._check_closed()
        return self._fdwatch.add(fd, _EVENT_WRITE, callback, args)

    def _remove_writer(self, fd):
        """Remove a writer callback."""
        if self.is_closed():
            return False
        return self._fdwatch.remove(fd, _EVENT_WRITE)

    def _close_core(self):
        # The loop stops watching fds when it closes (asyncio closes its
        # selector): the ring is drained first, then the epoll set goes.
        try:
            super()._close_core()
        finally:
            fdwatch = self.__dict__.pop("_fdwatch", None)
            if fdwatch is not None:
                fdwatch.close()

    # -- waiting on a socket -------------------------------------------------

    def _sock_op(self, start, sock, *args):
        """The future of a ring operation on sock (asyncio checks the fd
        for a transport at this point, when it registers its callback)."""
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        fut = _IOFuture(loop=self)
        fut._rl_op = start(self, fut, sock, fd, *args)
        return fut

    def _check_sock(self, sock):
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def sock_recv(self, sock, n):
        """Receive data from the socket.

        The return value is a bytes object representing the data received.
        The maximum amount of data to be received at once is specified by
        nbytes.
        """
        self._check_sock(sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(self._sock_op(_ops.recv, sock, n))

    async def sock_recv_into(self, sock, buf):
        """Receive data from the socket.

        The received data is written into *buf* (a writable buffer).
        The return value is the number of bytes written.
        """
        self._check_sock(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(self._sock_op(_ops.recv_into, sock, buf))

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram from a datagram socket.

        The return value is a tuple of (bytes, address) representing the
        datagram received and the address it came from.
        The maximum amount of data to be received at once is specified by
        nbytes.
        """
        self._check_sock(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(self._sock_op(_ops.recvfrom, sock, bufsize))

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive data from the socket.

        The received data is written into *buf* (a writable buffer).
        The return value is a tuple of (number of bytes written, address).
        """
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(
            self._sock_op(_ops.recvfrom_into, sock, buf, nbytes))

    async def sock_sendall(self, sock, data):
        """Send data to the socket.

        The socket must be connected to a remote socket. This method continues
        to send data from data until either all data has been sent or an
        error occurs. None is returned on success. On error, an exception is
        raised, and there is no way to determine how much data, if any, was
        successfully processed by the receiving end of the connection.
        """
        self._check_sock(sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):
            # all data sent
            return
        return await _await_op(self._sock_op(_ops.sendall, sock, data, n))

    async def sock_sendto(self, sock, data, address):
        """Send data to the socket.

        The socket must be connected to a remote socket. This method continues
        to send data from data until either all data has been sent or an
        error occurs. None is returned on success. On error, an exception is
        raised, and there is no way to determine how much data, if any, was
        successfully processed by the receiving end of the connection.
        """
        self._check_sock(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(
            self._sock_op(_ops.sendto, sock, data, address))

    async def sock_connect(self, sock, address):
        """Connect to a remote socket at address.

        This method is a coroutine.
        """
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (
                base_events._HAS_IPv6 and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto,
                loop=self,
            )
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            # Issue #23618: When the C function connect() fails with EINTR,
            # the connection runs in background. We have to wait until the
            # socket becomes writable to be notified when the connection
            # succeed or fails.
            pass
        else:
            return None
        return await _await_op(self._sock_op(_ops.connect, sock, address))

    async def sock_accept(self, sock):
        """Accept a connection.

        The socket must be bound to an address and listening for connections.
        The return value is a pair (conn, address) where conn is a new socket
        object usable to send and receive data on the connection, and address
        is the address bound to the socket on the other end of the connection.
        """
        self._check_sock(sock)
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            pass
        else:
            return conn, address
        return await _await_op(self._sock_op(_ops.accept, sock))

    # -- sendfile: asyncio's structure, its Unix loop's native path ---------

    sock_sendfile = _Base.sock_sendfile
    _check_sendfile_params = _Base._check_sendfile_params
    _sock_sendfile_fallback = _Base._sock_sendfile_fallback

    async def _sock_sendfile_native(self, sock, file, offset, count):
        # asyncio.unix_events._UnixSelectorEventLoop's, with the writability
        # wait on the ring; sends until the socket is full, not one block
        # per loop iteration.
        try:
            os.sendfile
        except AttributeError:
            raise exceptions.SendfileNotAvailableError(
                "os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file")
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file
        # On 32-bit architectures truncate to 1GiB to avoid OverflowError
        blocksize = min(blocksize, sys.maxsize // 2 + 1)
        fd = sock.fileno()
        total_sent = 0
        waited = False  # asyncio's registered_fd is not None
        error = None
        try:
            while True:
                if count:
                    blocksize = count - total_sent
                    if blocksize <= 0:
                        return total_sent
                try:
                    sent = os.sendfile(fd, fileno, offset, blocksize)
                except (BlockingIOError, InterruptedError):
                    await _await_op(self._sock_op(_ops.wait_writable, sock))
                    waited = True
                    continue
                except OSError as exc:
                    if (waited and exc.errno == errno.ENOTCONN and
                            type(exc) is not ConnectionError):
                        # If we have an ENOTCONN and this isn't a first call
                        # to sendfile(), i.e. the connection was closed in
                        # the middle of the operation, normalize the error
                        # to ConnectionError to make it consistent across
                        # all Posix systems.
                        new_exc = ConnectionError(
                            "socket is not connected", errno.ENOTCONN)
                        new_exc.__cause__ = exc
                        exc = new_exc
                    if total_sent == 0:
                        # We can get here for different reasons, the main
                        # one being 'file' is not a regular mmap(2)-like
                        # file, in which case we'll fall back on using
                        # plain send().
                        exc = exceptions.SendfileNotAvailableError(
                            "os.sendfile call failed")
                    error = exc
                    break
                if sent == 0:
                    return total_sent  # EOF
                offset += sent
                total_sent += sent
                waited = True
        finally:
            if total_sent > 0:
                os.lseek(fileno, offset, os.SEEK_SET)
        raise error

    # -- name resolution ---------------------------------------------------

    _getaddrinfo_debug = _Base._getaddrinfo_debug

    async def getaddrinfo(self, host, port, *,
                          family=0, type=0, proto=0, flags=0):
        if not self._debug:
            # A numeric host (or None) and a numeric port (or None): the
            # answer needs no lookup, so it is computed here, without a
            # thread hop. Anything else (names, services, bad arguments,
            # errors) goes the executor way and gets the socket module's
            # exact answer or exception.
            try:
                return socket.getaddrinfo(
                    host, port, family, type, proto, flags | _NUMERIC_AI)
            except Exception:
                pass
            getaddr_func = socket.getaddrinfo
        else:
            getaddr_func = self._getaddrinfo_debug
        return await self.run_in_executor(
            None, getaddr_func, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        if isinstance(flags, int) and flags & _NUMERIC_NI == _NUMERIC_NI:
            # Numeric host and service: no lookup, answered at once.
            return socket.getnameinfo(sockaddr, flags)
        return await self.run_in_executor(
            None, socket.getnameinfo, sockaddr, flags)
