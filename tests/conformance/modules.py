"""Which modules of CPython's ``test.test_asyncio`` the conformance run binds, and how.

Every entry of ``MODULES`` says how the module's tests get their event loop and
therefore how the harness re-binds them to the loop under test:

* ``policy=True`` ("class B" in the research notes): the tests take their loop
  from the default event-loop policy -- ``asyncio.new_event_loop()``,
  ``asyncio.run()``, ``asyncio.Runner()`` or ``unittest.IsolatedAsyncioTestCase``.
  The worker patches the default policy's ``_loop_factory`` class attribute, so
  these tests need no change.  ``classes`` optionally restricts which of the
  module's TestCase classes run (``None`` = all of them).

* ``mixins`` ("class A"): loop-agnostic mixin classes whose concrete subclasses
  construct a stdlib loop explicitly through a hook method
  (``create_event_loop()`` / ``new_loop()``).  For each ``Mixin`` the worker
  builds a new TestCase class ``<name>`` from ``bases`` whose ``hook`` returns the
  loop under test; only these generated classes (plus ``classes`` above when
  ``policy`` is set) are run.  The stdlib-bound originals are not loaded.

* ``patch``: a function ``patch(module, factory)`` for one-off cases (a
  ``setUp`` that builds a ``BaseEventLoop`` by hand, ...).  Listed in
  ``PATCHES`` below by name so that the spec stays data.

A module missing from the interpreter's own test suite (test_staggered before
a 3.12 patch release) is reported as not part of it and skipped.
``default`` modules are what ``run.py`` and the pytest wrapper run when no
``--modules`` is given; the others are ready for ``--modules NAME``.

To add a module: add a ``Spec`` below, run
``python tests/conformance/run.py --loop asyncio --modules NAME`` (it must be
all-green on the stock loop and report loops > 0), then add it to the defaults.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Mixin:
    name: str                 # name of the generated TestCase class
    bases: tuple[str, ...]    # dotted names, resolved in the test module's namespace
    hook: str                 # method that must return a new loop


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str                              # spec name (= module name without "test_")
    policy: bool = True                    # bind through the default policy
    classes: tuple[str, ...] | None = None  # with policy: which classes (None = all)
    mixins: tuple[Mixin, ...] = ()         # class-A re-bound mixin classes
    patch: str | None = None               # name of a function in PATCHES
    default: bool = False
    timeout: float = 120.0                 # whole-module backstop, seconds
    test_module: str | None = None         # module, if it differs from name

    @property
    def module(self) -> str:
        return f"test.test_asyncio.test_{self.test_module or self.name}"

    @property
    def id_prefix(self) -> str:
        """Test ids of this spec start with this (see known_failures.txt)."""
        return f"test_{self.test_module or self.name}."


def _patch_pep492(module, factory):
    """test_pep492.BaseTest.setUp builds ``asyncio.BaseEventLoop()`` with a mocked
    selector (no I/O ever happens).  Give it the loop under test instead; the
    tests only use run_until_complete/set_debug/create_task."""
    from test.test_asyncio import utils as test_utils

    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = factory()
        self.set_event_loop(self.loop)

    module.BaseTest.setUp = setUp


def _patch_runners(module, factory):
    """test_runners.BaseTest.new_loop builds a mocked ``BaseEventLoop`` that a
    TestPolicy hands to asyncio.run()/Runner; its tearDown checks that the loop
    was closed and that shutdown_asyncgens() ran.  Hand out the loop under test,
    instrumented the same way."""
    def new_loop(self):
        loop = factory()
        loop.shutdown_ag_run = False

        async def shutdown_asyncgens():
            loop.shutdown_ag_run = True
        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    module.BaseTest.new_loop = new_loop


def _patch_subprocess(module, factory):
    """test_subprocess's SubprocessMixin takes ``self.loop`` from its concrete
    classes' setUp, one class per child watcher on 3.11-3.13 (all bound to the
    stock loop).  Add one class, RingSubprocessTests, whose setUp hands out the
    loop under test and installs no watcher: the loop must see its children
    exit by itself (the stock loop falls back to the policy's default)."""
    from test.test_asyncio import utils as test_utils

    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = factory()
        self.set_event_loop(self.loop)

    module.RingSubprocessTests = type(
        "RingSubprocessTests", (module.SubprocessMixin, test_utils.TestCase),
        {"setUp": setUp, "__module__": module.__name__,
         "__qualname__": "RingSubprocessTests"})


PATCHES = {
    "pep492": _patch_pep492,
    "runners": _patch_runners,
    "subprocess": _patch_subprocess,
}

_TU = "test_utils.TestCase"   # test.test_asyncio.utils.TestCase, as the modules import it
_UT = "unittest.TestCase"

MODULES: dict[str, Spec] = {s.name: s for s in [
    # --- class B: loop from the default policy / Runner / IsolatedAsyncioTestCase
    Spec("locks", default=True),
    Spec("queues", default=True),
    Spec("taskgroups", default=True),
    Spec("timeouts", default=True),
    Spec("waitfor", default=True),
    Spec("futures2", default=True),
    Spec("context", default=True),
    Spec("threads", default=True),
    Spec("staggered", default=True),
    # BaseTest builds a BaseEventLoop by hand: re-bound by a patch
    Spec("pep492", policy=False, patch="pep492", default=True),

    # --- networking
    Spec("streams", classes=("StreamTests",), default=True),
    Spec("ssl", classes=("TestSSL",), default=True),
    Spec("server", classes=("TestServer2", "UnixServerCleanupTests"),
         mixins=(Mixin("RingStartServerTests", ("BaseStartServer", _UT), "new_loop"),),
         default=True),
    # --- class A: explicit loop through a hook
    Spec("events", policy=False, default=True, mixins=(
        Mixin("RingEventLoopTests",
              ("UnixEventLoopTestsMixin", "SubprocessTestsMixin", _TU),
              "create_event_loop"),)),
    # the loop-core half of test_events (call_soon/call_later/executors/
    # exception handling...), without UnixEventLoopTestsMixin's child watcher
    # (which needs add_signal_handler) and without the subprocess tests
    Spec("events_core", test_module="events", policy=False,
         mixins=(Mixin("RingEventLoopCoreTests", ("EventLoopTestsMixin", _TU),
                       "create_event_loop"),)),
    # SubprocessMixin on a class of its own (see _patch_subprocess)
    Spec("subprocess", policy=False, patch="subprocess", default=True,
         classes=("RingSubprocessTests",)),
    # asyncio.run()/Runner through a TestPolicy whose loops come from a patched
    # BaseTest.new_loop
    Spec("runners", policy=False, patch="runners", default=True),
    Spec("sock_lowlevel", policy=False, default=True, mixins=(
        Mixin("RingSockTests", ("BaseSockTestsMixin", _TU), "create_event_loop"),)),
    Spec("sendfile", policy=False, default=True, mixins=(
        Mixin("RingSendfileTests", ("SendfileTestsBase", _TU), "create_event_loop"),)),
    Spec("sslproto", policy=False, default=True, mixins=(
        Mixin("RingStartTLSTests", ("BaseStartTLS", _UT), "new_loop"),)),
    Spec("buffered_proto", policy=False, default=True, mixins=(
        Mixin("RingBufferedProtocolTests", ("BaseTestBufferedProtocol", _UT),
              "new_loop"),)),
]}

DEFAULT_MODULES = [s.name for s in MODULES.values() if s.default]
