"""loop.getaddrinfo / loop.getnameinfo: the same answers and the same errors as the
socket module (asyncio runs socket.getaddrinfo/getnameinfo in its executor), for
numeric hosts, IPv6 scope ids, 'localhost' (from /etc/hosts: no DNS traffic), and
flags/family/type/proto passed through. No test needs a DNS server."""

import asyncio
import socket

import pytest
from net_helpers import requires_ipv6, run

NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


def _lo_index():
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return None


LO_INDEX = _lo_index()


def _same_as_socket(loop, host, port, **kwargs):
    expected = socket.getaddrinfo(host, port, **kwargs)
    got = run(loop, loop.getaddrinfo(host, port, **kwargs))
    assert got == expected
    # Same element types too: AddressFamily / SocketKind enums, like the socket module.
    assert [tuple(type(x) for x in e) for e in got] == [
        tuple(type(x) for x in e) for e in expected
    ]
    return got


@pytest.mark.parametrize(
    "host,port,kwargs",
    [
        ("127.0.0.1", 80, {}),
        ("127.0.0.1", 0, {"type": socket.SOCK_STREAM}),
        ("127.0.0.1", "8080", {"type": socket.SOCK_DGRAM}),
        ("127.0.0.1", None, {"proto": socket.IPPROTO_UDP}),
        ("::1", 443, {}),
        ("::1", 443, {"family": socket.AF_INET6, "type": socket.SOCK_STREAM}),
        ("localhost", 80, {"type": socket.SOCK_STREAM}),
        (
            "localhost",
            "http",
            {"flags": socket.AI_CANONNAME, "type": socket.SOCK_STREAM},
        ),
        (None, 0, {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
        (None, 1234, {"family": socket.AF_INET, "type": socket.SOCK_DGRAM}),
        ("127.0.0.1", 80, {"flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}),
        (b"127.0.0.1", b"80", {"type": socket.SOCK_STREAM}),
        ("1.2.3.4", 80, {"family": socket.AF_INET, "flags": socket.AI_NUMERICHOST}),
    ],
    ids=repr,
)
def test_getaddrinfo_matches_socket_module(loop, host, port, kwargs):
    _same_as_socket(loop, host, port, **kwargs)


def test_getaddrinfo_numeric_ipv4_exact(loop):
    got = run(loop, loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))
    assert got == [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
    ]
    assert got[0][0] is socket.AF_INET
    assert got[0][1] is socket.SOCK_STREAM


def test_getaddrinfo_ipv6_exact(loop):
    got = run(loop, loop.getaddrinfo("::1", 80, type=socket.SOCK_STREAM))
    assert got == [
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", 80, 0, 0))
    ]


@pytest.mark.skipif(LO_INDEX is None, reason="no interface named 'lo'")
def test_getaddrinfo_ipv6_scope_id_kept(loop):
    got = _same_as_socket(loop, "fe80::1%lo", 80, type=socket.SOCK_STREAM)
    assert got == [
        (
            socket.AF_INET6,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            "",
            ("fe80::1", 80, 0, LO_INDEX),
        )
    ]
    # The numeric form of the scope works too.
    got = _same_as_socket(loop, f"fe80::1%{LO_INDEX}", 80, type=socket.SOCK_STREAM)
    assert got[0][4] == ("fe80::1", 80, 0, LO_INDEX)


def test_getaddrinfo_family_filter(loop):
    got = _same_as_socket(loop, "localhost", 80, family=socket.AF_INET)
    assert got and all(e[0] == socket.AF_INET for e in got)


@pytest.mark.parametrize(
    "host,port,kwargs",
    [
        ("no-such-name", 80, {"flags": socket.AI_NUMERICHOST}),
        ("127.0.0.1", 80, {"family": socket.AF_INET6, "flags": socket.AI_NUMERICHOST}),
        ("127.0.0.1", "no-such-service", {"type": socket.SOCK_STREAM}),
        ("127.0.0.1", "http", {"flags": socket.AI_NUMERICSERV}),
        (None, None, {}),
    ],
    ids=repr,
)
def test_getaddrinfo_errors_are_gaierror(loop, host, port, kwargs):
    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo(host, port, **kwargs)
    with pytest.raises(socket.gaierror) as got:
        run(loop, loop.getaddrinfo(host, port, **kwargs))
    assert got.value.errno == expected.value.errno
    assert got.value.args == expected.value.args


@pytest.mark.parametrize(
    "args", [(1234, 80), ("127.0.0.1", 1.5), ("127.0.0.1", [80])], ids=repr
)
def test_getaddrinfo_bad_argument_types(loop, args):
    # Whatever the socket module raises (TypeError for a bad host, a bare OSError
    # 'Int or String expected' for a bad port), the loop raises too.
    with pytest.raises(Exception) as expected:
        socket.getaddrinfo(*args)
    with pytest.raises(type(expected.value)) as got:
        run(loop, loop.getaddrinfo(*args))
    assert str(got.value) == str(expected.value)


def test_getaddrinfo_concurrent(loop):
    async def main():
        hosts = ["127.0.0.1", "localhost", "::1", "127.0.0.2"] * 25
        results = await asyncio.gather(
            *(
                loop.getaddrinfo(h, i, type=socket.SOCK_STREAM)
                for i, h in enumerate(hosts)
            )
        )
        for i, (h, r) in enumerate(zip(hosts, results)):
            assert r == socket.getaddrinfo(h, i, type=socket.SOCK_STREAM)

    run(loop, main())


def test_getaddrinfo_cancelled(loop):
    async def main():
        t = loop.create_task(loop.getaddrinfo("localhost", 80))
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        # The loop still resolves afterwards.
        assert await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    run(loop, main())


# ------------------------------------------------------------------ getnameinfo


@pytest.mark.parametrize(
    "sockaddr,flags",
    [
        (("127.0.0.1", 80), NUMERIC),
        (("127.0.0.1", 80), 0),  # 127.0.0.1 -> localhost via /etc/hosts; 80 -> http
        (("127.0.0.1", 80), socket.NI_NUMERICSERV),
        (("127.0.0.1", 53), socket.NI_DGRAM),
        (("::1", 8080, 0, 0), NUMERIC),
        (("::1", 8080), NUMERIC),
    ],
    ids=repr,
)
def test_getnameinfo_matches_socket_module(loop, sockaddr, flags):
    expected = socket.getnameinfo(sockaddr, flags)
    assert run(loop, loop.getnameinfo(sockaddr, flags)) == expected


def test_getnameinfo_numeric_exact(loop):
    assert run(loop, loop.getnameinfo(("127.0.0.1", 80), NUMERIC)) == (
        "127.0.0.1",
        "80",
    )
    # flags defaults to 0.
    assert run(loop, loop.getnameinfo(("127.0.0.1", 80))) == socket.getnameinfo(
        ("127.0.0.1", 80), 0
    )


@pytest.mark.skipif(LO_INDEX is None, reason="no interface named 'lo'")
def test_getnameinfo_ipv6_scope_id(loop):
    got = run(loop, loop.getnameinfo(("fe80::1", 80, 0, LO_INDEX), NUMERIC))
    assert got == ("fe80::1%lo", "80")


@pytest.mark.parametrize(
    "sockaddr",
    [("127.0.0.1",), ("127.0.0.1", 80, 0, 0, 0), "127.0.0.1", ("127.0.0.1", "80")],
    ids=repr,
)
def test_getnameinfo_errors_match_socket_module(loop, sockaddr):
    with pytest.raises(Exception) as expected:
        socket.getnameinfo(sockaddr, NUMERIC)
    with pytest.raises(type(expected.value)):
        run(loop, loop.getnameinfo(sockaddr, NUMERIC))


@requires_ipv6
def test_resolved_address_is_connectable(loop):
    # getaddrinfo's sockaddr for ::1 feeds straight into create_connection.
    async def main():
        server = await loop.create_server(asyncio.Protocol, "::1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            infos = await loop.getaddrinfo("::1", port, type=socket.SOCK_STREAM)
            tr, _ = await loop.create_connection(asyncio.Protocol, *infos[0][4][:2])
            assert tr.get_extra_info("peername")[:2] == ("::1", port)
            tr.close()
        finally:
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0)

    run(loop, main())
