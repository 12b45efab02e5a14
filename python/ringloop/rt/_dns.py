"""resolve: getaddrinfo in C in the blocking pool, without the GIL.

``await rt.resolve(host, port, family=0, type=0, proto=0, flags=0)`` returns
what ``socket.getaddrinfo`` returns for the same arguments (the same list,
``AddressFamily``/``SocketKind`` members, ``socket.gaierror`` on failure).
Works on any asyncio loop.  Cancelling the awaiting task before the lookup
started removes it; a running lookup finishes in the pool and is dropped.
"""

from __future__ import annotations

import asyncio
import socket

from .. import _core
from ._blocking import sink_for

__all__ = ("resolve", "getaddrinfo")

_AF = socket.AddressFamily
_SK = socket.SocketKind


def _convert(value, enum):
    try:
        return enum(value)
    except ValueError:
        return value


def _encode_host(host):
    if host is None:
        return None
    if isinstance(host, str):
        return host.encode("idna")
    if isinstance(host, (bytes, bytearray)):
        return bytes(host)
    raise TypeError("getaddrinfo() argument 1 must be string or None")


def _encode_port(port):
    if port is None:
        return None
    if isinstance(port, int):
        return b"%d" % port
    if isinstance(port, str):
        return port.encode("utf-8")
    if isinstance(port, bytes):
        return port
    raise OSError("Int or String expected")


def _results(fut):
    return [
        (_convert(af, _AF), _convert(st, _SK), proto, canon, sa)
        for af, st, proto, canon, sa in fut.result()
    ]


async def resolve(host, port, family=0, type=0, proto=0, flags=0):
    """``socket.getaddrinfo(host, port, family, type, proto, flags)``, off the loop."""
    loop = asyncio.get_running_loop()
    fut = _core.dns_job(
        sink_for(loop), loop.create_future(), _encode_host(host), _encode_port(port),
        family, type, proto, flags,
    )
    await fut
    return _results(fut)


getaddrinfo = resolve
