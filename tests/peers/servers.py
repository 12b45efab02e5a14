"""Real servers for the peer tests: redis-server and PostgreSQL.

Each is started once per test session by a session-scoped fixture (``redis_server``,
``postgres_server``; a test module imports the fixture it needs), listens on
127.0.0.1 on a free port and on a unix socket in a fresh temporary directory, and is
stopped (and its directory removed) at the end of the session.

- The binaries come from scripts/bootstrap.sh (apt-get install redis-server
  postgresql). A missing binary, or a server that does not come up within a bounded
  wait, FAILS the tests that need it (errors at set-up) with a message saying why:
  never a skip.
- Servers are run in the foreground as child processes, under ``setpriv
  --pdeathsig`` when available, so that they die with the test process even if it
  is killed before its session teardown runs.
- PostgreSQL refuses to run as root: as root, initdb and postgres run as the
  ``postgres`` system user (created by Debian's postgresql package), or ``nobody``.
- Neither fixture leaves an fd or a thread open in the test process: the children
  write their logs to files in their temporary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import free_tcp_port

START_TIMEOUT = 30.0  # seconds a server gets to accept connections
STOP_TIMEOUT = 20.0  # seconds a server gets to exit after its stop signal
PORT_ATTEMPTS = 3  # a free port can be taken between picking and binding it

BOOTSTRAP_HINT = (
    "scripts/bootstrap.sh (run by `make install`/`make test`) installs it as root; "
    "otherwise: apt-get install redis-server postgresql"
)


# ------------------------------------------------------------------------ process


def _log_tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return text[-limit:]


def _pdeathsig_prefix(sig: str) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", sig] if setpriv else []


@dataclass
class _Child:
    """A server process in the foreground, its log file and its stop signal."""

    name: str
    proc: subprocess.Popen
    log: Path
    stop_signal: int

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def fail(self, why: str):
        pytest.fail(
            f"{self.name}: {why}\n--- {self.log} (tail) ---\n{_log_tail(self.log)}",
            pytrace=False,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(name, argv, log: Path, stop_signal, cwd, user=None) -> _Child:
    """Start argv with stdout+stderr appended to ``log`` (as ``user`` when given)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_child_env(user),
            user=user,
            start_new_session=True,  # a Ctrl-C in the terminal is the tests', not theirs
        )
    return _Child(name, proc, log, stop_signal)


def _child_env(user):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
    }
    if user is not None:
        env["HOME"] = pwd.getpwnam(user).pw_dir
    return env


# -------------------------------------------------------------------------- redis


@dataclass
class RedisServer:
    host: str
    port: int
    unix_path: str
    directory: str
    child: _Child = field(repr=False)
    tls_port: int | None = None  # start_redis(tls=...): the TLS listener


def _redis_ping(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(path)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(tls=None) -> RedisServer:
    """tls: optional (cert, key, ca) paths; redis then also listens for TLS on
    127.0.0.1:<RedisServer.tls_port> (clients are not asked for certificates)."""
    binary = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)),
        None,
    )
    if binary is None:
        pytest.fail(f"redis-server is not installed: {BOOTSTRAP_HINT}", pytrace=False)
    directory = tempfile.mkdtemp(prefix="ringloop-redis-")
    unix_path = os.path.join(directory, "redis.sock")
    log = Path(directory, "redis.log")
    try:
        for attempt in range(PORT_ATTEMPTS):
            port = free_tcp_port()
            tls_port = free_tcp_port() if tls else None
            tls_argv = [] if not tls else [
                "--tls-port", str(tls_port),
                "--tls-cert-file", str(tls[0]),
                "--tls-key-file", str(tls[1]),
                "--tls-ca-cert-file", str(tls[2]),
                "--tls-auth-clients", "no",
            ]
            argv = _pdeathsig_prefix("TERM") + [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--unixsocket", unix_path,
                "--unixsocketperm", "700",
                "--dir", directory,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
                "--daemonize", "no",
                "--databases", "4",
                "--loglevel", "notice",
            ]  # fmt: skip
            argv += tls_argv
            child = _spawn("redis-server", argv, log, signal.SIGTERM, cwd=directory)
            deadline = time.monotonic() + START_TIMEOUT
            while not _redis_ping(unix_path):
                if child.exited():
                    break
                if time.monotonic() > deadline:
                    child.stop()
                    child.fail(f"not answering PING on {unix_path} after {START_TIMEOUT:.0f} s")
                time.sleep(0.05)
            if not child.exited():
                return RedisServer("127.0.0.1", port, unix_path, directory, child,
                                   tls_port)
            if "Address already in use" in _log_tail(log) and attempt + 1 < PORT_ATTEMPTS:
                continue  # the port was taken meanwhile: try another
            child.fail(f"exited with status {child.proc.returncode} during start-up")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def stop_redis(server: RedisServer) -> None:
    try:
        server.child.stop()
    finally:
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server on 127.0.0.1:<free port> and on a unix socket, for the session."""
    server = start_redis()
    try:
        yield server
    finally:
        stop_redis(server)


# --------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    host: str
    port: int
    socket_dir: str  # asyncpg's host= for the unix socket
    user: str
    database: str
    directory: str
    child: _Child = field(repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def unix_socket(self) -> str:
        return os.path.join(self.socket_dir, f".s.PGSQL.{self.port}")


def _pg_bindir() -> str | None:
    """The directory holding initdb and postgres: PATH first (a developer's own
    install, or links made by a machine image), then Debian's versioned layout."""
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres and os.path.dirname(os.path.realpath(initdb)) == os.path.dirname(
        os.path.realpath(postgres)
    ):
        return os.path.dirname(os.path.realpath(initdb))
    candidates = glob.glob("/usr/lib/postgresql/*/bin/postgres")

    def version(path):
        v = path.split("/")[3]
        return tuple(int(x) for x in re.findall(r"\d+", v))

    for path in sorted(candidates, key=version, reverse=True):
        bindir = os.path.dirname(path)
        if os.path.exists(os.path.join(bindir, "initdb")):
            return bindir
    return None


