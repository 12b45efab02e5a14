"""connect_read_pipe / connect_write_pipe: asyncio's checks, EOF, flow control,
write_eof / abort / close, the write end noticing its reader went away, sockets,
character devices and PTYs. Every test runs on asyncio (the spec) and ringloop."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import socket

import pytest

from net_helpers import run


class ReadProto(asyncio.Protocol):
    def __init__(self):
        self.transport = None
        self.chunks = []
        self.eof = False
        self.lost = None  # the future of connection_lost's argument
        self.events = []

    def connection_made(self, transport):
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()
        self.events.append("made")

    def data_received(self, data):
        self.chunks.append(data)

    def eof_received(self):
        self.eof = True
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    @property
    def data(self):
        return b"".join(self.chunks)


class WriteProto(asyncio.BaseProtocol):
    def __init__(self):
        self.transport = None
        self.paused = 0
        self.resumed = 0
        self.lost = None
        self.resumed_fut = None

    def connection_made(self, transport):
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()

    def pause_writing(self):
        self.paused += 1
        self.resumed_fut = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        self.resumed += 1
        self.resumed_fut.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    rf = open(r, "rb", buffering=0)
    wf = open(w, "wb", buffering=0)
    yield rf, wf
    rf.close()
    wf.close()


async def _iterations(n=5):
    for _ in range(n):
        await asyncio.sleep(0)


def test_read_pipe_data_eof_and_extra_info(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_read_pipe(ReadProto, rf)
        assert tr.get_extra_info("pipe") is rf
        assert not os.get_blocking(rf.fileno())
        assert tr.is_reading()
        wf.write(b"hello ")
        wf.write(b"world")
        wf.close()
        assert await proto.lost is None
        assert proto.data == b"hello world"
        assert proto.events == ["made", "eof", "lost"]
        assert tr.is_closing()

    run(loop, main())


def test_read_pipe_rejects_regular_file(loop, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only"):
            run(loop, loop.connect_read_pipe(ReadProto, f))


def test_write_pipe_rejects_regular_file(loop, tmp_path):
    with open(tmp_path / "f", "wb") as f:
        with pytest.raises(ValueError, match="pipes, sockets and character devices"):
            run(loop, loop.connect_write_pipe(WriteProto, f))


def test_read_pipe_pause_resume(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_read_pipe(ReadProto, rf)
        await _iterations()
        tr.pause_reading()
        assert not tr.is_reading()
        wf.write(b"while paused")
        await _iterations(10)
        assert proto.chunks == []
        tr.resume_reading()
        assert tr.is_reading()
        wf.close()
        await proto.lost
        assert proto.data == b"while paused"

    run(loop, main())


def test_read_pipe_close_and_socket(loop):
    a, b = socket.socketpair()

    async def main():
        tr, proto = await loop.connect_read_pipe(ReadProto, a)
        b.sendall(b"via socket")
        while proto.data != b"via socket":
            await asyncio.sleep(0)
        tr.close()
        assert tr.is_closing()
        assert await proto.lost is None
        assert not proto.eof

    try:
        run(loop, main())
    finally:
        a.close()
        b.close()


def test_write_pipe_write_and_write_eof(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_write_pipe(WriteProto, wf)
        assert tr.get_extra_info("pipe") is wf
        assert not os.get_blocking(wf.fileno())
        assert tr.can_write_eof()
        tr.write(b"abc")
        tr.writelines([b"d", bytearray(b"e"), memoryview(b"f")])
        tr.write_eof()
        assert tr.is_closing()
        assert await proto.lost is None
        assert rf.read() == b"abcdef"

    run(loop, main())


def test_write_pipe_to_char_device(loop):
    with open(os.devnull, "wb", buffering=0) as f:

        async def main():
            tr, proto = await loop.connect_write_pipe(WriteProto, f)
            tr.write(b"x" * 100000)
            assert tr.get_write_buffer_size() == 0
            tr.close()
            assert await proto.lost is None

        run(loop, main())


def test_write_pipe_flow_control_and_big_transfer(loop, pipe):
    """The writer fills the pipe while the reader is paused: pause_writing, then
    the reader resumes and everything arrives in order (checked by digest)."""
    rf, wf = pipe
    block = os.urandom(64 * 1024)
    total = 8 * 1024 * 1024
    digest = hashlib.sha256(block * (total // len(block))).hexdigest()

    async def main():
        rtr, rproto = await loop.connect_read_pipe(ReadProto, rf)
        wtr, wproto = await loop.connect_write_pipe(WriteProto, wf)
        wtr.set_write_buffer_limits(high=256 * 1024)
        assert wtr.get_write_buffer_limits() == (64 * 1024, 256 * 1024)
        rtr.pause_reading()
        sent = 0
        while sent < total:
            wtr.write(block)
            sent += len(block)
            if wproto.paused > wproto.resumed:
                if rtr.is_reading() is False and not rproto.chunks:
                    assert wtr.get_write_buffer_size() > 256 * 1024
                    rtr.resume_reading()
                await wproto.resumed_fut
        assert wproto.paused >= 1
        wtr.close()
        assert await wproto.lost is None
        assert await rproto.lost is None
        assert hashlib.sha256(rproto.data).hexdigest() == digest

    run(loop, main())


def test_write_pipe_reader_closed_empty_buffer(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_write_pipe(WriteProto, wf)
        rf.close()
        assert await proto.lost is None
        assert tr.is_closing()

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_write_pipe_reader_closed_with_pending_data(loop, pipe, exc_contexts):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_write_pipe(WriteProto, wf)
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (1 << 20))  # more than the pipe holds
        assert tr.get_write_buffer_size() > 0
        rf.close()
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)

    run(loop, main())
    # asyncio reports a broken pipe only in debug mode (a ConnectionResetError
    # subclass is logged at debug level): no handler call either way.
    assert exc_contexts == []


def test_write_pipe_abort_discards_buffer(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_write_pipe(WriteProto, wf)
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"y" * (1 << 20))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert await proto.lost is None
        assert tr.get_write_buffer_size() == 0

    run(loop, main())


def test_write_after_close_is_dropped(loop, pipe):
    rf, wf = pipe

    async def main():
        tr, proto = await loop.connect_write_pipe(WriteProto, wf)
        tr.close()
        await proto.lost
        tr.write(b"late")  # asyncio counts it and warns after a few; no error

    run(loop, main())


def test_read_pty_output(loop):
    master, slave = os.openpty()
    master_obj = io.open(master, "rb", 0)

    async def main():
        tr, proto = await loop.connect_read_pipe(ReadProto, master_obj)
        os.write(slave, b"1")
        while proto.data != b"1":
            await asyncio.sleep(0)
        os.write(slave, b"2345")
        while proto.data != b"12345":
            await asyncio.sleep(0)
        os.close(slave)
        exc = await proto.lost  # Linux reports a closed PTY as EIO
        assert exc is None or (isinstance(exc, OSError) and exc.errno == errno.EIO)
        tr.close()

    try:
        run(loop, main())
    finally:
        master_obj.close()


def test_bidirectional_pty(loop):
    master, slave = os.openpty()
    slave_r = io.open(slave, "rb", 0)
    slave_w = io.open(os.dup(slave), "wb", 0)

    async def main():
        rtr, rproto = await loop.connect_read_pipe(ReadProto, slave_r)
        wtr, wproto = await loop.connect_write_pipe(WriteProto, slave_w)
        wtr.write(b"to master")
        got = b""
        while len(got) < 9:
            got += os.read(master, 100)  # the pty is blocking; data is there
        assert got == b"to master"
        os.write(master, b"to slave\n")  # canonical mode: a line
        while b"to slave" not in rproto.data:
            await asyncio.sleep(0)
        rtr.close()
        wtr.close()
        await rproto.lost
        await wproto.lost

    try:
        run(loop, main())
    finally:
        slave_r.close()
        slave_w.close()
        os.close(master)


def test_write_pipe_copies_mutable_data(loop, pipe):
    """What the pipe cannot take at once is kept as it was when write() was
    called, even if the caller then changes its bytearray."""
    rf, wf = pipe
    size = 1 << 20

    async def main():
        rtr, rproto = await loop.connect_read_pipe(ReadProto, rf)
        wtr, wproto = await loop.connect_write_pipe(WriteProto, wf)
        buf = bytearray(b"a" * size)
        wtr.write(buf)
        wtr.write(memoryview(buf)[:10])
        buf[:] = b"b" * size
        wtr.write(b"end")
        assert wtr.get_write_buffer_size() > 0
        wtr.close()
        assert await wproto.lost is None
        assert await rproto.lost is None
        assert rproto.data == b"a" * (size + 10) + b"end"

    run(loop, main())


@pytest.mark.ringloop_only(reason="ringloop's own C helper behind the write pipe")
def test_pipewriter_misuse_raises(loop, pipe):
    from ringloop import _core

    rf, wf = pipe
    w = _core.PipeWriter(loop, wf.fileno())
    with pytest.raises(TypeError):
        w.send(bytearray(b"x"), 0, print)
    with pytest.raises(ValueError):
        w.send(b"x", 2, print)
    with pytest.raises(TypeError):
        _core.PipeWriter(object(), 1)
    done = []
    w.send(b"hello", 1, lambda n, err: done.append((n, err)))
    assert w.pending() == 4
    with pytest.raises(RuntimeError):
        w.send(b"x", 0, print)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert done == [(4, 0)] and rf.read(4) == b"ello"
    w.send(b"gone", 0, lambda n, err: done.append((n, err)))
    assert w.cancel() is True and w.cancel() is False
    loop.run_until_complete(asyncio.sleep(0.01))
    assert done == [(4, 0)]
    rf.close()
    w.send(b"broken", 0, lambda n, err: done.append((n, err)))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert done[-1] == (0, errno.EPIPE)
