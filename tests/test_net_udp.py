"""loop.create_datagram_endpoint and the datagram transport: UDP over IPv4 and
IPv6 loopback and Unix datagram sockets, on stock asyncio and on ringloop.

asyncio is the spec: every test runs on both loops through the ``loop`` fixture
(which also checks for leaked fds, threads and handles)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket

import pytest

from net_helpers import PY313, requires_ipv6, run

# How asyncio treats sendto(b""): 3.13 sends an empty datagram, older drop it.
try:
    from ringloop._datagram import _SEND_EMPTY
except ImportError:  # pragma: no cover - ringloop not built
    _SEND_EMPTY = PY313


class DatagramRecorder(asyncio.DatagramProtocol):
    """Records callbacks; ``wait(n)`` waits for n datagrams."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.transport = None
        self.datagrams = []
        self.errors = []
        self.events = []
        self.lost = self.loop.create_future()
        self._waiters = []

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        self._wake()

    def error_received(self, exc):
        self.errors.append(exc)
        self._wake()

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)

    def _wake(self):
        for n, fut in list(self._waiters):
            if len(self.datagrams) + len(self.errors) >= n and not fut.done():
                fut.set_result(None)

    async def wait(self, n):
        """Waits until n datagrams or errors arrived in all."""
        if len(self.datagrams) + len(self.errors) < n:
            fut = self.loop.create_future()
            self._waiters.append((n, fut))
            await fut


class Echo(DatagramRecorder):
    def datagram_received(self, data, addr):
        super().datagram_received(data, addr)
        self.transport.sendto(data, addr)


async def _close(*transports):
    protocols = [t.get_protocol() for t in transports]
    for t in transports:
        t.close()
    for p in protocols:
        await p.lost


def _unix_path(tmp_path, name):
    return str(tmp_path / name)


# --------------------------------------------------------------- echo


def _families():
    fams = [pytest.param(socket.AF_INET, "127.0.0.1", id="ipv4")]
    fams.append(pytest.param(socket.AF_INET6, "::1", id="ipv6",
                             marks=requires_ipv6))
    return fams


@pytest.mark.parametrize("connected", [False, True], ids=["sendto", "connected"])
@pytest.mark.parametrize("family,host", _families())
def test_echo_inet(loop, family, host, connected):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Echo, local_addr=(host, 0))
        server_addr = st.get_extra_info("sockname")
        assert st.get_extra_info("peername") is None
        if connected:
            ct, cp = await loop.create_datagram_endpoint(
                DatagramRecorder, remote_addr=server_addr[:2])
            assert ct.get_extra_info("peername") == server_addr
            send = ct.sendto
        else:
            ct, cp = await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=(host, 0))
            assert ct.get_extra_info("peername") is None

            def send(data):
                ct.sendto(data, server_addr[:2])
        payloads = [b"a", b"hello", bytearray(b"ba"), memoryview(b"mv"), b"x" * 1000]
        for p in payloads:
            send(p)
        await cp.wait(len(payloads))
        assert [d for d, _ in cp.datagrams] == [bytes(p) for p in payloads]
        assert all(type(d) is bytes for d, _ in cp.datagrams)
        assert {a for _, a in cp.datagrams} == {server_addr}
        client_addr = ct.get_extra_info("sockname")
        assert {a for _, a in sp.datagrams} == {client_addr}
        if family == socket.AF_INET6:
            assert len(client_addr) == 4
        assert cp.errors == [] and sp.errors == []
        assert ct.get_write_buffer_size() == 0
        await _close(st, ct)
        assert sp.events == ["made", "lost"] and cp.events == ["made", "lost"]
        assert st.is_closing() and ct.is_closing()
        assert st.get_extra_info("socket").fileno() == -1

    run(loop, main())


