"""add_reader / add_writer / remove_reader / remove_writer beyond the shared suite:
level-triggered calls once per iteration, in the iteration and the order asyncio
runs them; Handles (returned by _add_reader, replaced, cancelled); what closing a
watched fd does; asyncio's errors for fds epoll refuses; callbacks that change
the watch set while they run; and, for ringloop, that nothing stays in flight
once nothing is watched and that a closed loop keeps no descriptor."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pytest

TIMEOUT = 30


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


async def iterations(n):
    for _ in range(n):
        await asyncio.sleep(0)


async def until(predicate):
    while not predicate():
        await asyncio.sleep(0.001)


def test_level_triggered_once_per_iteration(loop, pair):
    a, b = pair

    async def main():
        ticks = []
        calls = []

        def tick():
            ticks.append(len(calls))
            if len(ticks) < 40:
                loop.call_soon(tick)

        loop.add_reader(b, calls.append, None)
        a.send(b"unread")
        await until(lambda: calls)
        loop.call_soon(tick)
        await until(lambda: len(ticks) == 40)
        # one reader call per iteration while the data stays unread
        steps = [y - x for x, y in zip(ticks, ticks[1:])]
        assert steps == [1] * len(steps)
        assert b.recv(100) == b"unread"
        await iterations(3)
        n = len(calls)
        await asyncio.sleep(0.02)
        assert len(calls) == n
        assert loop.remove_reader(b) is True

    run(loop, main())


def test_ready_callbacks_run_in_asyncio_order(loop, pair):
    # An fd that is already readable: its reader runs in the next iteration,
    # after the callbacks queued before, before those queued by them.
    a, b = pair
    order = []

    async def main():
        a.send(b"x")
        loop.call_soon(order.append, "soon-1")
        loop.add_reader(b, lambda: (order.append("reader"),
                                    loop.call_soon(order.append, "from-reader")))
        loop.call_soon(order.append, "soon-2")
        await until(lambda: "from-reader" in order)
        loop.remove_reader(b)

    run(loop, main())
    assert order[:4] == ["soon-1", "soon-2", "reader", "from-reader"]


def test_handles(loop, pair):
    a, b = pair
    h1 = loop._add_reader(b.fileno(), lambda: None)
    h2 = loop._add_reader(b.fileno(), lambda: None)
    assert h1.cancelled() and not h2.cancelled()
    w = loop._add_writer(b.fileno(), lambda: None)
    assert loop.remove_reader(b.fileno()) is True
    assert h2.cancelled() and not w.cancelled()
    assert loop.remove_writer(b.fileno()) is True
    assert w.cancelled()


def test_cancelled_handle_unregisters_itself(loop, pair):
    # asyncio: a reader whose Handle was cancelled is removed when the fd
    # next becomes ready, and never called.
    a, b = pair

    async def main():
        calls = []
        h = loop._add_reader(b.fileno(), calls.append, 1)
        h.cancel()
        a.send(b"x")
        await iterations(5)
        assert calls == []
        assert loop.remove_reader(b.fileno()) is False

    run(loop, main())


def test_callbacks_change_the_watch_set(loop):
    # Readers that remove themselves, re-add each other and add writers, from
    # inside their callbacks.
    socks = [socket.socketpair() for _ in range(4)]
    for x, y in socks:
        x.setblocking(False)
        y.setblocking(False)
    try:
        async def main():
            log = []

            def reader(i):
                _, y = socks[i]
                log.append(("r", i, y.recv(10)))
                loop.remove_reader(y)
                if i + 1 < len(socks):
                    socks[i + 1][0].send(b"%d" % (i + 1))
                    loop.add_writer(socks[i + 1][1], writer, i + 1)

            def writer(i):
                log.append(("w", i))
                loop.remove_writer(socks[i][1])
                loop.add_reader(socks[i][1], reader, i)

            loop.add_reader(socks[0][1], reader, 0)
            socks[0][0].send(b"0")
            await until(lambda: len(log) == 7)
            assert log == [("r", 0, b"0"), ("w", 1), ("r", 1, b"1"), ("w", 2),
                           ("r", 2, b"2"), ("w", 3), ("r", 3, b"3")]

        run(loop, main())
    finally:
        for x, y in socks:
            x.close()
            y.close()


def test_remove_then_close_peer_sees_eof_at_once(loop, pair):
    a, b = pair

    async def main():
        loop.add_reader(b, lambda: None)
        loop.add_writer(b, lambda: None)
        await iterations(3)
        seen = []

        def cb():
            # inside one callback: no loop iteration in between
            loop.remove_reader(b)
            loop.remove_writer(b)
            b.close()
            a.settimeout(5)
            seen.append(a.recv(10))

        loop.call_soon(cb)
        await until(lambda: seen)
        assert seen == [b""]

    run(loop, main())


def test_close_without_remove(loop, pair):
    # The watched fd closes for real; removing it afterwards answers as
    # asyncio's epoll selector does (the reader was registered: True).
    a, b = pair

    async def main():
        calls = []
        fd = b.fileno()
        loop.add_reader(fd, calls.append, 1)
        await iterations(3)
        b.close()
        a.settimeout(5)
        assert a.recv(10) == b""
        await iterations(3)
        assert calls == []
        assert loop.remove_reader(fd) is True
        assert loop.remove_reader(fd) is False

    run(loop, main())


def test_closed_socket_object_removed_by_identity(loop, pair):
    # selectors find a closed file object by identity: remove_reader(sock)
    # after sock.close() still removes its reader.
    a, b = pair
    loop.add_reader(b, lambda: None)
    b.close()
    assert loop.remove_reader(b) is True
    with pytest.raises(ValueError):
        loop.remove_reader(b)  # no longer registered: fileno() -1 is invalid


def _raises_same(loop, call):
    """call(loop) raises on ringloop what it raises on stock asyncio."""
    ref = asyncio.SelectorEventLoop()
    try:
        call(ref)
    except Exception as exc:
        expected = exc
    else:
        expected = None
    finally:
        ref.close()
    assert expected is not None
    with pytest.raises(type(expected)) as info:
        call(loop)
    assert getattr(info.value, "errno", None) == getattr(expected, "errno", None)
    assert str(info.value) == str(expected)


def test_errors_as_asyncio(loop, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        _raises_same(loop, lambda lp: lp.add_reader(f.fileno(), print))  # EPERM
    unused = 999_999  # no such descriptor
    _raises_same(loop, lambda lp: lp.add_reader(unused, print))  # EBADF
    _raises_same(loop, lambda lp: lp.add_writer(-5, print))
    _raises_same(loop, lambda lp: lp.add_reader("not a file", print))
    obj = object()
    _raises_same(loop, lambda lp: lp.remove_writer(obj))


def test_modify_after_close_raises_as_asyncio(loop):
    # Reader registered, fd closed, then a writer added for the same fd:
    # asyncio's epoll selector fails to modify it and forgets the fd.
    def call(lp):
        a, b = socket.socketpair()
        a.close()
        fd = b.fileno()
        lp.add_reader(fd, print)
        b.close()
        try:
            lp.add_writer(fd, print)
        finally:
            assert lp.remove_reader(fd) is False  # forgotten

    _raises_same(loop, call)


def test_pipe_writer_and_reader_stream(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    payload = os.urandom(3 << 20)
    got = bytearray()

    async def main():
        done = loop.create_future()
        pos = 0

        def on_write():
            nonlocal pos
            try:
                pos += os.write(w, payload[pos:pos + 100_000])
            except BlockingIOError:
                return
            if pos == len(payload):
                loop.remove_writer(w)

        def on_read():
            data = os.read(r, 1 << 20)
            got.extend(data)
            if len(got) == len(payload):
                loop.remove_reader(r)
                done.set_result(None)

        loop.add_writer(w, on_write)
        loop.add_reader(r, on_read)
        await done

    try:
        run(loop, main())
    finally:
        os.close(r)
        os.close(w)
    assert bytes(got) == payload


def test_closing_loop_with_readers_registered(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(b, calls.append, "r")
    loop.add_writer(a, calls.append, "w")
    run(loop, asyncio.sleep(0.01))
    loop.close()
    assert loop.remove_reader(b) is False  # closed: asyncio answers False
    with pytest.raises(RuntimeError):
        loop.add_reader(b, calls.append)
    # the sockets are intact and still ours
    a.send(b"ok")
    assert b.recv(10) == b"ok"


# ------------------------------------------------------------ ringloop only

ringloop_only = pytest.mark.ringloop_only(reason="ringloop's internals")


@ringloop_only
def test_nothing_in_flight_once_nothing_is_watched(loop, pair):
    a, b = pair

    async def main():
        loop.add_reader(b, lambda: None)  # never ready: the poll stays
        await iterations(3)
        assert loop._ring_info()["inflight"] == 2  # doorbell + the epoll poll
        loop.remove_reader(b)
        await iterations(3)
        assert loop._ring_info()["inflight"] == 1

    run(loop, main())
    # so the loop may move to another thread, like any idle loop
    result = []
    t = threading.Thread(target=lambda: result.append(
        loop.run_until_complete(asyncio.sleep(0, "moved"))))
    t.start()
    t.join()
    assert result == ["moved"]


def _epoll_fds():
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]":
                fds.add(fd)
        except OSError:
            pass
    return fds


@ringloop_only
def test_epoll_descriptor_closed_with_the_loop(loop, pair):
    a, b = pair
    before = _epoll_fds()
    loop.add_reader(b, lambda: None)
    new = _epoll_fds() - before
    assert len(new) == 1  # created with the first watched fd
    loop.remove_reader(b)
    loop.close()
    after = _epoll_fds()
    assert not (new & after)
    assert after <= before  # the epoll backend's own one goes too


@ringloop_only
def test_handle_is_ringloops(loop, pair):
    a, b = pair
    h = loop._add_reader(b, lambda: None)
    assert type(h).__name__ == "Handle"
    assert not h.cancelled()
    loop.remove_reader(b)
    assert h.cancelled()
