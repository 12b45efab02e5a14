"""Echo matrix: modes streams/protocol/buffered/sock x 1, 10, 100 KiB x 1, 10, 100
connections, on asyncio, uvloop and ringloop, next to a C io_uring echo server (the
ceiling). See benchmarks/README.md ("Network benchmarks") and benchmarks/echo/netbench.py.

The load generator checks every echoed byte; the tests assert only that: every run that
ran completed requests and got its bytes back intact. A loop that raises
NotImplementedError for a mode is shown as "not implemented", not failed. Speed is never
asserted.
"""

import pytest

from benchmarks.echo import netbench

MODES = netbench.echo_modes()


@pytest.fixture(scope="module")
def echo_matrix():
    matrix = netbench.run_echo(progress=lambda msg: print(msg, flush=True))
    netbench.print_report(matrix, "Echo")
    return matrix


def _check(matrix, mode):
    found = netbench.problems(matrix, mode)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("mode", MODES)
def test_echo(echo_matrix, mode):
    _check(echo_matrix, mode)


def test_echo_ceiling(echo_matrix):
    if netbench.CEILING not in echo_matrix.loops:
        pytest.skip("the C ceiling is not selected (RINGLOOP_BENCH_LOOPS)")
    _check(echo_matrix, netbench.CEILING)
