"""HTTP/1.1 keep-alive under wrk: a raw asyncio.Protocol server and an aiohttp app on
asyncio, uvloop and ringloop (wrk -t1 -c50 pinned to the other CPU). See
benchmarks/README.md ("Network benchmarks") and benchmarks/echo/netbench.py.

Asserts only correctness: the server answered a keep-alive response check with the
expected body, and wrk completed requests with no connect/read/write/timeout errors and
no non-2xx responses. A loop that raises NotImplementedError is shown as "not
implemented"; a missing aiohttp as "not installed". Speed is never asserted.
"""

import pytest

from benchmarks.echo import netbench

SERVERS = netbench.http_servers()


@pytest.fixture(scope="module")
def http_matrix():
    try:
        netbench.ensure_wrk()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    matrix = netbench.run_http(progress=lambda msg: print(msg, flush=True))
    netbench.print_report(matrix, "HTTP")
    return matrix


@pytest.mark.parametrize("server", SERVERS)
def test_http(http_matrix, server):
    found = netbench.problems(http_matrix, server)
    assert not found, "\n".join(found)
