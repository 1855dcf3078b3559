"""CPython's own concurrent.futures executor tests, run against WorkerPool.

The interpreter's test package (``test.test_concurrent_futures``, installed by a CPython
``make install``, as the free-threaded 3.13t that ``make test`` builds) holds the tests that
ThreadPoolExecutor passes: submit, map, timeouts, wait(), as_completed(), shutdown.  They run
here with WorkerPool as the executor.  Interpreters whose test package was left out (Debian's
and pyenv's 3.11 here) skip this module; tests/test_pool.py covers the same contract there.

Left out, because they name the stdlib class rather than test behaviour: the three shutdown
tests that run a subprocess doing ``from concurrent.futures import <executor class>``
(tests/test_pool_process.py runs the same scenarios on WorkerPool), and the check of the
stdlib's "max_workers must be greater than 0" wording (WorkerPool's parameter is
``workers``; tests/test_pool.py checks its message).
"""

import threading

import pytest

from patterns import WorkerPool

cpython = pytest.importorskip(
    "test.test_concurrent_futures.util",
    reason="this interpreter was installed without CPython's test package",
)
from test.test_concurrent_futures import executor, test_as_completed, test_shutdown, test_wait  # noqa: E402

NOT_APPLICABLE = {
    "test_hang_gh83386", "test_interpreter_shutdown", "test_submit_after_interpreter_shutdown",
    "test_max_workers_negative",
}


def worker_pool(max_workers=None, **kwargs):
    return WorkerPool(max_workers or 5)


class _OnWorkerPool(cpython.ExecutorMixin):
    executor_type = staticmethod(worker_pool)

    def create_event(self):
        return threading.Event()


def _adapted(base):
    namespace = {name: None for name in dir(base) if name in NOT_APPLICABLE}
    return type(f"WorkerPool{base.__name__}", (_OnWorkerPool, base, cpython.BaseTestCase), namespace)


WorkerPoolExecutorTest = _adapted(executor.ExecutorTest)
WorkerPoolAsCompletedTests = _adapted(test_as_completed.AsCompletedTests)
WorkerPoolWaitTests = _adapted(test_wait.WaitTests)
WorkerPoolShutdownTest = _adapted(test_shutdown.ExecutorShutdownTest)
