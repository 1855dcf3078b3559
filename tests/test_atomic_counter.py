"""AtomicCounter: striped adds, handles, reset, and counts of dropped handles."""

import gc

import pytest

from atomics import AtomicCounter, CounterHandle
from atomics._native import CELL_SIZE
from conftest import INT64_MAX, INT64_MIN


def test_adds_sum_up():
    c = AtomicCounter()
    c.inc()
    c.add(10)
    c.dec()
    c.add(-3)
    assert c.value() == 7 and int(c) == 7 and repr(c) == "AtomicCounter(7)"


def test_handles_count_into_the_counter():
    c = AtomicCounter()
    h1, h2 = c.handle(), c.handle()
    h1.inc()
    h2.add(5)
    h2.dec()
    c.inc()
    assert isinstance(h1, CounterHandle) and h1.counter is c
    assert c.value() == 6


def test_dropped_handle_keeps_its_count():
    c = AtomicCounter()
    handles = [c.handle() for _ in range(50)]
    for i, h in enumerate(handles):
        h.add(i)
    del h
    del handles[::2]
    gc.collect()
    assert c.value() == sum(range(50))
    handles.clear()
    assert c.value() == sum(range(50))


def test_handle_outlives_its_counter_reference():
    h = AtomicCounter().handle()  # the handle keeps the counter alive
    h.add(3)
    assert h.counter.value() == 3


def test_reset_returns_everything_and_zeroes():
    c = AtomicCounter()
    h = c.handle()
    h.add(4)
    c.add(6)
    dropped = c.handle()
    dropped.add(5)
    del dropped
    assert c.reset() == 15
    assert c.value() == 0
    h.inc()
    assert c.value() == 1


def test_value_wraps_like_int64():
    c = AtomicCounter()
    c.add(INT64_MAX)
    c.handle().add(1)
    assert c.value() == INT64_MIN


@pytest.mark.parametrize("bad", [1.5, "1", 2**63])
def test_bad_deltas_change_nothing(bad):
    c = AtomicCounter()
    h = c.handle()
    with pytest.raises((TypeError, OverflowError), match="delta"):
        c.add(bad)
    with pytest.raises((TypeError, OverflowError), match="delta"):
        h.add(bad)
    assert c.value() == 0


def test_handle_cannot_be_made_directly():
    with pytest.raises(TypeError, match=r"AtomicCounter.handle\(\)"):
        CounterHandle()
    orphan = CounterHandle.__new__(CounterHandle)  # unlinked: harmless, counts nowhere
    orphan.inc()
    assert orphan.counter is None


def test_cells_fill_whole_cache_lines():
    assert CELL_SIZE % 64 == 0