def test_echo_unix(loop, tmp_path):
    spath = _unix_path(tmp_path, "s")
    cpath = _unix_path(tmp_path, "c")

    async def main():
        st, sp = await loop.create_datagram_endpoint(
            Echo, local_addr=spath, family=socket.AF_UNIX)
        assert st.get_extra_info("sockname") == spath
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=cpath, remote_addr=spath,
            family=socket.AF_UNIX)
        assert ct.get_extra_info("peername") == spath
        for i in range(5):
            ct.sendto(b"u%d" % i)
        await cp.wait(5)
        assert cp.datagrams == [(b"u%d" % i, spath) for i in range(5)]
        assert sp.datagrams == [(b"u%d" % i, cpath) for i in range(5)]
        await _close(st, ct)

    run(loop, main())


def test_unix_unnamed_and_abstract_senders(loop, tmp_path):
    spath = _unix_path(tmp_path, "s")

    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=spath, family=socket.AF_UNIX)
        unnamed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        abstract.bind(b"\0ringloop-udp-test-%d" % os.getpid())
        try:
            unnamed.sendto(b"1", spath)
            abstract.sendto(b"2", spath)
            await sp.wait(2)
        finally:
            unnamed.close()
            abstract.close()
        assert sp.datagrams == [
            (b"1", None), (b"2", b"\0ringloop-udp-test-%d" % os.getpid())]
        await _close(st)

    run(loop, main())


def test_sock_argument(loop):
    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        st, sp = await loop.create_datagram_endpoint(Echo, sock=sock)
        assert st.get_extra_info("socket").fileno() == sock.fileno()
        assert not sock.getblocking()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.connect(sock.getsockname())
        # a connected sock=: sendto() uses send(), asyncio ignores the address
        ct, cp = await loop.create_datagram_endpoint(DatagramRecorder, sock=peer)
        assert ct.get_extra_info("peername") == sock.getsockname()
        ct.sendto(b"ping")
        await cp.wait(1)
        assert cp.datagrams == [(b"ping", sock.getsockname())]
        await _close(st, ct)
        assert sock.fileno() == -1

    run(loop, main())


def test_reuse_port(loop):
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")

    async def main():
        t1, _ = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), reuse_port=True)
        port = t1.get_extra_info("sockname")[1]
        t2, _ = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", port), reuse_port=True)
        for t in (t1, t2):
            s = t.get_extra_info("socket")
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        with pytest.raises(OSError):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", port))
        await _close(t1, t2)

    run(loop, main())


def test_allow_broadcast(loop):
    async def main():
        t, _ = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), allow_broadcast=True)
        s = t.get_extra_info("socket")
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        u, _ = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        s = u.get_extra_info("socket")
        assert not s.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        await _close(t, u)

    run(loop, main())


# ------------------------------------------------------- argument errors


def test_endpoint_argument_errors(loop, tmp_path):
    async def main():
        with pytest.raises(ValueError, match="unexpected address family"):
            await loop.create_datagram_endpoint(DatagramRecorder)
        stream = socket.socket()
        try:
            with pytest.raises(ValueError, match="ocket was expected"):
                await loop.create_datagram_endpoint(DatagramRecorder, sock=stream)
        finally:
            stream.close()
        dgram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with pytest.raises(ValueError, match="can not be used when sock"):
                await loop.create_datagram_endpoint(
                    DatagramRecorder, sock=dgram, local_addr=("127.0.0.1", 0))
        finally:
            dgram.close()
        with pytest.raises(TypeError, match="string is expected"):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0),
                family=socket.AF_UNIX)
        # reuse_address is refused (3.11+: no longer a parameter)
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0),
                reuse_address=True)
        with pytest.raises(TypeError, match="2-tuple is expected"):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1",))
        with pytest.raises(ValueError, match="can not get address information"):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0),
                remote_addr=("::1", 9))

    run(loop, main())


