"""Stream transports (create_connection / create_server over TCP): the Transport API,
the exact protocol callback order, half-close, close/abort, writes after close or
write_eof, write argument checks, pause/resume reading, write buffer limits,
extra info, protocol exceptions."""

import asyncio
import errno
import inspect
import logging
import socket
import struct

import pytest
from net_helpers import (
    PY312,
    HalfCloseProtocol,
    RecordingProtocol,
    close_pair,
    raises_exactly,
    run,
    tcp_pair,
    wait_for_data,
)

# ------------------------------------------------------------------ type / extra info


def test_transport_types(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            for t in (tr, spr.transport):
                assert isinstance(t, asyncio.Transport)
                assert isinstance(t, asyncio.ReadTransport)
                assert isinstance(t, asyncio.WriteTransport)
                assert isinstance(t, asyncio.BaseTransport)
                assert t.is_closing() is False
                assert t.is_reading() is True
                assert t.can_write_eof() is True
                assert t.get_write_buffer_size() == 0
            assert tr.get_protocol() is pr
            assert spr.transport.get_protocol() is spr
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_extra_info(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            server_addr = server.sockets[0].getsockname()
            assert tr.get_extra_info("peername") == server_addr
            client_addr = tr.get_extra_info("sockname")
            assert client_addr[0] == "127.0.0.1" and client_addr[1] > 0
            st = spr.transport
            assert st.get_extra_info("sockname") == server_addr
            assert st.get_extra_info("peername") == client_addr

            for t in (tr, st):
                sock = t.get_extra_info("socket")
                assert sock is not None
                assert isinstance(sock.fileno(), int) and sock.fileno() >= 0
                assert sock.family == socket.AF_INET
                assert sock.type == socket.SOCK_STREAM
                assert sock.getsockname() == t.get_extra_info("sockname")
                assert sock.getpeername() == t.get_extra_info("peername")
                # asyncio disables Nagle on every TCP transport.
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                # Unknown keys: None, or the given default.
                assert t.get_extra_info("no-such-key") is None
                assert t.get_extra_info("no-such-key", 42) == 42
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


# ------------------------------------------------------------------ callback order


def test_callback_order_peer_sends_then_closes(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        st.write(b"hello ")
        st.write(b"world")
        st.close()
        exc = await pr.lost
        assert exc is None
        assert pr.simple_events() == ["made", "data", "eof", "lost"]
        assert bytes(pr.data) == b"hello world"
        # eof_received returned None: the transport closed itself.
        assert tr.is_closing()
        await spr.lost
        assert spr.simple_events() == ["made", "lost"]
        await close_pair(server)

    run(loop, main())


def test_callback_order_server_side(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.write(b"abc")
        tr.write_eof()
        await spr.lost
        assert spr.simple_events() == ["made", "data", "eof", "lost"]
        assert spr.lost.result() is None
        assert bytes(spr.data) == b"abc"
        await pr.lost
        assert pr.simple_events() == ["made", "eof", "lost"]
        await close_pair(server)

    run(loop, main())


def test_connection_made_before_create_connection_returns(loop):
    async def main():
        server = await loop.create_server(
            lambda: RecordingProtocol(loop), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", port
        )
        # create_connection returns only once connection_made has run.
        assert pr.events == ["made"]
        assert pr.transport is tr
        await close_pair(server, tr)
        assert pr.events == ["made", ("lost", None)]

    run(loop, main())


def test_greeting_written_in_connection_made(loop):
    class Greeter(RecordingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.write(b"220 welcome\r\n")

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Greeter)
        await wait_for_data(pr, 13)
        assert bytes(pr.data) == b"220 welcome\r\n"
        await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_half_close_eof_received_true_keeps_writing(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop, client_cls=HalfCloseProtocol)
        st = spr.transport
        st.write(b"request")
        st.write_eof()
        await pr.eof
        await asyncio.sleep(0.01)
        # eof_received returned True: still open, can write the answer.
        assert not tr.is_closing()
        assert not pr.lost.done()
        assert bytes(pr.data) == b"request"
        tr.write(b"response")
        await wait_for_data(spr, len(b"response"))
        assert bytes(spr.data) == b"response"
        tr.close()
        assert await pr.lost is None
        assert pr.simple_events() == ["made", "data", "eof", "lost"]
        await spr.lost
        assert spr.simple_events() == ["made", "data", "eof", "lost"]
        await close_pair(server)

    run(loop, main())


def test_write_eof_then_peer_still_answers(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=HalfCloseProtocol)
        tr.write(b"question")
        assert tr.can_write_eof()
        tr.write_eof()
        # write_eof twice is harmless.
        tr.write_eof()
        assert not tr.is_closing()
        await spr.eof
        assert bytes(spr.data) == b"question"
        spr.transport.write(b"answer")
        spr.transport.close()
        assert await pr.lost is None
        assert bytes(pr.data) == b"answer"
        assert pr.simple_events() == ["made", "data", "eof", "lost"]
        await close_pair(server)

    run(loop, main())


def test_connection_lost_called_once(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.close()
        tr.close()
        tr.abort()
        spr.transport.close()
        await pr.lost
        await spr.lost
        for _ in range(5):
            await asyncio.sleep(0)
        assert [e for e in pr.events if isinstance(e, tuple)] == [("lost", None)]
        assert [e for e in spr.events if isinstance(e, tuple)] == [("lost", None)]
        await close_pair(server)

    run(loop, main())


def test_connection_lost_not_called_synchronously_by_close(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.close()
        assert tr.is_closing()
        assert not pr.lost.done()  # scheduled, not called from within close()
        assert await pr.lost is None
        spr.transport.abort()
        assert spr.transport.is_closing()
        assert not spr.lost.done()
        await spr.lost
        await close_pair(server)

    run(loop, main())


def test_close_flushes_pending_writes(loop):
    total = 8 * 1024 * 1024

    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        payload = bytes(range(256)) * (total // 256)
        tr.write(payload)
        tr.close()
        assert tr.is_closing()
        # The buffer is flushed before the connection is closed.
        assert await pr.lost is None
        await spr.eof
        assert len(spr.data) == total
        assert spr.data == payload
        await spr.lost
        await close_pair(server)

    run(loop, main())


def test_abort_discards_buffer(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        spr.transport.pause_reading()
        # Fill the kernel buffers and the transport's own buffer.
        while not pr.paused:
            tr.write(b"x" * 1024 * 1024)
            await asyncio.sleep(0)
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        assert tr.get_write_buffer_size() == 0
        spr.transport.resume_reading()
        # The peer sees the end of the stream (EOF or a reset) without everything.
        exc = await spr.lost
        assert exc is None or isinstance(exc, ConnectionResetError)
        await close_pair(server)

    run(loop, main())


# ------------------------------------------------------------------ write() rules


@pytest.mark.parametrize("bad", ["text", 123, None, [b"a"], object()], ids=repr)
def test_write_non_bytes_raises_type_error(loop, bad):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            with pytest.raises(TypeError):
                tr.write(bad)
            # The transport is still usable.
            tr.write(b"ok")
            await wait_for_data(spr, 2)
            assert bytes(spr.data) == b"ok"
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_write_accepts_bytes_like(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.write(b"a")
        tr.write(bytearray(b"b"))
        tr.write(memoryview(b"xcx")[1:2])
        tr.write(b"")  # no-op
        tr.writelines([b"d", bytearray(b"e"), memoryview(b"f")])
        tr.writelines((b"g", b"h"))
        tr.writelines([])
        await wait_for_data(spr, 8)
        assert bytes(spr.data) == b"abcdefgh"
        await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_write_after_write_eof_raises_runtime_error(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            tr.write_eof()
            with raises_exactly(RuntimeError):
                tr.write(b"late")
            with raises_exactly(RuntimeError):
                tr.writelines([b"late"])
            await spr.eof
            assert bytes(spr.data) == b""
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_write_after_close_is_dropped_and_logged(loop, caplog):
    # asyncio drops writes on a closed transport silently, then (from the fifth
    # dropped write on) logs a warning 'socket.send() raised exception.' on the
    # "asyncio" logger for each one (constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES).
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.write(b"before")
        await wait_for_data(spr, 6)
        tr.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(4):
                tr.write(b"dropped")
            assert [r for r in caplog.records if r.name == "asyncio"] == []
            tr.write(b"dropped")
            tr.write(b"dropped")
        warnings = [r for r in caplog.records if r.name == "asyncio"]
        assert len(warnings) == 2
        assert all(r.levelno == logging.WARNING for r in warnings)
        assert all(
            r.getMessage() == "socket.send() raised exception." for r in warnings
        )
        await pr.lost
        await spr.eof
        assert bytes(spr.data) == b"before"
        await close_pair(server, spr.transport)

    run(loop, main())


def _asyncio_writelines_lacks_conn_lost_check():
    from asyncio import selector_events

    meth = selector_events._SelectorSocketTransport.__dict__.get("writelines")
    if meth is None:  # 3.11: inherited WriteTransport.writelines -> write()
        return False
    return "_conn_lost" not in inspect.getsource(meth)


def test_writelines_after_close_is_dropped(loop, loop_kind):
    if loop_kind == "asyncio" and _asyncio_writelines_lacks_conn_lost_check():
        pytest.skip(
            "this Python's asyncio has gh-136234: writelines() after close() raises "
            "TypeError (3.12 zero-copy writelines lacks write()'s _conn_lost check); "
            "ringloop drops the data like write() does"
        )

    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.write(b"before")
        await wait_for_data(spr, 6)
        tr.close()
        tr.writelines([b"dropped", b"too"])
        await pr.lost
        tr.writelines([b"dropped"])
        await spr.eof
        assert bytes(spr.data) == b"before"
        await close_pair(server, spr.transport)

    run(loop, main())


def test_write_after_connection_lost_is_silent(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.close()
        await pr.lost
        # Still no exception once connection_lost has run.
        tr.write(b"x")
        await close_pair(server, spr.transport)

    run(loop, main())


def _fill_until_paused(tr, pr):
    """Write until the peer (not reading) pushes back: pause_writing called."""

    async def fill():
        written = 0
        start = pr.paused
        while pr.paused == start:
            tr.write(b"F" * 256 * 1024)
            written += 256 * 1024
            await asyncio.sleep(0)
            assert written < 512 * 1024 * 1024, "the peer never pushed back"
        return written

    return fill()


@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
@pytest.mark.parametrize("method", ["write", "writelines"])
def test_mutating_data_right_after_write_on_idle_transport(loop, kind, method):
    # Nothing buffered: asyncio sends at once inside write(), so mutating the
    # caller's buffer right after write() returns cannot change what is sent (on
    # every version). A loop that submits the send later must have copied it.
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        sent = []
        for i in range(50):
            buf = bytearray(b"original-%02d;" % i)
            sent.append(bytes(buf))
            data = buf if kind == "bytearray" else memoryview(buf)
            if method == "write":
                tr.write(data)
            else:
                tr.writelines([data, b"|"])
                sent.append(b"|")
            buf[:] = b"X" * len(buf)
        expected = b"".join(sent)
        await wait_for_data(spr, len(expected))
        assert bytes(spr.data) == expected
        await close_pair(server, tr, spr.transport)

    run(loop, main())


@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
@pytest.mark.parametrize("method", ["write", "writelines"])
def test_buffered_mutable_data_is_snapshotted(loop, loop_kind, kind, method):
    # Data accepted by write() is what gets sent, even if the caller's bytearray is
    # mutated afterwards while it still sits in the transport's buffer.
    if loop_kind == "asyncio" and PY312:
        pytest.skip(
            "asyncio 3.12+ (GH-91166 zero-copy writes) keeps a reference to the "
            "caller's buffer; 3.11 copies it. ringloop must copy (or send before "
            "returning) on every version"
        )

    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        st.pause_reading()
        written = await _fill_until_paused(tr, pr)
        buf = bytearray(b"ORIGINAL")
        data = buf if kind == "bytearray" else memoryview(buf)
        if method == "write":
            tr.write(data)
        else:
            tr.writelines([data])
        buf[:] = b"MUTATED!"
        tr.close()
        st.resume_reading()
        await spr.eof
        assert len(spr.data) == written + 8
        assert bytes(spr.data[-8:]) == b"ORIGINAL"
        await pr.lost
        await close_pair(server, st)

    run(loop, main())


def test_many_small_writes_keep_order(loop):
    # Thousands of small writes (and writelines) in one go arrive complete and in
    # order, however the loop batches or submits them.
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        expected = []
        for i in range(20_000):
            rec = b"%d," % i
            expected.append(rec)
            if i % 3 == 0:
                tr.writelines([rec[:1], rec[1:]])
            elif i % 3 == 1:
                tr.write(bytearray(rec))
            else:
                tr.write(rec)
            if i % 1000 == 0:
                await asyncio.sleep(0)
        tr.write_eof()
        await spr.eof
        assert bytes(spr.data) == b"".join(expected)
        await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_extra_info_survives_close(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        sockname = tr.get_extra_info("sockname")
        peername = tr.get_extra_info("peername")
        tr.close()
        await pr.lost
        # The addresses are remembered after the connection is gone.
        assert tr.get_extra_info("sockname") == sockname
        assert tr.get_extra_info("peername") == peername
        assert tr.is_closing()
        await close_pair(server, spr.transport)

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_connection_made_exception_goes_to_handler(loop, exc_contexts):
    error = ValueError("raised by connection_made")

    class Failing(RecordingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise error

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Failing)
        tr.close()
        await pr.lost
        # Closing still works whatever state the failed connection_made left.
        spr.transport.close()
        await spr.lost
        await close_pair(server)

    run(loop, main())
    assert [c["exception"] for c in exc_contexts] == [error]
    exc_contexts.clear()


# ------------------------------------------------------------------ reading control


def test_pause_resume_reading(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        tr.pause_reading()
        assert tr.is_reading() is False
        tr.pause_reading()  # idempotent
        assert tr.is_reading() is False
        st.write(b"while paused")
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert bytes(pr.data) == b""
        tr.resume_reading()
        assert tr.is_reading() is True
        tr.resume_reading()  # idempotent
        await wait_for_data(pr, 12)
        assert bytes(pr.data) == b"while paused"
        tr.close()
        assert tr.is_reading() is False
        tr.pause_reading()  # no-op on a closing transport
        tr.resume_reading()
        assert tr.is_reading() is False
        await close_pair(server, st)

    run(loop, main())


def test_paused_in_connection_made_reads_nothing_and_peer_blocks(loop):
    class PausedAtStart(RecordingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=PausedAtStart)
        st = spr.transport
        assert st.is_reading() is False
        written = await _fill_until_paused(tr, pr)
        # The reader really stopped consuming: the writer got pushed back and the
        # paused protocol was given nothing.
        assert pr.paused == 1
        assert tr.get_write_buffer_size() > 0
        assert bytes(spr.data) == b""
        st.resume_reading()
        await wait_for_data(spr, written)
        assert len(spr.data) == written
        # Everything drained: the writer was resumed exactly once.
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert pr.resumed == 1
        assert pr.events.count("pause_writing") == 1
        await close_pair(server, tr, st)

    run(loop, main())


def test_set_protocol_switches_receiver(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        tr.write(b"one")
        await wait_for_data(spr, 3)
        other = RecordingProtocol(loop)
        st.set_protocol(other)
        assert st.get_protocol() is other
        tr.write(b"two")
        await wait_for_data(other, 3)
        assert bytes(spr.data) == b"one"
        assert bytes(other.data) == b"two"
        tr.close()
        await other.lost
        assert not spr.lost.done()
        # set_protocol does not call connection_made on the new protocol.
        assert other.simple_events() == ["data", "eof", "lost"]
        await close_pair(server)

    run(loop, main())


# ------------------------------------------------------------------ write buffer limits


def test_write_buffer_limits(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        try:
            # asyncio's defaults: high 64 KiB, low = high // 4.
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            tr.set_write_buffer_limits(high=100)
            assert tr.get_write_buffer_limits() == (25, 100)
            tr.set_write_buffer_limits(high=100, low=10)
            assert tr.get_write_buffer_limits() == (10, 100)
            tr.set_write_buffer_limits(low=50)
            assert tr.get_write_buffer_limits() == (50, 200)
            tr.set_write_buffer_limits(0)
            assert tr.get_write_buffer_limits() == (0, 0)
            tr.set_write_buffer_limits()
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            with pytest.raises(ValueError):
                tr.set_write_buffer_limits(high=10, low=20)
            with pytest.raises(ValueError):
                tr.set_write_buffer_limits(high=-1)
            with pytest.raises(ValueError):
                tr.set_write_buffer_limits(high=10, low=-1)
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        finally:
            await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_write_buffer_size_and_pause_threshold(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        st.pause_reading()
        await _fill_until_paused(tr, pr)
        size = tr.get_write_buffer_size()
        assert size > 64 * 1024  # paused means above the high-water mark
        tr.write(b"y" * 1000)
        assert tr.get_write_buffer_size() == size + 1000
        # Still paused: pause_writing is not called again.
        assert pr.paused == 1
        # Lowering limits while above them does not pause twice; raising the
        # high-water mark above the buffered size does not resume by itself.
        tr.set_write_buffer_limits(high=size * 100)
        assert pr.paused == 1
        st.resume_reading()
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert pr.resumed == 1
        await close_pair(server, tr, st)

    run(loop, main())


def test_set_write_buffer_limits_pauses_immediately(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        st.pause_reading()
        await _fill_until_paused(tr, pr)
        st.resume_reading()
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert (pr.paused, pr.resumed) == (1, 1)
        st.pause_reading()
        # With limits of zero, any buffered byte pauses the writer.
        tr.set_write_buffer_limits(0)
        await _fill_until_paused(tr, pr)
        assert pr.paused == 2
        st.resume_reading()
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert pr.resumed == 2
        await close_pair(server, tr, st)

    run(loop, main())


# ------------------------------------------------------------------ errors


def _set_linger_zero(transport):
    transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )


def test_peer_reset_mid_write(loop):
    # The peer resets the connection while we have lots of data buffered: the
    # writer gets connection_lost(ConnectionResetError) (an OSError, so asyncio does
    # not call the exception handler; errno ECONNRESET, never EPIPE here: the reset
    # is the first error the socket reports), later writes are dropped silently, and
    # resume_writing is never called for the paused protocol.
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        st = spr.transport
        st.pause_reading()
        await _fill_until_paused(tr, pr)
        _set_linger_zero(st)
        st.abort()  # SO_LINGER 0 + close: RST
        exc = await pr.lost
        assert isinstance(exc, ConnectionResetError), repr(exc)
        assert exc.errno == errno.ECONNRESET
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        tr.write(b"after reset")
        assert pr.events[-1] == ("lost", exc)
        assert "eof" not in pr.events
        assert pr.resumed == 0
        assert await spr.lost is None
        await close_pair(server)

    run(loop, main())


def test_peer_reset_while_idle(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        _set_linger_zero(spr.transport)
        spr.transport.abort()
        exc = await pr.lost
        assert isinstance(exc, ConnectionResetError), repr(exc)
        assert pr.simple_events() == ["made", "lost"]
        await close_pair(server)

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_data_received_exception_goes_to_handler_and_closes(loop, exc_contexts):
    error = ValueError("boom in data_received")

    class Failing(RecordingProtocol):
        def data_received(self, data):
            super().data_received(data)
            raise error

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Failing)
        tr.write(b"trigger")
        # The transport is force-closed and connection_lost gets the exception.
        assert await spr.lost is error
        assert spr.simple_events() == ["made", "data", "lost"]
        # The peer sees the connection end.
        exc = await pr.lost
        assert exc is None or isinstance(exc, ConnectionResetError)
        await close_pair(server)

    run(loop, main())
    assert len(exc_contexts) == 1
    ctx = exc_contexts[0]
    assert ctx["exception"] is error
    assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
    assert ctx["protocol"].__class__ is Failing
    assert isinstance(ctx["transport"], asyncio.Transport)
    exc_contexts.clear()


@pytest.mark.expect_handler_calls
def test_eof_received_exception_goes_to_handler(loop, exc_contexts):
    error = KeyError("boom in eof_received")

    class Failing(RecordingProtocol):
        def eof_received(self):
            super().eof_received()
            raise error

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Failing)
        tr.write_eof()
        assert await spr.lost is error
        assert spr.simple_events() == ["made", "eof", "lost"]
        await pr.lost
        await close_pair(server)

    run(loop, main())
    assert [c["exception"] for c in exc_contexts] == [error]
    assert (
        exc_contexts[0]["message"]
        == "Fatal error: protocol.eof_received() call failed."
    )
    exc_contexts.clear()


@pytest.mark.expect_handler_calls
def test_connection_lost_exception_goes_to_handler(loop, exc_contexts):
    error = RuntimeError("boom in connection_lost")
    done = []

    class Failing(RecordingProtocol):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            done.append(1)
            raise error

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, client_cls=Failing)
        tr.close()
        await pr.lost
        for _ in range(5):
            await asyncio.sleep(0)
        await close_pair(server, spr.transport)

    run(loop, main())
    assert done == [1]
    assert [c["exception"] for c in exc_contexts] == [error]
    exc_contexts.clear()


def test_base_exception_in_data_received_propagates(loop):
    # KeyboardInterrupt/SystemExit are not swallowed by the transport: they leave
    # run_until_complete.
    class Interrupting(RecordingProtocol):
        def data_received(self, data):
            super().data_received(data)
            raise KeyboardInterrupt

    async def setup():
        return await tcp_pair(loop, server_cls=Interrupting)

    server, tr, pr, spr = run(loop, setup())
    sleeper = loop.create_task(asyncio.sleep(10))
    tr.write(b"x")
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(sleeper)
    assert bytes(spr.data) == b"x"
    sleeper.cancel()
    run(loop, close_pair(server, tr, spr.transport))
