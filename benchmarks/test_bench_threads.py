"""Shared counters under 1 and 2 threads: total increments per second.

Each round: N threads, each K increments (conftest.THREAD_INCREMENTS), started together behind
a barrier; the time runs from the barrier to the last join (thread creation is not timed).
A fresh object per round; extra_info says whether the final total was exact.

Every peer gets its best shape: each thread hoists the bound method (``inc = obj.inc``) into a
local, so no thread touches the shared object's reference count in the loop (on free-threaded
3.13 every LOAD_FAST of a shared object is an atomic refcount write to a contended line).
itertools.count is measured both ways: ``next(c)`` is its fastest form on GIL builds,
the hoisted ``c.__next__`` on free-threaded 3.13.  ftsync's AtomicCounter is measured
through per-thread handles (its intended use) and, for reference, shared.
"""

import itertools
from typing import Callable, NamedTuple

import pytest

from _peers import LockedInt, cereggii_int64, ft_utils_int64, ours
from _timing import GROUP_T1, GROUP_T2


class Case(NamedTuple):
    label: str
    key: str | None  # summary key prefix; ".<threads>" is appended
    ours: bool
    make_shared: Callable[[], Callable[[], object]]  # may skip; -> factory of the shared object
    thread_names: Callable[[object], dict]  # runs in each thread -> the worker's locals
    stmt: str
    total: Callable[[object], int]


def _count_total(c):
    return next(c)


CASES = [
    Case(
        "ftsync: AtomicCounter, per-thread handle.inc()",
        "ours.handles",
        True,
        lambda: ours().AtomicCounter,
        lambda c: {"inc": c.handle().inc},
        "inc()",
        lambda c: c.value(),
    ),
    Case(
        "ftsync: AtomicCounter.inc() (shared)",
        "ours.counter_shared",
        True,
        lambda: ours().AtomicCounter,
        lambda c: {"inc": c.inc},
        "inc()",
        lambda c: c.value(),
    ),
    Case(
        "ftsync: AtomicInt64.inc() (shared)",
        "ours.int64",
        True,
        lambda: ours().AtomicInt64,
        lambda a: {"inc": a.inc},
        "inc()",
        lambda a: a.load(),
    ),
    Case(
        "lock+int: LockedInt.inc()",
        "lock",
        False,
        lambda: LockedInt,
        lambda x: {"inc": x.inc},
        "inc()",
        lambda x: x.load(),
    ),
    Case(
        "itertools.count: next(c) (shared c)",
        "count.next",
        False,
        lambda: itertools.count,
        lambda c: {"c": c},
        "next(c)",
        _count_total,
    ),
    Case(
        "itertools.count: c.__next__() (hoisted)",
        "count",
        False,
        lambda: itertools.count,
        lambda c: {"inc": c.__next__},
        "inc()",
        _count_total,
    ),
    Case(
        "ft_utils: AtomicInt64.incr()",
        "ft_utils",
        False,
        lambda: ft_utils_int64(),
        lambda a: {"inc": a.incr},
        "inc()",
        lambda a: a.get(),
    ),
    Case(
        "cereggii: AtomicInt64.increment_and_get()",
        "cereggii",
        False,
        lambda: cereggii_int64(),
        lambda a: {"inc": a.increment_and_get},
        "inc()",
        lambda a: a.get(),
    ),
    Case(
        "cereggii: AtomicInt64, per-thread get_handle().increment_and_get()",
        "cereggii.handles",
        False,
        lambda: cereggii_int64(),
        lambda a: {"inc": a.get_handle().increment_and_get},
        "inc()",
        lambda a: a.get(),
    ),
]


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.label) for c in CASES])
def test_counter_threads(bench_threads, case, nthreads):
    factory = case.make_shared()
    bench_threads(
        GROUP_T1 if nthreads == 1 else GROUP_T2,
        case.label,
        nthreads,
        factory,
        case.thread_names,
        case.stmt,
        case.total,
        key=f"{case.key}.{nthreads}",
        ours=case.ours,
    )
