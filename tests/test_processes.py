"""Several processes increment one Int64ArrayView over SharedMemory: the total is exact."""

import multiprocessing
import sys
import sysconfig

import pytest

pytestmark = pytest.mark.skipif(
    bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and sys.version_info < (3, 14),
    reason="atomics.views needs cffi, which free-threaded 3.13 lacks",
)

PROCESSES = 4
INCREMENTS = 200_000


def _increment(name, slot, count, start):
    from multiprocessing import shared_memory

    from atomics.views import Int64ArrayView

    shm = shared_memory.SharedMemory(name=name)
    try:
        arr = Int64ArrayView(shm.buf)
        start.wait()
        view = arr.view(slot)  # the single-element view is the fast path
        for i in range(count):
            if i % 2:
                view.inc()
            else:
                arr.fetch_add(slot, 1)
        arr.fetch_max(slot + 1, count)
        del arr, view
    finally:
        shm.close()


def test_processes_share_exact_counts():
    from multiprocessing import shared_memory

    from atomics.views import Int64ArrayView

    ctx = multiprocessing.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        start = ctx.Event()
        workers = [ctx.Process(target=_increment, args=(shm.name, 3, INCREMENTS, start))
                   for _ in range(PROCESSES)]
        for w in workers:
            w.start()
        start.set()
        for w in workers:
            w.join(timeout=300)
        assert [w.exitcode for w in workers] == [0] * PROCESSES
        arr = Int64ArrayView(shm.buf)
        assert arr[3] == PROCESSES * INCREMENTS
        assert arr[4] == INCREMENTS
        assert sum(arr) == PROCESSES * INCREMENTS + INCREMENTS
        del arr
    finally:
        shm.close()
        shm.unlink()