def test_sendto_argument_errors(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=addr)
        for bad in ("text", 42, None, [b"x"]):
            with pytest.raises(TypeError, match="data argument must be a "
                               "bytes-like object, not"):
                ct.sendto(bad)
        with pytest.raises(ValueError, match="Invalid address"):
            ct.sendto(b"x", ("127.0.0.1", 1))
        ct.sendto(b"same", addr)  # the connected address itself is fine
        ct.sendto(b"none", None)
        await sp.wait(2)
        assert [d for d, _ in sp.datagrams] == [b"same", b"none"]
        await _close(st, ct)

    run(loop, main())


def test_sendto_host_name_and_bad_address(loop, exc_contexts):
    """Addresses the transport's fast path does not parse: the socket module
    handles them, as in asyncio."""
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        port = st.get_extra_info("sockname")[1]
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        ct.sendto(b"by-name", ("localhost", port))
        await sp.wait(1)
        assert sp.datagrams[0][0] == b"by-name"
        ct.sendto(b"bad-port", ("127.0.0.1", 70000))  # OverflowError: fatal
        await cp.lost
        assert ct.is_closing()
        await _close(st)

    run(loop, main())
    assert [type(c["exception"]) for c in exc_contexts] == [OverflowError]
    exc_contexts.clear()


def test_empty_datagram(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        ct.sendto(b"")
        ct.sendto(b"end")
        await sp.wait(1 + _SEND_EMPTY)
        expected = ([b""] if _SEND_EMPTY else []) + [b"end"]
        assert [d for d, _ in sp.datagrams] == expected
        await _close(st, ct)

    run(loop, main())


# ------------------------------------------------------- errors, large, burst


def test_error_received_on_connection_refused(loop):
    async def main():
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        addr = closed.getsockname()
        closed.close()
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=addr)
        ct.sendto(b"anyone?")
        await cp.wait(1)
        # the ICMP error comes back on the receive or on the next send
        while not cp.errors:
            ct.sendto(b"anyone?")
            await cp.wait(1)
        assert isinstance(cp.errors[0], ConnectionRefusedError)
        assert not ct.is_closing()
        await _close(ct)

    run(loop, main())


@pytest.mark.parametrize("size", [65507, 32768, 9000])
def test_large_udp_datagrams(loop, size):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            Echo, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        ct.sendto(data)
        await cp.wait(1)
        assert cp.datagrams[0][0] == data
        await _close(st, ct)

    run(loop, main())


def test_unix_datagram_larger_than_a_receive_buffer(loop, tmp_path):
    """A Unix datagram of 160 KiB (ringloop's receive buffers are 128 KiB)
    arrives whole, as in asyncio (whose limit is max_size, 256 KiB)."""
    spath = _unix_path(tmp_path, "s")
    size = 160 * 1024

    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=spath, family=socket.AF_UNIX)
        st.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            data = os.urandom(size)
            try:
                sender.sendto(data, spath)
            except OSError as exc:  # a host whose wmem_max is too small
                pytest.skip(f"cannot send {size} bytes: {exc}")
            await sp.wait(1)
        finally:
            sender.close()
        assert sp.datagrams == [(data, None)]
        await _close(st)

    run(loop, main())


class PacedSink(DatagramRecorder):
    """Acks every `window` datagrams, so the sender never overruns it."""

    window = 100

    def datagram_received(self, data, addr):
        super().datagram_received(data, addr)
        if len(self.datagrams) % self.window == 0:
            self.transport.sendto(b"ack", addr)


