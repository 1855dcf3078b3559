"""AtomicCounter: striped adds, handles, reset, and counts of dropped handles."""

import copy
import gc
import operator
import pickle
import weakref

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


def test_initial_value():
    assert AtomicCounter().value() == 0
    c = AtomicCounter(100)
    c.inc()
    c.handle().add(5)
    assert c.value() == 106 and AtomicCounter(value=-3).value() == -3
    assert c.reset() == 106 and c.value() == 0


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((100,), {"start": 5}, TypeError, "start"),
        ((1, 2), {}, TypeError, "positional argument"),
        (("5",), {}, TypeError, "value must be an integer, not str"),
        ((2**63,), {}, OverflowError, "value="),
    ],
)
def test_bad_constructor_arguments_are_rejected(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        AtomicCounter(*args, **kwargs)


def test_behaves_like_the_int_it_holds():
    c = AtomicCounter(41)
    c.inc()
    assert int(c) == 42 and operator.index(c) == 42 and bool(c) and not AtomicCounter()
    assert c == 42 and 42 == c and c != 41 and c < 43 and c >= 42 and c == 42.0
    assert format(c, "d") == "42" and f"{c:04}" == "0042" and f"{c}" == "42"
    assert repr(c) == "AtomicCounter(42)"
    with pytest.raises(TypeError, match="unhashable"):
        hash(c)


def test_pickle_and_copy_take_the_current_value():
    c = AtomicCounter()
    c.add(9)
    for other in (pickle.loads(pickle.dumps(c)), copy.copy(c), copy.deepcopy(c)):
        assert type(other) is AtomicCounter and other.value() == 9 and other is not c
        other.inc()
        assert c.value() == 9


def test_weak_reference():
    c = AtomicCounter()
    ref = weakref.ref(c)
    assert ref() is c
    del c
    gc.collect()
    assert ref() is None
