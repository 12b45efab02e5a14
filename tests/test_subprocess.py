"""asyncio.create_subprocess_exec / _shell: pipes, communicate, wait, signals,
Popen options, asyncio's argument errors, cancellation, large outputs, many
children, and the exit of a child seen without a SIGCHLD handler. Every test runs
on asyncio (the spec) and ringloop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys

import pytest

from net_helpers import run

PIPE = asyncio.subprocess.PIPE
PY = sys.executable


def _py(code):
    return (PY, "-c", code)


def test_exec_communicate(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import sys; d = sys.stdin.buffer.read(); "
                 "sys.stdout.buffer.write(d.upper()); "
                 "sys.stderr.buffer.write(b'err'); sys.exit(3)"),
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.pid > 0
        out, err = await proc.communicate(b"hello")
        assert (out, err, proc.returncode) == (b"HELLO", b"err", 3)
        assert await proc.wait() == 3

    run(loop, main())


def test_shell(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err >&2; exit 7", stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate()
        assert (out, err, proc.returncode) == (b"out\n", b"err\n", 7)

    run(loop, main())


def test_streams_line_by_line(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import sys\nfor line in sys.stdin: print(line.strip()[::-1], flush=True)"),
            stdin=PIPE, stdout=PIPE)
        for word in (b"abc", b"hello"):
            proc.stdin.write(word + b"\n")
            await proc.stdin.drain()
            assert await proc.stdout.readline() == word[::-1] + b"\n"
        proc.stdin.close()
        await proc.stdin.wait_closed()
        assert await proc.stdout.read() == b""
        assert await proc.wait() == 0

    run(loop, main())


@pytest.mark.parametrize("how", ["kill", "terminate", "send_signal"])
def test_kill_terminate_send_signal(loop, how):
    expected = {"kill": -signal.SIGKILL, "terminate": -signal.SIGTERM,
                "send_signal": -signal.SIGUSR1}[how]

    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import sys, time; print('ready', flush=True); time.sleep(60)"),
            stdout=PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        if how == "send_signal":
            proc.send_signal(signal.SIGUSR1)
        else:
            getattr(proc, how)()
        assert await proc.wait() == expected
        assert proc.returncode == expected

    run(loop, main())


def test_child_killed_by_signal_itself(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell("kill -9 $$")
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


def test_stderr_to_stdout_and_devnull(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import sys; d = sys.stdin.read(); print('o', len(d)); "
                 "sys.stdout.flush(); print('e', file=sys.stderr)"),
            stdin=subprocess.DEVNULL, stdout=PIPE, stderr=subprocess.STDOUT)
        assert proc.stdin is None and proc.stderr is None
        out, err = await proc.communicate()
        assert (out, err) == (b"o 0\ne\n", None)
        assert proc.returncode == 0

    run(loop, main())


def test_pass_fds(loop):
    r, w = os.pipe()

    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py(f"import os; os.write({w}, b'through fd')"), pass_fds=(w,))
        assert await proc.wait() == 0

    try:
        run(loop, main())
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"through fd"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_preexec_fn_and_start_new_session(loop):
    async def main():
        code = "import os; print(os.getsid(0) == os.getpid(), os.environ.get('X'))"
        proc = await asyncio.create_subprocess_exec(
            *_py(code), stdout=PIPE, start_new_session=True)
        assert (await proc.communicate())[0] == b"True None\n"
        proc = await asyncio.create_subprocess_exec(
            *_py(code), stdout=PIPE, preexec_fn=lambda: os.environ.__setitem__("X", "1"))
        # preexec_fn ran in the child, before exec (which inherited its
        # environment); the parent's environment is unchanged.
        assert (await proc.communicate())[0] == b"False 1\n"
        assert "X" not in os.environ

    run(loop, main())


def test_preexec_fn_raising(loop):
    def boom():
        raise RuntimeError("boom")

    async def main():
        with pytest.raises(subprocess.SubprocessError):
            await asyncio.create_subprocess_exec("true", preexec_fn=boom)

    run(loop, main())


def test_missing_program(loop):
    async def main():
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/ringloop-test-program")

    run(loop, main())


@pytest.mark.parametrize("kwargs, message", [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"text": True}, "text must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
])
def test_argument_errors(loop, kwargs, message):
    proto = asyncio.SubprocessProtocol
    with pytest.raises(ValueError, match=message):
        run(loop, loop.subprocess_exec(proto, "true", **kwargs))
    with pytest.raises(ValueError, match=message):
        run(loop, loop.subprocess_shell(proto, "true", **kwargs))


def test_shell_command_must_be_str(loop):
    with pytest.raises(ValueError, match="cmd must be a string"):
        run(loop, loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"]))


def test_cancel_communicate_then_kill(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import time; time.sleep(60)"), stdin=PIPE, stdout=PIPE)
        task = asyncio.ensure_future(proc.communicate(b"x"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


def test_cancel_wait(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(*_py("import time; time.sleep(60)"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
        assert proc.returncode is None
        proc.terminate()
        assert await proc.wait() == -signal.SIGTERM

    run(loop, main())


def test_large_output_digest(loop):
    size = 32 * 1024 * 1024
    code = ("import sys, hashlib\n"
            "b = bytes(range(256)) * 4096\n"
            f"for _ in range({size} // len(b)): sys.stdout.buffer.write(b)\n")
    expected = hashlib.sha256((bytes(range(256)) * 4096) * (size // (256 * 4096)))

    async def main():
        proc = await asyncio.create_subprocess_exec(*_py(code), stdout=PIPE)
        h = hashlib.sha256()
        n = 0
        while chunk := await proc.stdout.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
        assert await proc.wait() == 0
        assert n == size
        assert h.hexdigest() == expected.hexdigest()

    run(loop, main(), timeout=60)


def test_large_input_and_output(loop):
    data = os.urandom(8 * 1024 * 1024)

    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(data)
        assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()
        assert proc.returncode == 0

    run(loop, main(), timeout=60)


def test_many_concurrent_children(loop):
    async def one(i):
        proc = await asyncio.create_subprocess_shell(f"echo {i}; exit {i % 7}", stdout=PIPE)
        out, _ = await proc.communicate()
        return int(out), proc.returncode

    async def main():
        results = await asyncio.gather(*(one(i) for i in range(40)))
        assert results == [(i, i % 7) for i in range(40)]

    run(loop, main(), timeout=60)


def test_wait_after_exit_was_seen(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("true")
        while proc.returncode is None:  # the loop collects the exit on its own
            await asyncio.sleep(0.01)
        assert proc.returncode == 0
        assert await proc.wait() == 0
        assert await proc.wait() == 0

    run(loop, main())


def test_stdin_closed_by_child(loop):
    """The child closes its stdin (the read end): writing more is a broken pipe."""

    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import os, time; os.close(0); print('closed', flush=True); time.sleep(60)"),
            stdin=PIPE, stdout=PIPE)
        assert await proc.stdout.readline() == b"closed\n"
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                proc.stdin.write(b"x" * 65536)
                await proc.stdin.drain()
        proc.kill()
        await proc.wait()

    run(loop, main())


def test_protocol_callbacks_order(loop):
    events = []

    class Proto(asyncio.SubprocessProtocol):
        def __init__(self):
            self.done = asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            events.append("made")

        def pipe_data_received(self, fd, data):
            events.append((fd, data))

        def pipe_connection_lost(self, fd, exc):
            events.append(("lost", fd, exc))

        def process_exited(self):
            events.append("exited")

        def connection_lost(self, exc):
            events.append(("conn_lost", exc))
            self.done.set_result(None)

    async def main():
        tr, proto = await loop.subprocess_exec(
            Proto, "echo", "hi", stdin=None, stdout=PIPE, stderr=None)
        await proto.done
        assert tr.get_returncode() == 0
        assert tr.get_pipe_transport(1) is not None
        assert tr.get_pipe_transport(0) is None
        tr.close()

    run(loop, main())
    assert events[0] == "made"
    assert (1, b"hi\n") in events
    assert ("lost", 1, None) in events
    assert "exited" in events
    assert events[-1] == ("conn_lost", None)


def test_child_reaped_by_someone_else(loop, loop_kind, caplog):
    """Somebody else reaped the child: returncode 255 and a warning."""
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio 3.11's child watcher is a thread that reaps the "
                    "child at once: the test cannot take the child from it")

    async def main():
        proc = await asyncio.create_subprocess_exec(*_py("import sys; sys.exit(5)"))
        assert os.waitpid(proc.pid, 0)[0] == proc.pid
        assert await proc.wait() == 255

    with caplog.at_level("WARNING", logger="asyncio"):
        run(loop, main())
    assert "will report returncode 255" in caplog.text


def test_close_loop_with_live_child_leaks_nothing(loop_factory):
    lp = loop_factory()

    async def main():
        proc = await asyncio.create_subprocess_exec(
            *_py("import time; time.sleep(60)"), stdout=PIPE)
        return proc

    proc = lp.run_until_complete(main())
    pid = proc.pid
    proc._transport.close()  # kills the child, as a dropped transport would
    lp.run_until_complete(asyncio.sleep(0.01))
    lp.close()
    del proc
    # The child was killed: it can be reaped (by us, or it already was).
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