def test_burst_of_10000_datagrams(loop):
    total = 10_000

    async def main():
        st, sp = await loop.create_datagram_endpoint(
            PacedSink, local_addr=("127.0.0.1", 0))
        st.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        for i in range(total):
            ct.sendto(b"%05d" % i + b"." * 59)
            if (i + 1) % PacedSink.window == 0:
                await cp.wait((i + 1) // PacedSink.window)
        await sp.wait(total)
        got = [d[:5] for d, _ in sp.datagrams]
        assert len(got) == total and set(got) == {b"%05d" % i for i in range(total)}
        await _close(st, ct)

    run(loop, main())


# ---------------------------------------------- queued sends and flow control


class FlowRecorder(DatagramRecorder):
    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")


def _unix_pair(tmp_path):
    """A Unix datagram pair whose sender has a small send buffer (its datagrams
    count against it until read), so it meets EAGAIN and the transport queues."""
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.bind(_unix_path(tmp_path, "receiver"))
    b.setblocking(False)
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    a.setblocking(False)
    # named, so that peername is set (asyncio then uses send())
    a.connect(b.getsockname())
    return a, b


def test_queued_sends_drain_in_order_then_close(loop, tmp_path):
    async def main():
        a, b = _unix_pair(tmp_path)
        ct, cp = await loop.create_datagram_endpoint(FlowRecorder, sock=a)
        ct.set_write_buffer_limits(high=4000)
        n = 300
        for i in range(n):
            ct.sendto(b"%04d" % i + b"-" * 96)
        queued = ct.get_write_buffer_size()
        assert queued > 0
        assert cp.events == ["made", "pause"]
        ct.close()  # closes once the queue has drained
        assert ct.is_closing()
        rt, rp = await loop.create_datagram_endpoint(DatagramRecorder, sock=b)
        await rp.wait(n)
        await cp.lost
        assert [d[:4] for d, _ in rp.datagrams] == [b"%04d" % i for i in range(n)]
        # (3.13.0's asyncio counts 8 bytes per datagram in and none out, so
        # whether resume_writing comes is version-specific)
        assert cp.events[:2] == ["made", "pause"] and cp.events[-1] == "lost"
        await _close(rt)

    run(loop, main())


def test_abort_drops_queued_sends(loop, tmp_path):
    async def main():
        a, b = _unix_pair(tmp_path)
        ct, cp = await loop.create_datagram_endpoint(FlowRecorder, sock=a)
        for i in range(100):
            ct.sendto(b"%04d" % i)
        assert ct.get_write_buffer_size() > 0
        ct.abort()
        assert await cp.lost is None
        assert a.fileno() == -1
        b.close()

    run(loop, main())


def test_write_buffer_size_counts_queued_datagrams(loop, tmp_path):
    async def main():
        a, b = _unix_pair(tmp_path)
        ct, cp = await loop.create_datagram_endpoint(FlowRecorder, sock=a)
        sizes = []
        for _ in range(30):
            ct.sendto(b"y" * 10)
            sizes.append(ct.get_write_buffer_size())
        queued = [s for s in sizes if s]
        step = 10 + (8 if _SEND_EMPTY else 0)  # 3.13 counts a header
        assert queued and all(
            b - a == step for a, b in zip(queued, queued[1:]))
        ct.abort()
        await cp.lost
        b.close()

    run(loop, main())


def test_sendto_after_close_warns(loop, caplog):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        await _close(ct)
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(8):
                ct.sendto(b"late")
        warnings = [r for r in caplog.records
                    if r.getMessage() == "socket.send() raised exception."]
        assert len(warnings) == 4  # from the 5th lost send on
        await _close(st)

    run(loop, main())


# --------------------------------------------- reading, callbacks, lifetime


def test_pause_and_resume_reading(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        ct.sendto(b"0")
        await sp.wait(1)
        assert st.is_reading()
        st.pause_reading()
        assert not st.is_reading()
        for i in range(1, 4):
            ct.sendto(b"%d" % i)
        # an echo on another socket proves the datagrams were sent meanwhile
        et, ep = await loop.create_datagram_endpoint(
            Echo, local_addr=("127.0.0.1", 0))
        ct2, cp2 = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=et.get_extra_info("sockname"))
        ct2.sendto(b"probe")
        await cp2.wait(1)
        assert [d for d, _ in sp.datagrams] == [b"0"]
        st.resume_reading()
        assert st.is_reading()
        await sp.wait(4)
        assert [d for d, _ in sp.datagrams] == [b"0", b"1", b"2", b"3"]
        await _close(st, ct, et, ct2)

    run(loop, main())


class Raising(DatagramRecorder):
    def datagram_received(self, data, addr):
        super().datagram_received(data, addr)
        raise RuntimeError(f"boom {data!r}")


@pytest.mark.expect_handler_calls
def test_datagram_received_raising_goes_to_handler(loop, exc_contexts):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            Raising, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        ct.sendto(b"1")
        ct.sendto(b"2")
        await sp.wait(2)
        assert not st.is_closing()  # the transport goes on
        await _close(st, ct)

    run(loop, main())
    excs = [c["exception"] for c in exc_contexts]
    assert [str(e) for e in excs] == ["boom b'1'", "boom b'2'"]


def test_protocol_flow_methods(loop):
    async def main():
        t, p = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        assert isinstance(t, asyncio.BaseTransport)
        assert t.get_protocol() is p
        assert t.get_write_buffer_limits() == (16384, 65536)
        t.set_write_buffer_limits(high=100)
        assert t.get_write_buffer_limits() == (25, 100)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        p2 = DatagramRecorder()
        t.set_protocol(p2)
        assert t.get_protocol() is p2
        t.set_protocol(p)
        t.abort()
        assert await p.lost is None
        assert t.is_closing()
        t.close()  # again: nothing

    run(loop, main())


def test_many_endpoints_no_leak(loop):
    async def main():
        for _ in range(20):
            st, sp = await loop.create_datagram_endpoint(
                Echo, local_addr=("127.0.0.1", 0))
            ct, cp = await loop.create_datagram_endpoint(
                DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
            ct.sendto(b"x")
            await cp.wait(1)
            await _close(st, ct)

    run(loop, main())


def test_loop_closed_with_endpoint_open(loop_factory):
    """Closing the loop with a transport still open: dropping the transport
    then closes its socket, with asyncio's ResourceWarning."""
    lp = loop_factory()
    try:
        async def main():
            return await lp.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0))

        t, p = lp.run_until_complete(main())
        sock = t.get_extra_info("socket")
    finally:
        lp.close()
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del t, p
        gc.collect()
    assert sock.fileno() == -1


