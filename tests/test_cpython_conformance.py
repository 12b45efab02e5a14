"""CPython's own test.test_asyncio modules, run on ringloop (one pytest test per module).

The harness lives in tests/conformance/ (see its README.md).  Each module runs in
a worker subprocess with ringloop bound as the default loop factory; a test fails
here when
  * any CPython test fails/errors/hangs/crashes that is not in known_failures.txt,
  * a test listed in known_failures.txt now passes (remove it from the list),
  * a listed test no longer exists for this Python (renamed, or needs a version tag),
  * ringloop's factory built no loop during the module (the binding did not work),
  * CPython's test package is missing (install libpythonX.Y-testsuite) or ringloop
    cannot be imported.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance")


def _load(name):
    spec = importlib.util.spec_from_file_location(
        f"ringloop_conformance_{name}", os.path.join(HERE, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, HERE)      # run.py imports modules.py by plain name
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(HERE)
    return mod


run = _load("run")
# RINGLOOP_CONFORMANCE_LOOP=asyncio runs the same gate on the stock loop (to check
# the harness itself); CI leaves it unset.
LOOP = os.environ.get("RINGLOOP_CONFORMANCE_LOOP", "ringloop")


@pytest.fixture(scope="module")
def suite_info():
    try:
        return run.check_python(sys.executable)
    except run.Unavailable as e:
        # never skip: a missing test suite would make the gate silently vacuous
        pytest.fail(str(e), pytrace=False)


def test_known_failures_file_is_valid():
    known = run.load_known_failures(python_version="", loop=LOOP)  # parses all lines
    with open(run.KNOWN_FAILURES) as f:
        ids = [ln.split("#")[0].split()[0] for ln in f if ln.split("#")[0].strip()]
    assert len(ids) == len(set(ids)), "duplicate entries in known_failures.txt"
    prefixes = tuple(s.id_prefix for s in run.MODULES.values())
    bad = [t for t in ids if not t.startswith(prefixes)]
    assert not bad, f"entries for modules the harness does not know: {bad}"
    del known


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", run.DEFAULT_MODULES)
def test_module(name, suite_info):
    spec = run.MODULES[name]
    pyver = suite_info["python"]
    if not run.module_available(suite_info, spec):
        pytest.skip(f"test_{name} is not part of CPython {pyver}'s test suite")
    known = run.load_known_failures(python_version=pyver, loop=LOOP)
    res = run.run_module(spec, LOOP, sys.executable)
    ev = run.evaluate(res, known)
    if res["fatal"]:
        pytest.fail(res["fatal"], pytrace=False)
    if not ev["ok"]:
        out = io.StringIO()
        c = res["counts"]
        print(f"test_{name} on {LOOP}: {c['pass']}/{c['run']} passed, "
              f"{c['fail']} failed, {c['error']} errors, {c['hang']} hangs, "
              f"{c['crash']} crashes, {c['skip']} skipped, "
              f"{len(ev['known'])} known failures; {res['loops']} loops", file=out)
        run.print_problems([LOOP], [name], {(LOOP, name): res}, {(LOOP, name): ev},
                           {LOOP: known}, False, out)
        pytest.fail(out.getvalue(), pytrace=False)
