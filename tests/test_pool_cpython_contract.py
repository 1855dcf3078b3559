"""CPython's own concurrent.futures tests for ThreadPoolExecutor, run against WorkerPool.

The tests come from the test package of the interpreter under test:
``test.test_concurrent_futures`` (a package from 3.12 on; the free-threaded 3.13t that
``make test`` builds installs it).  Where the interpreter was installed without it (pyenv's
and Debian's 3.11 here), ``make cpython-tests`` unpacks the same interpreter line's test
module from Debian's ``libpython3.11-testsuite`` into ``~/.cache/ftsync`` (the path can be
given in ``FTSYNC_CPYTHON_FUTURES_TESTS``) and it is loaded from there.  A missing test module
is an error, not a skip.

What changes, and only that: the modules' ``futures`` name is ``concurrent.futures`` with
``ThreadPoolExecutor`` replaced by a factory that builds a WorkerPool (``max_workers`` ->
``workers``, ``thread_name_prefix`` -> ``name``), and ``Future`` is ``patterns.Future``.  Every
ThreadPool test class (the executor, wait, as_completed, shutdown, initializer and deadlock
suites; the thread-pool-only tests) and ``FutureTests`` run with that, assertions untouched.

Not run, each for a stated reason:

- the two documented differences: thread names (``WorkerPool-N_k``, not
  ``ThreadPoolExecutor-N_k``) and the parameter name in the ``max_workers`` error message
  (WorkerPool's is ``workers``; tests/test_pool.py checks that message);
- the tests that start a subprocess running ``from concurrent.futures import
  ThreadPoolExecutor``: they test the stdlib class whatever the executor under test is
  (tests/test_pool_process.py runs those scenarios on WorkerPool).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
import unittest
from concurrent import futures as _stdlib_futures
from pathlib import Path

import pytest

from patterns import Future, WorkerPool

# -- where CPython's tests are

_DEBIAN_311 = Path.home() / ".cache/ftsync/python3.11-testsuite/usr/lib/python3.11/test/test_concurrent_futures.py"
_HINT = (
    "CPython's test.test_concurrent_futures is not installed for this interpreter: run "
    "`make cpython-tests` (unpacks Debian's libpython3.11-testsuite into ~/.cache/ftsync) or set "
    "FTSYNC_CPYTHON_FUTURES_TESTS to the path of test_concurrent_futures.py"
)


def _load_modules() -> list[types.ModuleType]:
    """CPython's concurrent.futures test modules for this interpreter (package or single file)."""
    given = os.environ.get("FTSYNC_CPYTHON_FUTURES_TESTS")
    if not given:
        try:
            package = importlib.import_module("test.test_concurrent_futures")
        except ImportError:
            package = None
        if package is not None:
            if not hasattr(package, "__path__"):  # 3.11 and older: one module
                return [package]
            names = ["util", "executor", "test_thread_pool", "test_wait", "test_as_completed",
                     "test_shutdown", "test_deadlock", "test_future", "test_init"]
            return [importlib.import_module(f"test.test_concurrent_futures.{n}") for n in names]
    path = Path(given) if given else _DEBIAN_311
    if sys.version_info[:2] != (3, 11) and not given:
        raise RuntimeError(_HINT)
    if not path.is_file():
        raise RuntimeError(f"{_HINT} (looked for {path})")
    import test.support  # noqa: F401 - the interpreter's own support package, which the module uses

    spec = importlib.util.spec_from_file_location("test.test_concurrent_futures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return [module]


pytestmark = pytest.mark.slow  # about a minute; wheel builders (no test package there) leave it out

try:
    MODULES = _load_modules()
    MISSING = None
except RuntimeError as exc:  # reported by the test below, as a failure
    MODULES, MISSING = [], str(exc)


# -- the one change: which executor and Future classes the tests use


def worker_pool(max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
    """ThreadPoolExecutor's constructor signature, building a WorkerPool."""
    return WorkerPool(max_workers, name=thread_name_prefix or None,
                      initializer=initializer, initargs=initargs)


worker_pool.__name__ = worker_pool.__qualname__ = "WorkerPool"


class _FuturesWithWorkerPool(types.ModuleType):
    """``concurrent.futures`` as the tests see it: WorkerPool and patterns.Future swapped in."""

    ThreadPoolExecutor = staticmethod(worker_pool)
    Future = Future

    def __getattr__(self, name):
        return getattr(_stdlib_futures, name)


_FUTURES = _FuturesWithWorkerPool("concurrent.futures")
for _module in MODULES:
    if getattr(_module, "futures", None) is _stdlib_futures:
        _module.futures = _FUTURES
    if getattr(_module, "Future", None) is _stdlib_futures.Future:
        _module.Future = Future


# -- which tests


#: The two differences that stay (see the module docstring and README).
DOCUMENTED_DIFFERENCES = {
    "test_thread_names_assigned": "thread names are WorkerPool-N_k",
    "test_thread_names_default": "thread names are WorkerPool-N_k",
    "test_max_workers_negative": "the parameter is called workers",
}
#: Tests that do not exercise the executor under test.
NOT_OURS = {
    "test_interpreter_shutdown": "a subprocess imports the stdlib ThreadPoolExecutor",
    "test_hang_gh83386": "a subprocess imports the stdlib ThreadPoolExecutor",
    "test_submit_after_interpreter_shutdown": "a subprocess imports the stdlib ThreadPoolExecutor",
    "test_cancel_futures_wait_false": "(3.11) a subprocess imports the stdlib ThreadPoolExecutor",
}
LEFT_OUT = {**DOCUMENTED_DIFFERENCES, **NOT_OURS}


_THREAD_POOL_MIXIN = next((m.ThreadPoolMixin for m in MODULES if hasattr(m, "ThreadPoolMixin")), None)


def _is_thread_pool_case(cls) -> bool:
    if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
        return False
    return cls.__name__ == "FutureTests" or (_THREAD_POOL_MIXIN is not None and issubclass(cls, _THREAD_POOL_MIXIN))


def _adapted(cls):
    namespace = {"__module__": __name__, "__qualname__": f"WorkerPool{cls.__name__}"}
    if hasattr(cls, "executor_type"):
        namespace["executor_type"] = staticmethod(worker_pool)
    for name in dir(cls):
        if name in LEFT_OUT:
            namespace[name] = None  # not collected
    return type(f"WorkerPool{cls.__name__}", (cls,), namespace)


ADAPTED = {}
for _module in MODULES:
    for _value in list(vars(_module).values()):
        if _is_thread_pool_case(_value) and _value.__module__ == _module.__name__:
            ADAPTED[f"WorkerPool{_value.__name__}"] = _adapted(_value)
globals().update(ADAPTED)


@pytest.fixture(autouse=True)
def _futures_logger_reaches_stderr():
    """As under unittest's runner: a callback's error is logged to stderr (pytest's log
    capture would otherwise take the record before ``support.captured_stderr`` sees it)."""
    logger = logging.getLogger("concurrent.futures")
    before = logger.propagate
    to_stderr = logging._StderrHandler()  # unittest's case: logging's last resort, sys.stderr at emit time
    logger.addHandler(to_stderr)
    logger.propagate = False
    yield
    logger.propagate = before
    logger.removeHandler(to_stderr)


def test_the_thread_pool_suites_were_found():
    """The module found CPython's tests: the executor, wait, as_completed, shutdown and Future suites."""
    assert MISSING is None, MISSING
    names = set(ADAPTED)
    for suite in ("ThreadPoolExecutorTest", "ThreadPoolWaitTests", "ThreadPoolShutdownTest", "FutureTests"):
        assert f"WorkerPool{suite}" in names, sorted(names)
    assert any("AsCompleted" in name for name in names), sorted(names)
    assert any("FailingInitializer" in name for name in names), sorted(names)