def test_datagram_comes_after_callbacks_already_ready(loop):
    """asyncio runs an iteration's I/O callbacks after the callbacks that were
    ready before it (CPython's test_datagram_send_to_non_listening_address
    depends on it)."""
    order = []

    class Ordered(DatagramRecorder):
        def datagram_received(self, data, addr):
            order.append(data)
            super().datagram_received(data, addr)

    async def main():
        st, sp = await loop.create_datagram_endpoint(
            Ordered, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        for i in range(3):
            ct.sendto(b"%d" % i)  # on loopback: in the socket already
            loop.call_soon(order.append, "soon%d" % i)
            await sp.wait(i + 1)
        assert order == ["soon0", b"0", "soon1", b"1", "soon2", b"2"]
        await _close(st, ct)

    run(loop, main())


class NoDatagramMethods(asyncio.BaseProtocol):
    """Neither datagram_received nor error_received: asyncio fails only when
    one is called."""

    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.expect_handler_calls
def test_protocol_without_datagram_methods(loop, exc_contexts):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            NoDatagramMethods, local_addr=("127.0.0.1", 0))
        ct, cp = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=st.get_extra_info("sockname"))
        ct.sendto(b"x")
        while not exc_contexts:
            await asyncio.sleep(0.01)
        assert not st.is_closing()
        await _close(st, ct)

    run(loop, main())
    assert [type(c["exception"]) for c in exc_contexts] == [AttributeError]


def test_socket_in_use_by_transport(loop):
    async def main():
        t, p = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        sock = t.get_extra_info("socket")._sock
        with pytest.raises(RuntimeError, match="is used by transport"):
            await loop.sock_recv(sock, 10)
        await _close(t)

    run(loop, main())
