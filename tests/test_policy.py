"""The legacy policy shims: ringloop.EventLoopPolicy and ringloop.install().

They exist only for code that still goes through asyncio.new_event_loop()/policies
(Sanic, aiohttp's gunicorn worker, pytest-asyncio < 1.4).  These are ringloop's own
API, so the tests are generated for the ringloop loop kind only."""

import asyncio
import sys
import warnings

import pytest

pytestmark = pytest.mark.ringloop_only(reason="EventLoopPolicy/install are ringloop's API")


@pytest.fixture
def restore_policy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(old)
        asyncio.set_event_loop(None)


def _policy_cls():
    import ringloop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ringloop.EventLoopPolicy


def test_policy_class_shape(loop_kind):
    cls = _policy_cls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        base = asyncio.AbstractEventLoopPolicy
    assert issubclass(cls, base)


def test_policy_new_event_loop(loop_kind):
    import ringloop

    policy = _policy_cls()()
    lp = policy.new_event_loop()
    try:
        assert isinstance(lp, ringloop.EventLoop)
        assert lp.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        lp.close()


def test_policy_set_get_event_loop(loop_kind, restore_policy):
    import ringloop

    policy = _policy_cls()()
    lp = ringloop.new_event_loop()
    try:
        policy.set_event_loop(lp)
        assert policy.get_event_loop() is lp
        policy.set_event_loop(None)
    finally:
        lp.close()


def test_asyncio_new_event_loop_under_policy(loop_kind, restore_policy):
    import ringloop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(_policy_cls()())
    lp = asyncio.new_event_loop()
    try:
        assert isinstance(lp, ringloop.EventLoop)
    finally:
        lp.close()

    async def main():
        return type(asyncio.get_running_loop())

    # asyncio.run() (no loop_factory) goes through the policy as well.
    assert asyncio.run(main()) is ringloop.EventLoop


def test_install_warning_per_version(loop_kind, restore_policy):
    import ringloop

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ringloop.install()
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    if sys.version_info >= (3, 12):
        assert deprecations, "install() must emit DeprecationWarning on 3.12+"
        assert any("install" in str(w.message) for w in deprecations) or any(
            "ringloop" in str(w.message) for w in deprecations
        )
    else:
        assert not [w for w in deprecations if "ringloop" in str(w.message)], [
            str(w.message) for w in deprecations
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()
    assert isinstance(policy, _policy_cls())
    lp = asyncio.new_event_loop()
    try:
        assert isinstance(lp, ringloop.EventLoop)
    finally:
        lp.close()


def test_policy_is_lazy_attribute(loop_kind):
    import subprocess

    import ringloop

    # Importing ringloop must not load the policy shim (it touches asyncio's
    # deprecated policy API); accessing it loads it, and it is stable.
    code = (
        "import sys, ringloop\n"
        "before = any('policy' in m for m in sys.modules if m.startswith('ringloop'))\n"
        "ringloop.EventLoopPolicy\n"
        "after = any('policy' in m for m in sys.modules if m.startswith('ringloop'))\n"
        "print(before, after)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
    assert _policy_cls() is _policy_cls()
    assert callable(ringloop.install)
