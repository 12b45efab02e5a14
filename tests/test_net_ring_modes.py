"""The networking suite's core files again, on ringloop only, in the ring modes a
default run does not reach: each fallback rung of the ring setup (completions
arrive at other moments there, so cancellation races differ) and a starved
receive-buffer ring (RINGLOOP_RECV_BUFFERS=1x1024: nearly every multishot receive
ends in ENOBUFS and is re-armed, and large reads take the direct path at once), and the epoll backend (also
starved). The io_uring rungs pin RINGLOOP_BACKEND=io_uring, so an epoll run of the
suite (make test-epoll) still covers them.
Each runs in a pytest subprocess so the environment reaches the loop's set-up."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ringloop_only(reason="ringloop's ring modes")

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ["test_net_transport.py", "test_net_bulk.py", "test_net_sock.py",
         "test_net_flow.py", "test_net_streams.py"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("env", [
    {"RINGLOOP_RING_SETUP": "coop_taskrun", "RINGLOOP_BACKEND": "io_uring"},
    {"RINGLOOP_RING_SETUP": "plain", "RINGLOOP_BACKEND": "io_uring"},
    {"RINGLOOP_RECV_BUFFERS": "1x1024"},
    {"RINGLOOP_BACKEND": "epoll"},
    {"RINGLOOP_BACKEND": "epoll", "RINGLOOP_RECV_BUFFERS": "1x1024"},
], ids=["coop_taskrun", "plain", "starved_buffers", "epoll", "epoll_starved_buffers"])
def test_network_suite_in_ring_mode(env):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-k", "ringloop", *[os.path.join(HERE, f) for f in FILES]],
        env=dict(os.environ, **env), capture_output=True, text=True,
        timeout=220, cwd=os.path.dirname(HERE),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]
