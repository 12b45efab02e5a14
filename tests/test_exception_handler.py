"""The loop exception handler: set/get, type checks, the default handler's logging,
fallback when a custom handler fails."""

import asyncio
import contextvars
import logging
import sys

import pytest


class Boom(Exception):
    pass


def test_set_get_exception_handler(loop):
    # The loop fixture installed its recorder; replace and restore.
    recorder = loop.get_exception_handler()
    assert callable(recorder)

    def handler(lp, ctx):
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    loop.set_exception_handler(recorder)
    assert loop.get_exception_handler() is recorder


def test_fresh_loop_has_no_handler(loop_factory):
    lp = loop_factory()
    try:
        assert lp.get_exception_handler() is None
    finally:
        lp.close()


@pytest.mark.parametrize("bad", [1, "handler", object()], ids=repr)
def test_non_callable_handler_rejected(loop, bad):
    before = loop.get_exception_handler()
    with pytest.raises(TypeError):
        loop.set_exception_handler(bad)
    assert loop.get_exception_handler() is before


def test_custom_handler_receives_loop_and_context(loop):
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append((lp, ctx)))
    ctx = {"message": "hello", "extra": 1}
    loop.call_exception_handler(ctx)
    assert len(got) == 1
    assert got[0][0] is loop
    assert got[0][1]["message"] == "hello" and got[0][1]["extra"] == 1


def test_default_handler_logs_to_asyncio_logger(loop, caplog):
    loop.set_exception_handler(None)
    try:
        raise Boom("logged")
    except Boom as exc:
        err = exc
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_exception_handler({"message": "something broke", "exception": err, "zzz": 7})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    rec = records[0]
    assert rec.levelno == logging.ERROR
    msg = rec.getMessage()
    assert "something broke" in msg
    assert "zzz: 7" in msg
    assert rec.exc_info is not None and rec.exc_info[1] is err


def test_default_handler_without_message(loop, caplog):
    loop.set_exception_handler(None)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_exception_handler({})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert "Unhandled exception in event loop" in records[0].getMessage()


def test_default_exception_handler_callable_directly(loop, caplog):
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.default_exception_handler({"message": "direct"})
    assert any("direct" in r.getMessage() for r in caplog.records if r.name == "asyncio")


def test_callback_error_through_default_handler_logs(loop, caplog):
    loop.set_exception_handler(None)

    def bad():
        raise Boom("from callback")

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(bad)
        loop.run_until_complete(asyncio.sleep(0))
    records = [r for r in caplog.records if r.name == "asyncio" and r.levelno == logging.ERROR]
    assert len(records) == 1
    assert isinstance(records[0].exc_info[1], Boom)


def test_failing_custom_handler_falls_back_to_default(loop, caplog):
    def handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        # Never raises out of call_exception_handler.
        loop.call_exception_handler({"message": "original"})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert "Unhandled error in exception handler" in msg
    assert "original" in msg  # the original context is included
    assert isinstance(records[0].exc_info[1], RuntimeError)


# caplog keeps the logged context (which holds the failing handle) until the test
# item ends, after the leak check runs.
@pytest.mark.no_leak_check
def test_failing_handler_during_callback_error_loop_survives(loop, caplog):
    def handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    calls = []

    def bad():
        raise Boom()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(calls.append, "after")
        loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["after"]
    assert any(
        "Unhandled error in exception handler" in r.getMessage()
        for r in caplog.records
        if r.name == "asyncio"
    )


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_handler_base_exceptions_propagate(loop, exc_type):
    def handler(lp, ctx):
        raise exc_type()

    loop.set_exception_handler(handler)
    with pytest.raises(exc_type):
        loop.call_exception_handler({"message": "x"})


def test_handler_keyboard_interrupt_during_callback_error_propagates(loop):
    def handler(lp, ctx):
        raise KeyboardInterrupt

    def bad():
        raise ValueError

    loop.set_exception_handler(handler)
    calls = []
    loop.call_soon(bad)
    loop.call_soon(calls.append, "after")
    fallback = loop.call_later(5, loop.stop)  # fail, don't hang, if it is swallowed
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    fallback.cancel()
    assert not loop.is_running()
    loop.set_exception_handler(None)
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == ["after"]


def test_subclass_default_handler_override_not_required(loop):
    # call_exception_handler is usable with a context holding arbitrary keys.
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append(sorted(ctx)))
    loop.call_exception_handler(
        {"message": "m", "future": loop.create_future(), "task": None, "handle": None}
    )
    assert got == [["future", "handle", "message", "task"]]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.12+: handler runs in the handle's context")
def test_handler_runs_in_callback_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.Context()
    ctx.run(var.set, "callback-ctx")
    seen = []
    loop.set_exception_handler(lambda lp, c: seen.append((var.get(), c["handle"])))

    def bad():
        raise Boom()

    h = loop.call_soon(bad, context=ctx)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [("callback-ctx", h)]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Handle.get_context() is 3.12+")
def test_handle_get_context(loop):
    ctx = contextvars.Context()
    h = loop.call_soon(lambda: None, context=ctx)
    t = loop.call_later(0, lambda: None, context=ctx)
    assert h.get_context() is ctx
    assert t.get_context() is ctx
    loop.run_until_complete(asyncio.sleep(0.001))
