"""Shared fixtures for ringloop's behaviour tests.

Every behaviour test is written once and runs on two loops: stock asyncio (the
specification: ``asyncio.new_event_loop()``, a ``SelectorEventLoop`` on Linux) and
ringloop.  The fixtures here:

- ``loop_kind``/``loop_factory``: the parametrisation ``["asyncio", "ringloop"]``;
  ``loop_factory`` is a zero-argument callable making a fresh loop of that kind.  If
  ``import ringloop`` fails the ringloop variants FAIL (a skipped test must never pass
  for a working one).  A kernel that refuses io_uring gets ringloop's epoll backend,
  so nothing is skipped for it either.
- ``loop``: a fresh loop with an exception handler that records every
  ``call_exception_handler`` context in ``exc_contexts``; the test fails at teardown if
  any context is left there.  Tests that expect handler calls assert on
  ``exc_contexts`` and ``clear()`` it, or carry ``@pytest.mark.expect_handler_calls``.
- an autouse resource check: open fds (``/proc/self/fd``) and OS threads
  (``/proc/self/task``) must be back to their pre-test values after the loop is closed
  and garbage collected (executor threads get a short grace period).
- a default 60 s pytest-timeout per test.

The ringloop variant runs on whatever backend ringloop selects for a new loop; CI runs
the suite once per backend (RINGLOOP_BACKEND=io_uring|epoll).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest

LOOP_KINDS = ["asyncio", "ringloop"]
DEFAULT_TIMEOUT = 60

# Test modules owned by other people: no resource check imposed on them.
_FOREIGN_MODULES = {"test_core_c", "test_cpython_conformance"}


def pytest_configure(config):
    for line in (
        "ringloop_only(reason): behaviour specific to ringloop (asyncio legitimately "
        "differs); the test is generated for the ringloop loop only",
        "asyncio_only(reason): behaviour asyncio has and ringloop deliberately does "
        "not; the test is generated for the asyncio loop only",
        "expect_handler_calls: the test expects loop exception-handler calls; the "
        "loop fixture does not fail on leftover recorded contexts",
        "no_leak_check: do not check fd, thread and ringloop object counts around this test",
    ):
        config.addinivalue_line("markers", line)


def _excluded_kind(item):
    """ringloop_only / asyncio_only tests exist for one loop kind only: the other
    variant is deselected (not skipped, so no skip clutters the report)."""
    callspec = getattr(item, "callspec", None)
    kind = callspec.params.get("loop_kind") if callspec is not None else None
    if kind is None:
        return False
    if item.get_closest_marker("ringloop_only") is not None and kind != "ringloop":
        return True
    if item.get_closest_marker("asyncio_only") is not None and kind != "asyncio":
        return True
    return False


def pytest_collection_modifyitems(config, items):
    deselected = [item for item in items if _excluded_kind(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not _excluded_kind(item)]
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


# --------------------------------------------------------------------------- loops

_ringloop_import_error: BaseException | None = None
_ringloop_module = None


def import_ringloop():
    """Return the ringloop module, or fail the current test if it cannot be imported."""
    global _ringloop_module, _ringloop_import_error
    if _ringloop_module is None and _ringloop_import_error is None:
        try:
            import ringloop
        except BaseException as exc:  # noqa: BLE001 - reported as a test failure
            _ringloop_import_error = exc
        else:
            _ringloop_module = ringloop
    if _ringloop_module is None:
        pytest.fail(f"import ringloop failed: {_ringloop_import_error!r}", pytrace=False)
    return _ringloop_module


def _make_ringloop_loop():
    return import_ringloop().new_event_loop()


# The reference loop: what asyncio.new_event_loop() returns on Linux under the default
# policy, named directly so that a policy left installed by some test cannot turn the
# "asyncio" variant into something else.
ASYNCIO_LOOP = asyncio.SelectorEventLoop


def make_loop(kind):
    if kind == "asyncio":
        return ASYNCIO_LOOP()
    if kind == "ringloop":
        return _make_ringloop_loop()
    raise ValueError(kind)


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    kind = request.param
    if kind == "ringloop":
        # Fails the test if ringloop cannot be imported or makes no loop (probe
        # once here, not deep inside a test).
        _make_ringloop_loop().close()
    return kind


@pytest.fixture
def loop_factory(loop_kind):
    """A zero-argument callable returning a new loop of the parametrised kind."""
    if loop_kind == "asyncio":
        return ASYNCIO_LOOP
    return import_ringloop().new_event_loop


@pytest.fixture
def exc_contexts():
    """Contexts passed to the ``loop`` fixture's exception handler, in order."""
    return []


