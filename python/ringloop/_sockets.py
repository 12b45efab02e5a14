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
and a result that completed just as its task was cancelled goes back to
the socket for the next call, so a cancelled receive or accept never loses
data or a connection (see csrc/py/sockops.c for why). add_reader and
friends keep asyncio's bookkeeping in C (``_core.FdWatch``,
csrc/py/fdwatch.c): an epoll set polled through the ring, level-triggered
like asyncio's selector loop.
"""

from __future__ import annotations

import collections
import errno
import functools
import io
import operator
import os
import socket
import sys
import weakref
from asyncio import base_events, exceptions, futures, selector_events

from . import _core
from .rt._dns import resolve as _rt_resolve

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
    """The future a waiting sock_* call awaits.

    cancel() also cancels the ring operation right away, before the loop
    next enters the kernel (a done-callback would only run an iteration
    later, after the kernel may have completed it).

    cancel() on a future that already holds a receive's result means the
    task awaiting it is being cancelled (Task.cancel asks its waiter first)
    and will never see that result: the data or connection is given back
    to the socket (the loop's unread queue) for the next call. asyncio's
    selector loop would not have taken it from the kernel yet."""

    __slots__ = ("_rl_op", "_rl_give_back")

    def cancel(self, msg=None):
        if super().cancel(msg=msg):
            try:
                op = self._rl_op
            except AttributeError:  # the operation could not be started
                return True
            op.cancel()
            return True
        give_back = getattr(self, "_rl_give_back", None)
        if give_back is not None and not self.cancelled() \
                and self._exception is None:
            self._rl_give_back = None
            loop, sock, kind, buf = give_back
            loop._sock_unread_push(sock, kind, self.result(), buf)
        return False


async def _await_op(fut):
    try:
        return await fut
    except BaseException:
        # The coroutine was closed or thrown into: nobody will take the
        # result, so the operation must not take data either (a closed
        # loop has let go of all its operations already).
        if not fut.get_loop().is_closed():
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
            unread, self._sock_unread = self._sock_unread, None
            for queue in (unread or {}).values():
                for is_conn, conn, _, _ in queue:
                    if is_conn:
                        conn.close()

    # -- waiting on a socket -------------------------------------------------

    def _sock_op(self, start, sock, *args, give_back=None, buf=None):
        """The future of a ring operation on sock (asyncio checks the fd
        for a transport at this point, when it registers its callback).
        give_back names a receive whose result goes back to the socket if
        its task is cancelled as it completes (see _IOFuture)."""
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        fut = _IOFuture(loop=self)
        fut._rl_op = start(self, fut, sock, fd, *args)
        fut._rl_give_back = (
            None if give_back is None else (self, sock, give_back, buf))
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
        if self._sock_unread is not None:
            got = self._unread_read(sock, n, None)
            if got is not None:
                return got[0]
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(
            self._sock_op(_ops.recv, sock, n, give_back="recv"))

    async def sock_recv_into(self, sock, buf):
        """Receive data from the socket.

        The received data is written into *buf* (a writable buffer).
        The return value is the number of bytes written.
        """
        self._check_sock(sock)
        if self._sock_unread is not None:
            got = self._unread_read(sock, 0, buf)
            if got is not None:
                return got[0]
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(self._sock_op(
            _ops.recv_into, sock, buf, give_back="recv_into", buf=buf))

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram from a datagram socket.

        The return value is a tuple of (bytes, address) representing the
        datagram received and the address it came from.
        The maximum amount of data to be received at once is specified by
        nbytes.
        """
        self._check_sock(sock)
        if self._sock_unread is not None:
            got = self._unread_read(sock, bufsize, None)
            if got is not None:
                return got
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(
            self._sock_op(_ops.recvfrom, sock, bufsize, give_back="recvfrom"))

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive data from the socket.

        The received data is written into *buf* (a writable buffer).
        The return value is a tuple of (number of bytes written, address).
        """
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        if self._sock_unread is not None:
            got = self._unread_read(sock, nbytes, buf)
            if got is not None:
                return got
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await _await_op(self._sock_op(
            _ops.recvfrom_into, sock, buf, nbytes, give_back="recvfrom_into",
            buf=buf))

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
        if self._sock_unread is not None:
            got = self._unread_accept(sock)
            if got is not None:
                return got
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            pass
        else:
            return conn, address
        return await _await_op(
            self._sock_op(_ops.accept, sock, give_back="accept"))

    # -- results given back -------------------------------------------------
    #
    # The ring may complete a receive in the same loop iteration in which a
    # callback cancels the task awaiting it (asyncio.wait_for's timeout, a
    # TaskGroup): asyncio's selector loop would not have read the socket
    # yet, so nothing may be lost. Such results are given back here, per
    # socket, and the next receive call on that socket takes them first.

    _sock_unread = None  # WeakKeyDictionary: sock -> deque of entries

    def _sock_unread_push(self, sock, kind, value, buf=None):
        """Called by _IOFuture.cancel (and by the C core for a completion
        that raced its cancellation) with what a receive returned."""
        if kind == "accept":
            entry = [True, value[0], value[1], True]
        else:
            dgram = getattr(sock, "type", socket.SOCK_STREAM) \
                != socket.SOCK_STREAM
            if kind == "recv":
                data, addr = value, None
            elif kind == "recvfrom":
                data, addr = value
            else:
                n, addr = (value, None) if kind == "recv_into" else value
                data = memoryview(buf).cast("B")[:n].tobytes()
            if not data and not dgram:
                return  # end of stream: the socket says so again
            entry = [False, data, addr, dgram]
        unread = self._sock_unread
        if unread is None:
            unread = self._sock_unread = weakref.WeakKeyDictionary()
        queue = unread.get(sock)
        if queue is None:
            queue = unread[sock] = collections.deque()
        queue.append(entry)

    def _unread_pop(self, sock, queue):
        queue.popleft()
        if not queue:
            del self._sock_unread[sock]
            if not self._sock_unread:
                self._sock_unread = None

    def _unread_read(self, sock, n, buf):
        """(data, address) or (nbytes, address) from the unread queue, as
        recv/recvfrom (buf None) or recv_into/recvfrom_into would return
        them, or None (nothing queued, or arguments the socket call must
        reject)."""
        queue = self._sock_unread.get(sock)
        if not queue or queue[0][0]:
            return None
        try:
            if buf is not None:
                view = memoryview(buf).cast("B")
                if view.readonly:
                    return None
                n = operator.index(n) or len(view)
                if n > len(view):
                    return None
            else:
                n = operator.index(n)
        except (TypeError, ValueError):
            return None
        if n < 0:
            return None
        entry = queue[0]
        _, data, addr, dgram = entry
        if dgram or n >= len(data):
            self._unread_pop(sock, queue)
        else:
            entry[1] = data[n:]
        data = data[:n]
        if buf is None:
            return data, addr
        view[: len(data)] = data
        return len(data), addr

    def _unread_accept(self, sock):
        queue = self._sock_unread.get(sock)
        if not queue or not queue[0][0]:
            return None
        _, conn, addr, _ = queue[0]
        self._unread_pop(sock, queue)
        return conn, addr

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
                    try:
                        await _await_op(
                            self._sock_op(_ops.wait_writable, sock))
                    except BaseException:
                        # cancelled: asyncio leaves the file position as is
                        total_sent = 0
                        raise
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
            if self._default_executor is None:
                # getaddrinfo in C in the blocking pool, without the GIL.
                self._check_closed()
                self._check_default_executor()
                return await _rt_resolve(host, port, family, type, proto, flags)
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
