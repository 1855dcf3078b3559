"""Property tests: every atomic, driven by hypothesis, against a plain Python model.

One state machine runs the same operations on AtomicInt64, on an Int64View over a bytearray
and on one element of an Int64ArrayView (where cffi is available), and on AtomicBool; after
every step the atomic must equal the model.  Values lean towards the int64 edges, where
wrap-around happens.
"""

import functools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atomics import AtomicBool, AtomicInt64
from conftest import INT64_MAX, INT64_MIN, stress_rounds, wrap64

EDGES = [INT64_MIN, INT64_MIN + 1, -2, -1, 0, 1, 2, INT64_MAX - 1, INT64_MAX]
int64s = st.sampled_from(EDGES) | st.integers(INT64_MIN, INT64_MAX)
bad_values = st.sampled_from([2**63, -(2**63) - 1, 2**100, 1.0, "1", None, b"\x01"])

try:
    from atomics.views import Int64ArrayView, Int64View
except ImportError:  # free-threaded 3.13: tested in test_views.py
    Int64View = Int64ArrayView = None


class ArrayElement:
    """Element 2 of an Int64ArrayView, with the single-value method set (index bound)."""

    def __init__(self, value):
        self.array = Int64ArrayView(bytearray(8 * 4))
        self.array.store(2, value)

    def __getattr__(self, name):
        return functools.partial(getattr(self.array, name), 2)


def _factories():
    yield pytest.param(AtomicInt64, id="AtomicInt64")
    views_missing = pytest.mark.skipif(Int64View is None, reason="cffi is unavailable on this interpreter")
    yield pytest.param(lambda v: _view(v), id="Int64View", marks=views_missing)
    yield pytest.param(ArrayElement, id="Int64ArrayView", marks=views_missing)


def _view(value):
    view = Int64View(bytearray(24), 8)
    view.store(value)
    return view


class Int64Machine(RuleBasedStateMachine):
    make = AtomicInt64

    def __init__(self):
        super().__init__()
        self.model = 0
        self.atomic = type(self).make(0)

    @rule(v=int64s)
    def store(self, v):
        self.atomic.store(v)
        self.model = v

    @rule()
    def load(self):
        assert self.atomic.load() == self.model

    @rule(v=int64s)
    def exchange(self, v):
        assert self.atomic.exchange(v) == self.model
        self.model = v

    @rule(d=int64s, name=st.sampled_from(["add", "sub", "fetch_add", "fetch_sub"]))
    def arithmetic(self, d, name):
        new = wrap64(self.model + d if "add" in name else self.model - d)
        expected = self.model if name.startswith("fetch") else new
        assert getattr(self.atomic, name)(d) == expected
        self.model = new

    @rule(name=st.sampled_from(["inc", "dec"]))
    def step(self, name):
        self.model = wrap64(self.model + (1 if name == "inc" else -1))
        assert getattr(self.atomic, name)() == self.model

    @rule(m=int64s, name=st.sampled_from(["fetch_and", "fetch_or", "fetch_xor", "fetch_max", "fetch_min"]))
    def bitwise_and_extrema(self, m, name):
        fn = {"fetch_and": int.__and__, "fetch_or": int.__or__, "fetch_xor": int.__xor__,
              "fetch_max": max, "fetch_min": min}[name]
        assert getattr(self.atomic, name)(m) == self.model
        self.model = fn(self.model, m)

    @rule(desired=int64s, hit=st.booleans(), other=int64s)
    def compare_and_swap(self, desired, hit, other):
        expected = self.model if hit else other
        swapped = expected == self.model
        assert self.atomic.compare_and_swap(expected, desired) is swapped
        if swapped:
            self.model = desired

    @rule(desired=int64s, hit=st.booleans(), other=int64s)
    def compare_exchange(self, desired, hit, other):
        expected = self.model if hit else other
        swapped = expected == self.model
        assert self.atomic.compare_exchange(expected, desired) == (swapped, self.model)
        if swapped:
            self.model = desired

    @rule(k=int64s)
    def update(self, k):
        self.model = wrap64(self.model * 3 + k)
        assert self.atomic.update(lambda v: wrap64(v * 3 + k)) == self.model

    @rule(bad=bad_values, name=st.sampled_from(["store", "add", "fetch_or", "fetch_max", "exchange"]))
    def bad_input_changes_nothing(self, bad, name):
        with pytest.raises((TypeError, OverflowError)):
            getattr(self.atomic, name)(bad)

    @precondition(lambda self: isinstance(self.atomic, (AtomicInt64,) + ((Int64View,) if Int64View else ())))
    @rule(d=int64s)
    def inplace_add(self, d):
        before = self.atomic
        self.atomic += d
        assert self.atomic is before
        self.model = wrap64(self.model + d)

    @invariant()
    def matches_model(self):
        assert self.atomic.load() == self.model


@pytest.mark.parametrize("make", list(_factories()))
def test_int64_matches_model(make):
    machine = type("Machine", (Int64Machine,), {"make": staticmethod(make)})
    machine.TestCase.settings = settings(max_examples=stress_rounds(150), stateful_step_count=40, deadline=None)
    machine.TestCase().runTest()


class BoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.model = False
        self.atomic = AtomicBool()

    @rule(v=st.booleans())
    def store(self, v):
        self.atomic.store(v)
        self.model = v

    @rule(v=st.booleans())
    def exchange(self, v):
        assert self.atomic.exchange(v) is self.model
        self.model = v

    @rule(expected=st.booleans(), desired=st.booleans())
    def compare_and_swap(self, expected, desired):
        swapped = expected == self.model
        assert self.atomic.compare_and_swap(expected, desired) is swapped
        if swapped:
            self.model = desired

    @rule()
    def test_and_set(self):
        assert self.atomic.test_and_set() is self.model
        self.model = True

    @rule()
    def clear(self):
        self.atomic.clear()
        self.model = False

    @invariant()
    def matches_model(self):
        assert self.atomic.load() is self.model and bool(self.atomic) is self.model


TestAtomicBoolMatchesModel = BoolMachine.TestCase
TestAtomicBoolMatchesModel.settings = settings(max_examples=stress_rounds(100), stateful_step_count=30, deadline=None)
