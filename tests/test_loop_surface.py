"""ringloop implements the whole asyncio.AbstractEventLoop surface.

Every public method of AbstractEventLoop (on the running Python) must be ringloop's
own or asyncio's concrete implementation, never AbstractEventLoop's stub that
raises NotImplementedError; and calling each one with bad arguments raises an
ordinary error, never NotImplementedError."""

import asyncio
import inspect

import ringloop

ABSTRACT = [
    name for name, value in vars(asyncio.AbstractEventLoop).items()
    if not name.startswith("_") and inspect.isfunction(value)
]


def test_every_abstract_method_is_implemented():
    stubs = [
        name for name in ABSTRACT
        if inspect.getattr_static(ringloop.EventLoop, name)
        is vars(asyncio.AbstractEventLoop)[name]
    ]
    assert ABSTRACT and not stubs, f"AbstractEventLoop stubs left: {stubs}"


def test_no_method_raises_not_implemented():
    loop = ringloop.new_event_loop()
    try:
        for name in ABSTRACT:
            method = getattr(loop, name)
            try:
                result = method(object(), object(), object())
            except NotImplementedError as exc:  # pragma: no cover - the failure
                raise AssertionError(f"loop.{name}() is not implemented") from exc
            except Exception:
                continue  # bad arguments: any ordinary error is fine
            if inspect.iscoroutine(result):
                try:
                    loop.run_until_complete(result)
                except NotImplementedError as exc:  # pragma: no cover
                    raise AssertionError(f"loop.{name}() is not implemented") from exc
                except Exception:
                    pass
    finally:
        loop.close()