@pytest.fixture
def loop(request, loop_factory, exc_contexts):
    lp = loop_factory()

    def record(loop_, context):
        assert loop_ is lp
        exc_contexts.append(context)

    lp.set_exception_handler(record)
    try:
        yield lp
    finally:
        try:
            if not lp.is_closed():
                assert not lp.is_running()
                lp.close()
        finally:
            asyncio.set_event_loop(None)
            # pytest keeps fixture values until the item ends: drop what a test's
            # handler may reference, so the leak check sees only real leaks.
            lp.set_exception_handler(None)
    gc.collect()
    assert asyncio._get_running_loop() is None
    if exc_contexts and request.node.get_closest_marker("expect_handler_calls") is None:
        lines = [
            f"- {c.get('message')!r} exception={c.get('exception')!r}" for c in exc_contexts
        ]
        pytest.fail(
            "unexpected loop exception-handler calls:\n" + "\n".join(lines), pytrace=False
        )


# ------------------------------------------------------------------- resource check


def _fds():
    return sorted(os.listdir("/proc/self/fd"))


def _fd_count():
    # listdir itself opens one fd while reading: it is counted the same way every time.
    return len(os.listdir("/proc/self/fd"))


def _thread_count():
    return len([t for t in os.listdir("/proc/self/task") if not _runtime_thread(t)])


def _runtime_thread(tid):
    """Process-wide threads that no test starts: io_uring's kernel workers
    (iou-wrk-*, iou-sqp-*, which come and go with the kernel's idle timeouts),
    ringloop's C workers (rl-worker-*, started once by rt.fs) and its blocking
    pool's threads (rl-blocking, kept for reuse until an idle timeout)."""
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().startswith(("iou-", "rl-"))
    except OSError:
        return True  # exited meanwhile


def _ringloop_live_objects():
    """Open ringloop loops and live handles (the C core counts them), or {}
    when ringloop is not imported."""
    if _ringloop_module is None:
        return {}
    return _ringloop_module._loop._core._live_objects()


def _no_more_than(after, before):
    return all(after[k] <= before.get(k, 0) for k in after) if before else True


@pytest.fixture(scope="session")
def _warm_up():
    """Create and close one loop of each kind before measuring anything, so that
    process-wide, created-once state (module import, a lazily started worker pool)
    is not counted as a leak of whichever test happens to run first."""
    for kind in LOOP_KINDS:
        try:
            lp = make_loop(kind)
        except BaseException:  # noqa: BLE001 - the tests themselves report it
            continue
        try:
            lp.run_until_complete(asyncio.sleep(0))
        finally:
            lp.close()
    try:  # ringloop.rt.fs starts its C workers (each with a ring) on first use
        import ringloop.rt

        lp = make_loop("asyncio")
        lp.run_until_complete(ringloop.rt.fs.read_file(__file__))
        lp.close()
    except BaseException:  # noqa: BLE001 - the tests themselves report it
        pass
    gc.collect()
    # Everything alive now (imported modules, collected test modules) lives for
    # the session: move it out of the collector's way, so that the full
    # collection after each test only walks what tests created.
    gc.freeze()


@pytest.fixture(autouse=True)
def _resource_check(request, _warm_up):
    if (
        request.node.module.__name__.rpartition(".")[2] in _FOREIGN_MODULES
        or request.node.get_closest_marker("no_leak_check") is not None
    ):
        yield
        return
    # The previous test's teardown already collected garbage: no gc.collect() here
    # (a full collection costs tens of ms under pytest; the suite has ~600 tests).
    fds_before = _fds()
    threads_before = _thread_count()
    live_before = _ringloop_live_objects()
    yield
    if getattr(request.node, "_rep_call_failed", False):
        # The test already failed; a leak report on top would only add noise.
        return
    deadline = time.monotonic() + 10.0
    while True:
        fds_after = _fds()
        threads_after = _thread_count()
        live_after = _ringloop_live_objects()
        if (
            len(fds_after) <= len(fds_before)
            and threads_after <= threads_before
            and _no_more_than(live_after, live_before)
        ):
            break
        if time.monotonic() > deadline:
            break
        # Unreachable objects may still hold fds; executor threads may still be exiting.
        gc.collect()
        time.sleep(0.01)
    problems = []
    if len(fds_after) > len(fds_before):
        extra = sorted(set(fds_after) - set(fds_before), key=int)
        descr = []
        for fd in extra:
            try:
                descr.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
            except OSError:
                descr.append(fd)
        problems.append(
            f"open fds {len(fds_before)} -> {len(fds_after)} (new: {', '.join(descr)})"
        )
    if threads_after > threads_before:
        names = [t.name for t in threading.enumerate()]
        problems.append(
            f"OS threads {threads_before} -> {threads_after} (Python threads: {names})"
        )
    if not _no_more_than(live_after, live_before):
        problems.append(f"live ringloop objects {live_before} -> {live_after}")
    if problems:
        pytest.fail("resource leak: " + "; ".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call" and rep.failed:
        item._rep_call_failed = True
    return rep
