"""fork(): a child process creates and runs a NEW loop (the gunicorn/uvicorn worker
pattern), and the parent's loop keeps working after the child exits."""

import asyncio
import os
import threading
import traceback
import warnings

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _child_workload(loop_factory):
    """Runs in the child; returns normally on success, raises on failure."""
    assert asyncio._get_running_loop() is None
    lp = loop_factory()
    try:

        async def main():
            results = []
            await asyncio.sleep(0.001)
            t = asyncio.ensure_future(asyncio.sleep(0.001, "task"))
            results.append(await t)
            fut = asyncio.get_running_loop().create_future()
            th = threading.Thread(
                target=lambda: lp.call_soon_threadsafe(fut.set_result, "threadsafe")
            )
            th.start()
            results.append(await fut)
            th.join()
            results.append(await asyncio.get_running_loop().run_in_executor(None, str, 7))
            await asyncio.get_running_loop().shutdown_default_executor()
            return results

        assert lp.run_until_complete(main()) == ["task", "threadsafe", "7"]
    finally:
        lp.close()


def _fork_and_run_child(loop_factory):
    return _fork_and_run(_child_workload, loop_factory)


def _fork_and_run(workload, loop_factory):
    """Fork; the child runs ``workload(loop_factory)`` and reports through its exit
    status and a pipe.  Returns (pid, read_fd) in the parent."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # 3.12+ warns about fork() in a multi-threaded process; not what is tested here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(r)
            workload(loop_factory)
            status = 0
        except BaseException:  # noqa: BLE001
            try:
                os.write(w, traceback.format_exc().encode(errors="replace")[-8000:])
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(status)
    os.close(w)
    return pid, r


def _collect(pid, r):
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_child_runs_new_loop_after_fork(loop, loop_factory):
    # The parent's loop exists and has run before the fork.
    assert loop.run_until_complete(asyncio.sleep(0, "before")) == "before"
    pid, r = _fork_and_run_child(loop_factory)
    code, err = _collect(pid, r)
    assert code == 0, err
    # The parent's loop keeps working after the child exited.
    assert loop.run_until_complete(asyncio.sleep(0.001, "after")) == "after"

    async def parent_work():
        return await asyncio.gather(*(asyncio.sleep(0.001, i) for i in range(10)))

    assert loop.run_until_complete(parent_work()) == list(range(10))


def test_fork_from_inside_running_loop(loop, loop_factory):
    async def main():
        lp = asyncio.get_running_loop()
        pid, r = _fork_and_run_child(loop_factory)
        # Wait for the child without blocking the parent's loop.
        code, err = await lp.run_in_executor(None, _collect, pid, r)
        # The parent's loop still schedules timers and callbacks.
        await asyncio.sleep(0.001)
        fut = lp.create_future()
        lp.call_soon(fut.set_result, "parent-ok")
        return code, err, await fut

    code, err, res = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_default_executor())
    assert code == 0, err
    assert res == "parent-ok"


def test_several_children(loop, loop_factory):
    children = [_fork_and_run_child(loop_factory) for _ in range(3)]
    results = [_collect(pid, r) for pid, r in children]
    assert [c for c, _ in results] == [0, 0, 0], [e for _, e in results]
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


def test_child_closes_inherited_loop_then_runs_new_one(loop, loop_factory):
    # The child drops the loop it inherited (as a forking server's worker should)
    # and runs its own; closing the inherited copy must not disturb the parent's loop.
    assert loop.run_until_complete(asyncio.sleep(0.001, "before")) == "before"
    parent_loop = loop

    def workload(factory):
        parent_loop.close()
        _child_workload(factory)

    pid, r = _fork_and_run(workload, loop_factory)
    code, err = _collect(pid, r)
    assert code == 0, err
    assert not loop.is_closed()
    assert loop.run_until_complete(asyncio.sleep(0.001, "after")) == "after"


@pytest.mark.ringloop_only(
    reason="an io_uring ring must never be used by a forked child: ringloop refuses "
    "to run a loop created before fork() (asyncio's selector loop happens to run)"
)
def test_child_cannot_run_inherited_loop(loop, loop_factory):
    assert loop.run_until_complete(asyncio.sleep(0.001, "before")) == "before"
    parent_loop = loop

    def workload(factory):
        coro = asyncio.sleep(0)
        try:
            parent_loop.run_until_complete(coro)
        except RuntimeError as exc:
            assert "fork" in str(exc), exc
        else:
            raise AssertionError("the inherited loop ran in the child")
        finally:
            coro.close()
        _child_workload(factory)

    pid, r = _fork_and_run(workload, loop_factory)
    code, err = _collect(pid, r)
    assert code == 0, err
    assert loop.run_until_complete(asyncio.sleep(0.001, "after")) == "after"
