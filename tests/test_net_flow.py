"""Flow control and BufferedProtocol: pause_writing/resume_writing with a slow
reader, get_buffer/buffer_updated/eof_received, tiny buffers, protocol switching,
and errors raised by protocol callbacks (they go to the loop's exception handler)."""

import asyncio

import pytest
from net_helpers import RecordingProtocol, close_pair, run, tcp_pair, wait_for_data


class RecordingBuffered(asyncio.BufferedProtocol):
    """A BufferedProtocol with a fixed-size receive buffer that records its calls."""

    eof_result = None

    def __init__(self, loop, bufsize=65536):
        self.loop = loop
        self.buf = bytearray(bufsize)
        self.data = bytearray()
        self.events = []
        self.hints = []
        self.transport = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self._outstanding = False

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def get_buffer(self, sizehint):
        assert isinstance(sizehint, int)
        # Never asked for a second buffer before the first one was filled.
        assert not self._outstanding
        self._outstanding = True
        self.hints.append(sizehint)
        if not self.events or self.events[-1] != "io":
            self.events.append("io")
        return self.buf

    def buffer_updated(self, nbytes):
        assert self._outstanding
        self._outstanding = False
        assert 0 < nbytes <= len(self.buf)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_result

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


# ------------------------------------------------------------------ flow control


