"""add_reader / add_writer / remove_reader / remove_writer on sockets and pipes:
level-triggered readiness, replacement, return values, arguments, contexts,
errors, callback exceptions, and closing a watched fd."""

import asyncio
import contextlib
import contextvars
import os
import socket

import pytest
from net_helpers import RecordingProtocol, close_pair, raises_exactly, run, tcp_pair


@contextlib.contextmanager
def nb_socketpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@contextlib.contextmanager
def nb_pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    try:
        yield r, w
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


async def until(predicate):
    """Let the loop run until predicate() holds (bounded by the test timeout)."""
    while not predicate():
        await asyncio.sleep(0.001)


async def iterations(n=10):
    for _ in range(n):
        await asyncio.sleep(0)


def test_reader_called_when_readable(loop):
    async def main():
        with nb_socketpair() as (a, b):
            got = []

            def on_readable():
                got.append(b.recv(100))

            loop.add_reader(b.fileno(), on_readable)
            await iterations()
            assert got == []  # nothing to read yet
            a.send(b"ping")
            await until(lambda: got)
            assert got == [b"ping"]
            # Consumed: not called again until new data arrives.
            await asyncio.sleep(0.02)
            assert got == [b"ping"]
            a.send(b"pong")
            await until(lambda: len(got) == 2)
            assert got == [b"ping", b"pong"]
            assert loop.remove_reader(b.fileno()) is True

    run(loop, main())


def test_reader_is_level_triggered(loop):
    async def main():
        with nb_socketpair() as (a, b):
            calls = []
            loop.add_reader(b.fileno(), calls.append, "ready")
            a.send(b"unconsumed")
            # The callback never reads: it is called again, iteration after
            # iteration, as long as the data is there.
            await until(lambda: len(calls) >= 5)
            # Consuming the data stops the calls.
            assert b.recv(100) == b"unconsumed"
            await iterations(3)
            n = len(calls)
            await asyncio.sleep(0.02)
            assert len(calls) == n
            assert loop.remove_reader(b.fileno()) is True

    run(loop, main())


def test_reader_once_per_iteration(loop):
    # One readiness callback per loop iteration, not a burst: with unread data
    # pending, the callback runs about once for each iteration the loop makes.
    async def main():
        with nb_socketpair() as (a, b):
            calls = []
            loop.add_reader(b.fileno(), calls.append, 1)
            a.send(b"x")
            await until(lambda: calls)
            before = len(calls)
            await iterations(10)
            assert len(calls) - before <= 11
            loop.remove_reader(b.fileno())

    run(loop, main())


def test_replacing_reader(loop):
    async def main():
        with nb_socketpair() as (a, b):
            first, second = [], []
            loop.add_reader(b.fileno(), first.append, 1)
            loop.add_reader(b.fileno(), second.append, 2)
            a.send(b"x")
            await until(lambda: second)
            assert first == []
            assert loop.remove_reader(b.fileno()) is True
            assert loop.remove_reader(b.fileno()) is False

    run(loop, main())


def test_remove_return_values(loop):
    async def main():
        with nb_socketpair() as (a, b):
            assert loop.remove_reader(b.fileno()) is False
            assert loop.remove_writer(b.fileno()) is False
            loop.add_reader(b.fileno(), lambda: None)
            assert loop.remove_writer(b.fileno()) is False
            assert loop.remove_reader(b.fileno()) is True
            assert loop.remove_reader(b.fileno()) is False
            loop.add_writer(b.fileno(), lambda: None)
            assert loop.remove_reader(b.fileno()) is False
            assert loop.remove_writer(b.fileno()) is True
            assert loop.remove_writer(b.fileno()) is False

    run(loop, main())


def test_callback_args_and_file_objects(loop):
    async def main():
        with nb_socketpair() as (a, b):
            calls = []

            def cb(*args):
                calls.append(args)
                loop.remove_reader(b)

            # A file object with fileno() is accepted as well as an int.
            loop.add_reader(b, cb, 1, "two", None)
            a.send(b"x")
            await until(lambda: calls)
            await iterations(3)
            assert calls == [(1, "two", None)]
            assert loop.remove_reader(b) is False

    run(loop, main())


def test_reader_callback_context(loop):
    var = contextvars.ContextVar("var", default="default")

    async def main():
        with nb_socketpair() as (a, b):
            seen = []

            def cb():
                seen.append(var.get())
                loop.remove_reader(b.fileno())

            token = var.set("at-registration")
            try:
                loop.add_reader(b.fileno(), cb)
            finally:
                var.reset(token)
            a.send(b"x")
            await until(lambda: seen)
            assert seen == ["at-registration"]

    run(loop, main())


def test_writer_level_triggered_and_removal(loop):
    async def main():
        with nb_socketpair() as (a, b):
            calls = []
            loop.add_writer(a.fileno(), calls.append, "w")
            # An idle socket is writable: called, and again, until removed.
            await until(lambda: len(calls) >= 3)
            assert loop.remove_writer(a.fileno()) is True
            await iterations(3)
            n = len(calls)
            await asyncio.sleep(0.02)
            assert len(calls) == n

    run(loop, main())


def test_writer_waits_for_space(loop):
    async def main():
        with nb_socketpair() as (a, b):
            # Fill a's send buffer.
            try:
                while True:
                    a.send(b"f" * 65536)
            except BlockingIOError:
                pass
            calls = []
            loop.add_writer(a.fileno(), calls.append, 1)
            await asyncio.sleep(0.02)
            assert calls == []  # not writable while full
            # Drain the peer: a becomes writable.
            try:
                while b.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
            await until(lambda: calls)
            loop.remove_writer(a.fileno())

    run(loop, main())


