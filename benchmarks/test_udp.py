"""UDP echo: datagrams of 64 B and 1 KiB from 1 and 10 clients (connected UDP
sockets, one datagram in flight each), on asyncio, uvloop and ringloop in one
interleaved run. The server (``benchmarks.echo.servers udp``: a
DatagramProtocol whose datagram_received calls ``transport.sendto(data,
addr)``) is pinned to one CPU, the C load generator (``loadgen --udp 1``,
which checks every echoed datagram) to the other; the report gives
datagrams/s and the server's CPU per datagram. Same harness as the echo
matrix (benchmarks/echo/netbench.py). Speed is never asserted.

    RINGLOOP_BENCH_UDP_SIZES=64,1k  RINGLOOP_BENCH_UDP_CONNS=1,10
"""

import pytest

from benchmarks.echo import netbench


@pytest.fixture(scope="module")
def udp_matrix():
    sizes = [netbench._size(s) for s in netbench._env_list(
        "RINGLOOP_BENCH_UDP_SIZES", "64,1k")]
    conns = [int(c) for c in netbench._env_list("RINGLOOP_BENCH_UDP_CONNS", "1,10")]
    matrix = netbench.run_echo(progress=lambda msg: print(msg, flush=True),
                               modes=["udp"], sizes=sizes, conns=conns,
                               ceiling=False)
    netbench.print_report(matrix, "UDP echo")
    return matrix


def test_udp_echo(udp_matrix):
    found = netbench.problems(udp_matrix, "udp")
    assert not found, "\n".join(found)