class PacedWriter(RecordingProtocol):
    """Writes ``total`` bytes as fast as flow control allows, then write_eof()."""

    def __init__(self, loop, total, chunk=64 * 1024):
        super().__init__(loop)
        self.total = total
        self.chunk = chunk
        self.sent = 0
        self.is_paused = False
        self.finished = loop.create_future()

    def connection_made(self, transport):
        super().connection_made(transport)
        self.pump()

    def pump(self):
        while not self.is_paused and self.sent < self.total:
            n = min(self.chunk, self.total - self.sent)
            self.transport.write(bytes([self.sent // self.chunk % 251]) * n)
            self.sent += n
        if self.sent >= self.total and not self.finished.done():
            self.transport.write_eof()
            self.finished.set_result(None)

    def pause_writing(self):
        assert not self.is_paused, "pause_writing twice without resume_writing"
        super().pause_writing()
        self.is_paused = True

    def resume_writing(self):
        assert self.is_paused, "resume_writing without pause_writing"
        super().resume_writing()
        self.is_paused = False
        self.pump()


def test_pause_resume_writing_with_slow_reader(loop):
    total = 24 * 1024 * 1024

    class SlowReader(RecordingProtocol):
        """Reads in bursts: pauses reading after each chunk for a while."""

        def data_received(self, data):
            super().data_received(data)
            self.transport.pause_reading()
            self.loop.call_later(0.001, self.transport.resume_reading)

    async def main():
        server, tr, pr, spr = await tcp_pair(
            loop, client_cls=lambda lp: PacedWriter(lp, total), server_cls=SlowReader
        )
        await pr.finished
        await spr.eof
        assert len(spr.data) == total
        expected_first = bytes([0]) * 64 * 1024
        assert spr.data[: 64 * 1024] == expected_first
        # Pushed back at least once, and every pause was followed by a resume.
        assert pr.paused >= 1
        assert pr.resumed == pr.paused
        flow = [e for e in pr.events if e in ("pause_writing", "resume_writing")]
        assert flow == ["pause_writing", "resume_writing"] * pr.paused
        await close_pair(server, tr, spr.transport)

    run(loop, main())


def test_write_buffer_drains_to_zero_before_resume(loop):
    # resume_writing is called once the buffer is at or below the low-water mark.
    class Checking(PacedWriter):
        def resume_writing(self):
            self.sizes_at_resume.append(self.transport.get_write_buffer_size())
            super().resume_writing()

    async def main():
        def make(lp):
            p = Checking(lp, 8 * 1024 * 1024)
            p.sizes_at_resume = []
            return p

        class Paused(RecordingProtocol):
            def connection_made(self, transport):
                super().connection_made(transport)
                transport.pause_reading()
                self.loop.call_later(0.05, transport.resume_reading)

        server, tr, pr, spr = await tcp_pair(loop, client_cls=make, server_cls=Paused)
        await pr.finished
        await spr.eof
        low, high = tr.get_write_buffer_limits()
        assert pr.sizes_at_resume
        assert all(size <= low for size in pr.sizes_at_resume)
        await close_pair(server, tr, spr.transport)

    run(loop, main())


@pytest.mark.expect_handler_calls
def test_pause_writing_exception_goes_to_handler(loop, exc_contexts):
    error = ValueError("in pause_writing")
    error2 = ValueError("in resume_writing")

    class Failing(RecordingProtocol):
        def pause_writing(self):
            super().pause_writing()
            raise error

        def resume_writing(self):
            super().resume_writing()
            raise error2

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, client_cls=Failing)
        spr.transport.pause_reading()
        tr.set_write_buffer_limits(high=1024)
        tr.write(b"x" * (8 * 1024 * 1024))  # more than the kernel takes at once
        assert pr.paused == 1
        # The transport carries on.
        assert not tr.is_closing()
        spr.transport.resume_reading()
        await wait_for_data(spr, 8 * 1024 * 1024)
        while not pr.resumed:
            await asyncio.sleep(0.001)
        await close_pair(server, tr, spr.transport)
        assert pr.lost.result() is None

    run(loop, main())
    assert [c["exception"] for c in exc_contexts] == [error, error2]
    assert exc_contexts[0]["message"] == "protocol.pause_writing() failed"
    assert exc_contexts[1]["message"] == "protocol.resume_writing() failed"
    for c in exc_contexts:
        assert isinstance(c["transport"], asyncio.Transport)
        assert isinstance(c["protocol"], Failing)
    exc_contexts.clear()


# ------------------------------------------------------------------ BufferedProtocol


def test_buffered_protocol_callback_order(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=RecordingBuffered)
        payload = bytes(range(256)) * 4096  # 1 MiB
        tr.write(payload)
        tr.write_eof()
        await spr.lost
        assert spr.events == ["made", "io", "eof", ("lost", None)]
        assert spr.data == payload
        await pr.lost
        await close_pair(server)

    run(loop, main())


@pytest.mark.parametrize("bufsize", [1, 7, 4096])
def test_buffered_protocol_small_buffers(loop, bufsize):
    total = {1: 20_000, 7: 200_000, 4096: 2_000_000}[bufsize]

    async def main():
        server, tr, pr, spr = await tcp_pair(
            loop, server_cls=lambda lp: RecordingBuffered(lp, bufsize)
        )
        payload = (bytes(range(251)) * (total // 251 + 1))[:total]  # 251: prime period
        tr.write(payload)
        tr.close()
        await spr.eof
        assert len(spr.data) == total
        assert spr.data == payload
        await spr.lost
        await pr.lost
        await close_pair(server)

    run(loop, main())


def test_buffered_protocol_client_side(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(
            loop, client_cls=lambda lp: RecordingBuffered(lp, 1000)
        )
        payload = b"0123456789" * 10_000
        spr.transport.write(payload)
        spr.transport.close()
        await pr.lost
        assert pr.data == payload
        assert pr.events == ["made", "io", "eof", ("lost", None)]
        await close_pair(server)

    run(loop, main())


def test_buffered_protocol_half_close(loop):
    class Half(RecordingBuffered):
        eof_result = True

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Half)
        tr.write(b"question")
        tr.write_eof()
        await spr.eof
        await asyncio.sleep(0.01)
        assert not spr.transport.is_closing()
        spr.transport.write(b"answer")
        spr.transport.close()
        await pr.lost
        assert bytes(pr.data) == b"answer"
        assert spr.events == ["made", "io", "eof", ("lost", None)]
        await close_pair(server)

    run(loop, main())


def test_buffered_protocol_new_buffer_each_time(loop):
    # get_buffer may return a different buffer every time; data lands in the one
    # returned by the latest call.
    class Rotating(RecordingBuffered):
        def get_buffer(self, sizehint):
            self.buf = bytearray(97 + len(self.hints) % 5)
            return super().get_buffer(sizehint)

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=lambda lp: Rotating(lp))
        payload = bytes(range(256)) * 400
        tr.write(payload)
        tr.close()
        await spr.eof
        assert spr.data == payload
        await spr.lost
        await pr.lost
        await close_pair(server)

    run(loop, main())


def test_buffered_protocol_memoryview_buffer(loop):
    class ViewProto(RecordingBuffered):
        def __init__(self, lp):
            super().__init__(lp, 4096)
            self.backing = bytearray(10_000)

        def get_buffer(self, sizehint):
            super().get_buffer(sizehint)
            return memoryview(self.backing)[100:300]

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= 200
            self._outstanding = False
            self.data += self.backing[100 : 100 + nbytes]

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=ViewProto)
        payload = b"abcdefghij" * 5000
        tr.write(payload)
        tr.close()
        await spr.eof
        assert spr.data == payload
        await spr.lost
        await pr.lost
        await close_pair(server)

    run(loop, main())


def test_switch_from_protocol_to_buffered_protocol(loop):
    async def main():
        server, tr, pr, spr = await tcp_pair(loop)
        tr.write(b"first part")
        await wait_for_data(spr, 10)
        buffered = RecordingBuffered(loop, 16)
        spr.transport.set_protocol(buffered)
        tr.write(b"second part goes into the buffered protocol")
        tr.close()
        await buffered.lost
        assert bytes(spr.data) == b"first part"
        assert bytes(buffered.data) == b"second part goes into the buffered protocol"
        assert buffered.events == ["io", "eof", ("lost", None)]
        await close_pair(server)

    run(loop, main())


@pytest.mark.expect_handler_calls
@pytest.mark.parametrize("where", ["get_buffer", "empty_buffer", "buffer_updated"])
def test_buffered_protocol_errors(loop, exc_contexts, where):
    error = LookupError(f"in {where}")

    class Failing(RecordingBuffered):
        def get_buffer(self, sizehint):
            if where == "get_buffer":
                raise error
            if where == "empty_buffer":
                return bytearray()
            return super().get_buffer(sizehint)

        def buffer_updated(self, nbytes):
            super().buffer_updated(nbytes)
            if where == "buffer_updated":
                raise error

    async def main():
        server, tr, pr, spr = await tcp_pair(loop, server_cls=Failing)
        tr.write(b"data")
        exc = await spr.lost
        if where == "empty_buffer":
            assert isinstance(exc, RuntimeError)
        else:
            assert exc is error
        # Force-closed: connection_lost got the error, no eof_received.
        assert "eof" not in spr.events
        await pr.lost
        await close_pair(server)
        return exc

    exc = run(loop, main())
    assert [c["exception"] for c in exc_contexts] == [exc]
    message = {
        "get_buffer": "Fatal error: protocol.get_buffer() call failed.",
        "empty_buffer": "Fatal error: protocol.get_buffer() call failed.",
        "buffer_updated": "Fatal error: protocol.buffer_updated() call failed.",
    }[where]
    assert exc_contexts[0]["message"] == message
    exc_contexts.clear()