def test_reader_and_writer_on_same_fd(loop):
    async def main():
        with nb_socketpair() as (a, b):
            reads, writes = [], []

            def on_read():
                reads.append(b.recv(100))

            def on_write():
                writes.append(1)
                loop.remove_writer(b.fileno())
                b.send(b"from b")

            loop.add_reader(b.fileno(), on_read)
            loop.add_writer(b.fileno(), on_write)
            a.send(b"to b")
            await until(lambda: reads and writes)
            assert reads == [b"to b"]
            assert writes == [1]
            # Removing the writer kept the reader.
            a.send(b"again")
            await until(lambda: len(reads) == 2)
            assert reads[1] == b"again"
            assert a.recv(100) == b"from b"
            assert loop.remove_reader(b.fileno()) is True
            assert loop.remove_writer(b.fileno()) is False

    run(loop, main())


def test_pipe_reader_and_writer(loop):
    async def main():
        with nb_pipe() as (r, w):
            got = bytearray()
            eof = loop.create_future()

            def on_read():
                data = os.read(r, 65536)
                if data:
                    got.extend(data)
                else:
                    loop.remove_reader(r)
                    eof.set_result(None)

            loop.add_reader(r, on_read)
            payload = os.urandom(1 << 20)
            pos = 0

            def on_write():
                nonlocal pos
                try:
                    pos += os.write(w, payload[pos : pos + 65536])
                except BlockingIOError:
                    return
                if pos == len(payload):
                    loop.remove_writer(w)
                    os.close(w)

            loop.add_writer(w, on_write)
            await eof
            assert bytes(got) == payload

    run(loop, main())


def test_pipe_reader_sees_eof_as_readable(loop):
    async def main():
        with nb_pipe() as (r, w):
            calls = []
            loop.add_reader(r, lambda: calls.append(os.read(r, 10)))
            os.close(w)
            await until(lambda: calls)
            assert calls[0] == b""
            loop.remove_reader(r)

    run(loop, main())


def test_closing_watched_socket_really_closes_it(loop):
    # Closing an fd that has a reader registered closes the socket: the peer sees
    # EOF (a loop must not keep the file open behind the fd), and the callback is
    # never called for the closed fd. remove_reader afterwards does not raise.
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        calls = []
        try:
            fd = b.fileno()
            loop.add_reader(fd, calls.append, 1)
            await iterations(3)
            b.close()
            await iterations(3)
            a.settimeout(5)
            assert a.recv(10) == b""  # EOF: the peer is really closed
            await asyncio.sleep(0.02)
            assert calls == []
            loop.remove_reader(fd)
        finally:
            a.close()
            b.close()

    run(loop, main())


def test_closing_watched_fd_then_new_fd(loop):
    # After remove_reader, a new socket that reuses the fd number can be watched.
    async def main():
        a, b = socket.socketpair()
        fd = b.fileno()
        loop.add_reader(fd, lambda: None)
        loop.remove_reader(fd)
        a.close()
        b.close()
        with nb_socketpair() as (c, d):
            got = []
            loop.add_reader(d.fileno(), lambda: got.append(d.recv(10)))
            c.send(b"new")
            await until(lambda: got)
            assert got == [b"new"]
            loop.remove_reader(d.fileno())

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_reader_callback_exception_goes_to_handler(loop, exc_contexts):
    error = ZeroDivisionError("in reader")

    async def main():
        with nb_socketpair() as (a, b):
            calls = []

            def cb():
                calls.append(1)
                if len(calls) == 1:
                    raise error
                b.recv(100)
                loop.remove_reader(b.fileno())

            loop.add_reader(b.fileno(), cb)
            a.send(b"x")
            # The reader stays registered after raising: called again.
            await until(lambda: len(calls) == 2)

    run(loop, main())
    assert [c["exception"] for c in exc_contexts] == [error]
    assert "handle" in exc_contexts[0]
    exc_contexts.clear()


def test_bad_file_descriptors(loop):
    with pytest.raises(ValueError):
        loop.add_reader(-1, lambda: None)
    with pytest.raises(ValueError):
        loop.add_writer(-1, lambda: None)
    with pytest.raises(ValueError):
        loop.add_reader(object(), lambda: None)
    with pytest.raises(ValueError):
        loop.remove_reader(object())


def test_closed_loop_rejects_readers(loop):
    with nb_socketpair() as (a, b):
        loop.close()
        with raises_exactly(RuntimeError, match="Event loop is closed"):
            loop.add_reader(b.fileno(), lambda: None)
        with raises_exactly(RuntimeError, match="Event loop is closed"):
            loop.add_writer(b.fileno(), lambda: None)


def test_fd_owned_by_transport_rejected(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            fd = tr.get_extra_info("socket").fileno()
            for method in (loop.add_reader, loop.add_writer):
                with raises_exactly(RuntimeError):
                    method(fd, lambda: None)
            for method in (loop.remove_reader, loop.remove_writer):
                with raises_exactly(RuntimeError):
                    method(fd)
        finally:
            await close_pair(server, tr, spr.transport)
        assert isinstance(pr, RecordingProtocol)

    run(loop, main())


def test_readers_on_many_fds(loop):
    async def main():
        pairs = [socket.socketpair() for _ in range(200)]
        try:
            got = {}
            for i, (a, b) in enumerate(pairs):
                b.setblocking(False)

                def cb(i=i, b=b):
                    got[i] = b.recv(100)
                    loop.remove_reader(b.fileno())

                loop.add_reader(b.fileno(), cb)
            for i, (a, b) in enumerate(pairs):
                a.send(b"%d" % i)
            await until(lambda: len(got) == len(pairs))
            assert got == {i: b"%d" % i for i in range(len(pairs))}
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    run(loop, main())
