"""Single-thread cost of one call, ftsync and its peers side by side.

Each round runs the statement 1000 times (unrolled, see ``_timing.py``): in the table, a
round's time in microseconds is nanoseconds per call; extra_info carries ns_per_call_*.
Objects are used the way user code reads, ``obj.method()`` on a local variable.
"""

import itertools
import threading
from typing import Callable, NamedTuple

import pytest

from _peers import LockedInt, cereggii_int64, ft_utils_int64, ours, ours_views
from _timing import GROUP_CAS, GROUP_INC, GROUP_LOAD, GROUP_VIEW, make_loop


class Case(NamedTuple):
    label: str  # "library: what is called"
    key: str | None  # name the summary's ratios look for
    ours: bool
    build: Callable[[], tuple[str, dict]]  # -> (statement, locals); may skip


def params(cases):
    return [pytest.param(c, id=c.label) for c in cases]


INC = [
    Case("ftsync: AtomicInt64.inc()", "ours.inc", True, lambda: ("a.inc()", {"a": ours().AtomicInt64()})),
    Case("ftsync: AtomicInt64 += 1", "ours.iadd", True, lambda: ("a += 1", {"a": ours().AtomicInt64()})),
    Case("ftsync: AtomicCounter.inc()", "ours.counter", True, lambda: ("c.inc()", {"c": ours().AtomicCounter()})),
    Case("ftsync: CounterHandle.inc()", "ours.handle", True, lambda: ("h.inc()", {"h": ours().AtomicCounter().handle()})),
    Case("lock+int: LockedInt.inc()", "lock.inc", False, lambda: ("x.inc()", {"x": LockedInt()})),
    Case(
        "lock+int: with lock: n += 1 (inline)",
        "lock_inline.inc",
        False,
        lambda: ("with lock:\n    n += 1", {"lock": threading.Lock(), "n": 0}),
    ),
    Case("itertools.count: next(c)", "count.next", False, lambda: ("next(c)", {"c": itertools.count()})),
    Case("ft_utils: AtomicInt64.incr()", "atomic_peer.ft_utils.incr", False, lambda: ("a.incr()", {"a": ft_utils_int64()(0)})),
    Case("ft_utils: AtomicInt64 += 1", "atomic_peer.ft_utils.iadd", False, lambda: ("a += 1", {"a": ft_utils_int64()(0)})),
    Case(
        "cereggii: AtomicInt64.increment_and_get()",
        "atomic_peer.cereggii.inc",
        False,
        lambda: ("a.increment_and_get()", {"a": cereggii_int64()(0)}),
    ),
    Case("cereggii: AtomicInt64 += 1", "atomic_peer.cereggii.iadd", False, lambda: ("a += 1", {"a": cereggii_int64()(0)})),
]

LOAD = [
    Case("ftsync: AtomicInt64.load()", "ours.load", True, lambda: ("a.load()", {"a": ours().AtomicInt64()})),
    Case("lock+int: LockedInt.load()", "lock.load", False, lambda: ("x.load()", {"x": LockedInt()})),
    Case("ft_utils: AtomicInt64.get()", "ft_utils.load", False, lambda: ("a.get()", {"a": ft_utils_int64()(0)})),
    Case("cereggii: AtomicInt64.get()", "cereggii.load", False, lambda: ("a.get()", {"a": cereggii_int64()(0)})),
]

# Every CAS succeeds (expected == current == 0, desired 0): a full read-modify-write each call.
CAS = [
    Case(
        "ftsync: AtomicInt64.compare_and_swap(0, 0)",
        "ours.cas",
        True,
        lambda: ("a.compare_and_swap(0, 0)", {"a": ours().AtomicInt64()}),
    ),
    Case(
        "ftsync: Int64View.compare_and_swap(0, 0)",
        "ours.view_cas",
        True,
        lambda: ("v.compare_and_swap(0, 0)", {"v": ours_views().Int64View(bytearray(8))}),
    ),
    Case(
        "cereggii: AtomicInt64.compare_and_set(0, 0)",
        "cereggii.cas",
        False,
        lambda: ("a.compare_and_set(0, 0)", {"a": cereggii_int64()(0)}),
    ),
    Case(
        "lock+int: LockedInt.compare_and_swap(0, 0)",
        "lock.cas",
        False,
        lambda: ("x.compare_and_swap(0, 0)", {"x": LockedInt()}),
    ),
    Case(
        "lock+int: with lock: if n == 0: n = 0 (inline)",
        "lock_inline.cas",
        False,
        lambda: ("with lock:\n    if n == 0:\n        n = 0", {"lock": threading.Lock(), "n": 0}),
    ),
]

VIEW = [
    Case("ftsync: Int64View.inc()", "ours.view_inc", True, lambda: ("v.inc()", {"v": ours_views().Int64View(bytearray(8))})),
    Case(
        "ftsync: Int64ArrayView.inc(0)",
        "ours.array_view_inc",
        True,
        lambda: ("v.inc(0)", {"v": ours_views().Int64ArrayView(bytearray(64))}),
    ),
]


def _run(bench_calls, group, case):
    stmt, names = case.build()
    bench_calls(group, case.label, make_loop(stmt, names), key=case.key, ours=case.ours)


@pytest.mark.parametrize("case", params(INC))
def test_inc(bench_calls, case):
    _run(bench_calls, GROUP_INC, case)


@pytest.mark.parametrize("case", params(LOAD))
def test_load(bench_calls, case):
    _run(bench_calls, GROUP_LOAD, case)


@pytest.mark.parametrize("case", params(CAS))
def test_compare_and_swap(bench_calls, case):
    _run(bench_calls, GROUP_CAS, case)


@pytest.mark.parametrize("case", params(VIEW))
def test_view_inc(bench_calls, case):
    _run(bench_calls, GROUP_VIEW, case)


# The PyPI `atomics` package, timed in its own venv (see conftest.AtomicsPeer).
ATOMICS_PKG = [
    (GROUP_VIEW, "atomics (PyPI): atomicview(INT).inc()", "inc", "atomics_pkg.view_inc"),
    (GROUP_CAS, "atomics (PyPI): atomicview(INT).cmpxchg_strong(0, 0)", "cas", "atomics_pkg.cas"),
    (GROUP_LOAD, "atomics (PyPI): atomicview(INT).load()", "load", "atomics_pkg.load"),
]


@pytest.mark.parametrize(("group", "label", "op", "key"), [pytest.param(*a, id=a[1]) for a in ATOMICS_PKG])
def test_atomics_package(bench_atomics_peer, group, label, op, key):
    bench_atomics_peer(group, label, op, key=key)
