"""Test certificates for the TLS tests, made at run time with the openssl CLI.

``make_certs(directory)`` writes a throw-away CA and a server certificate for
``localhost`` / 127.0.0.1 / ::1 signed by it, and returns their paths;
``server_context``/``client_context`` build the matching ``ssl.SSLContext``s.
Nothing here touches the network or the system trust store.
"""

from __future__ import annotations

import asyncio
import pathlib
import ssl
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Certs:
    ca: pathlib.Path  # the CA certificate (PEM): what clients trust
    cert: pathlib.Path  # the server certificate (PEM)
    key: pathlib.Path  # the server's private key (PEM)


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(("openssl", *args), cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(directory) -> Certs:
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=ringloop test CA", "-keyout", "ca.key",
             "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
             "/CN=localhost", "-keyout", "server.key", "-out", "server.csr",
             cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "ext.cnf", "-out", "server.pem", cwd=d)
    return Certs(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


def server_context(certs: Certs) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    return ctx


def client_context(certs: Certs) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca)
    return ctx


class BIOPeer(asyncio.Protocol):
    """A TLS peer driven by hand (``ssl.MemoryBIO``) over a plain Protocol, for
    what a well-behaved TLS stack never does: it completes the handshake, then
    ignores every later record (``close_notify`` included) unless the test
    drives it. ``hello()`` returns its first flight (a client's ClientHello)
    without sending it."""

    def __init__(self, loop, ctx, *, server_side, server_hostname=None):
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing,
                                server_side=server_side,
                                server_hostname=server_hostname)
        self.transport = None
        self.plain = bytearray()  # bytes received before the handshake starts
        self.handshaken = loop.create_future()
        self.lost = loop.create_future()

    def hello(self) -> bytes:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.handshaken.done():
            return  # deaf from now on
        self.incoming.write(data)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        else:
            self.handshaken.set_result(None)
        out = self.outgoing.read()
        if out:
            self.transport.write(out)

    def eof_received(self):
        return True  # the test decides when to close

    def connection_lost(self, exc):
        if not self.handshaken.done():
            self.handshaken.set_exception(ConnectionResetError("lost"))
            self.handshaken.exception()  # retrieved: no warning if unused
        self.lost.set_result(exc)