def _pg_run_as() -> str | None:
    """PostgreSQL will not run as root: the system user to run it as, or None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail(
        "running as root and no 'postgres' or 'nobody' user exists to run PostgreSQL as "
        "(apt-get install postgresql creates 'postgres')",
        pytrace=False,
    )


def start_postgres() -> PostgresServer:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(f"PostgreSQL (initdb, postgres) is not installed: {BOOTSTRAP_HINT}", pytrace=False)
    run_as = _pg_run_as()
    directory = tempfile.mkdtemp(prefix="ringloop-pg-")
    try:
        if run_as is not None:
            pw = pwd.getpwnam(run_as)
            os.chown(directory, pw.pw_uid, pw.pw_gid)
        data = os.path.join(directory, "data")
        log = Path(directory, "postgres.log")
        log.touch()
        initdb_log = Path(directory, "initdb.log")
        with open(initdb_log, "wb") as out:
            initdb = subprocess.Popen(
                [
                    os.path.join(bindir, "initdb"),
                    "-D", data,
                    "-U", "postgres",
                    "-A", "trust",
                    "-E", "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env=_child_env(run_as),
                user=run_as,
            )
        try:
            status = initdb.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            initdb.kill()
            initdb.wait()
            status = f"none: killed after {START_TIMEOUT:.0f} s"
        if status != 0:
            pytest.fail(
                f"initdb failed (status {status}) as user {run_as or os.getuid()}:"
                f"\n{_log_tail(initdb_log)}",
                pytrace=False,
            )
        for attempt in range(PORT_ATTEMPTS):
            port = free_tcp_port()
            argv = _pdeathsig_prefix("INT") + [
                os.path.join(bindir, "postgres"),
                "-D", data,
                "-p", str(port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={directory}",
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "max_connections=50",
                "-c", "logging_collector=off",
            ]  # fmt: skip
            # SIGINT: "fast" shutdown (disconnects clients, no wait for them).
            child = _spawn("postgres", argv, log, signal.SIGINT, cwd=directory, user=run_as)
            server = PostgresServer(
                "127.0.0.1", port, directory, "postgres", "postgres", directory, child
            )

            def ready():
                return os.path.exists(server.unix_socket) and (
                    "ready to accept connections" in _log_tail(log, 100_000)
                )

            deadline = time.monotonic() + START_TIMEOUT
            while not ready():
                if child.exited():
                    break
                if time.monotonic() > deadline:
                    child.stop()
                    child.fail(f"not ready to accept connections after {START_TIMEOUT:.0f} s")
                time.sleep(0.05)
            if not child.exited():
                return server
            if "could not bind" in _log_tail(log) and attempt + 1 < PORT_ATTEMPTS:
                continue
            child.fail(f"exited with status {child.proc.returncode} during start-up")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def stop_postgres(server: PostgresServer) -> None:
    try:
        server.child.stop()
    finally:
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1:<free port> and a unix socket, for the
    session: user ``postgres``, database ``postgres``, trust authentication."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)
