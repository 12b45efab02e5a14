"""Features a later issue builds (TLS):
their loop methods must raise NotImplementedError whose message names the method
(not a bare NotImplementedError inherited from AbstractEventLoop, not an
AttributeError, not a crash), and `ssl=` on the stream methods must say that TLS is
what is missing.

When a feature lands, move its method out of NOT_IMPLEMENTED and give it real tests."""

import asyncio
import inspect
import signal
import socket

import pytest

pytestmark = pytest.mark.ringloop_only(
    reason="asyncio implements networking; ringloop does not yet (by design, for now)"
)


class Proto(asyncio.Protocol):
    pass


def _args(name, socks):
    a, b = socks
    proto = Proto
    return {
        "create_connection": ((proto, "127.0.0.1", 9), {}),
        "create_server": ((proto, "127.0.0.1", 0), {}),
        "create_unix_connection": ((proto, "/nonexistent-ringloop-test.sock"), {}),
        "create_unix_server": ((proto, None), {"sock": a}),
        "connect_accepted_socket": ((proto, a), {}),
        "start_tls": ((None, proto(), None), {}),
        "sendfile": ((None, None), {}),
        "sock_recv": ((a, 1), {}),
        "sock_recv_into": ((a, bytearray(1)), {}),
        "sock_recvfrom": ((a, 1), {}),
        "sock_recvfrom_into": ((a, bytearray(1)), {}),
        "sock_sendall": ((a, b"x"), {}),
        "sock_sendto": ((a, b"x", None), {}),
        "sock_connect": ((a, "/nonexistent-ringloop-test.sock"), {}),
        "sock_accept": ((a,), {}),
        "sock_sendfile": ((a, None), {}),
        "add_reader": ((a.fileno(), lambda: None), {}),
        "add_writer": ((a.fileno(), lambda: None), {}),
        "remove_reader": ((a.fileno(),), {}),
        "remove_writer": ((a.fileno(),), {}),
        "connect_read_pipe": ((proto, None), {}),
        "connect_write_pipe": ((proto, None), {}),
        "subprocess_exec": ((asyncio.SubprocessProtocol, "true"), {}),
        "subprocess_shell": ((asyncio.SubprocessProtocol, "true"), {}),
        "getaddrinfo": (("127.0.0.1", 80), {}),
        "getnameinfo": ((("127.0.0.1", 80),), {}),
        "add_signal_handler": ((signal.SIGUSR1, lambda: None), {}),
        "remove_signal_handler": ((signal.SIGUSR1,), {}),
    }[name]


NOT_IMPLEMENTED = [
    "start_tls",
]


@pytest.fixture
def socks():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _call(loop, name, socks):
    """Call the method; await the result if it is awaitable.  Return the exception."""
    args, kwargs = _args(name, socks)
    meth = getattr(loop, name)
    try:
        res = meth(*args, **kwargs)
        if inspect.isawaitable(res):

            async def waiter():
                return await res

            loop.run_until_complete(waiter())
    except BaseException as exc:  # noqa: BLE001
        return exc
    return None


@pytest.mark.parametrize("name", NOT_IMPLEMENTED)
def test_networking_method_not_implemented(loop, socks, name):
    if not hasattr(asyncio.AbstractEventLoop, name):
        pytest.skip(f"{name} is not part of this Python's AbstractEventLoop")
    assert hasattr(loop, name), f"{name} must exist (AbstractEventLoop API)"
    exc = _call(loop, name, socks)
    assert isinstance(exc, NotImplementedError), f"{name} raised {exc!r}"
    assert name in str(exc), f"message of {exc!r} does not name {name!r}"
    # The loop is unharmed.
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


def test_every_abstract_method_exists(loop):
    missing = [
        n
        for n, v in vars(asyncio.AbstractEventLoop).items()
        if not n.startswith("__") and callable(v) and not hasattr(loop, n)
    ]
    assert missing == []


@pytest.mark.parametrize("name", [
    "create_connection", "create_server", "create_unix_connection",
    "create_unix_server", "connect_accepted_socket",
])
def test_tls_on_stream_methods_not_implemented(loop, socks, name, tmp_path):
    import ssl

    args, kwargs = _args(name, socks)
    if name == "create_unix_server":
        args, kwargs = (Proto, str(tmp_path / "s.sock")), {}
    kwargs["ssl"] = ssl.create_default_context()
    exc = None
    try:
        loop.run_until_complete(getattr(loop, name)(*args, **kwargs))
    except BaseException as e:  # noqa: BLE001
        exc = e
    assert isinstance(exc, NotImplementedError), f"{name} raised {exc!r}"
    assert "TLS" in str(exc) and name in str(exc)
    assert not (tmp_path / "s.sock").exists()  # refused before doing anything
