"""The ring-setup fallback ladder: every rung runs the loop correctly.

Kernels older than 6.1 refuse DEFER_TASKRUN and older than 5.19 COOP_TASKRUN, so
ringloop falls back (csrc/core/ring.c). RINGLOOP_RING_SETUP starts the ladder at a
lower rung, so each fallback is exercised here on a new kernel, in a subprocess:
timers, a sleeping loop woken from another thread, an executor, and the same loop
run again from a second thread; and the same workload on the epoll backend.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.ringloop_only(reason="ringloop's ring set-up")

WORKLOAD = textwrap.dedent(
    """
    import asyncio, threading, time, ringloop

    loop = ringloop.new_event_loop()
    print(loop._ring_info()["setup"])

    async def main():
        lp = asyncio.get_running_loop()
        order = []
        for i, delay in enumerate([0.02, 0.005, 0.01]):
            lp.call_later(delay, order.append, i)
        await asyncio.sleep(0.03)
        woken = lp.create_future()
        threading.Timer(0.01, lp.call_soon_threadsafe, (woken.set_result, "woken")).start()
        executor = await lp.run_in_executor(None, sum, range(10))
        return order, await woken, executor

    print(loop.run_until_complete(main()))
    result = []
    t = threading.Thread(target=lambda: result.append(
        loop.run_until_complete(asyncio.sleep(0.001, "other thread"))))
    t.start(); t.join()
    print(result[0])
    loop.close()
    """
)


@pytest.mark.parametrize("setup", ["single_issuer|defer_taskrun", "coop_taskrun", "plain",
                                   "epoll"])
def test_every_setup_rung_runs_the_loop(setup):
    # The io_uring rungs on io_uring even in an epoll run (make test-epoll); the
    # epoll backend, which has no rungs, as the last one.
    if setup == "epoll":
        env = dict(os.environ, RINGLOOP_BACKEND="epoll")
    else:
        env = dict(os.environ, RINGLOOP_RING_SETUP=setup, RINGLOOP_BACKEND="io_uring")
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        setup,
        "([1, 2, 0], 'woken', 45)",
        "other thread",
    ]
