"""AtomicBool: flag operations and Python protocols."""

import copy
import gc
import operator
import pickle
import weakref

import pytest

from atomics import AtomicBool


def test_default_false_and_initial_truth_value():
    assert AtomicBool().load() is False
    assert AtomicBool(True).load() is True
    assert AtomicBool(1).load() is True and AtomicBool([]).load() is False


def test_store_exchange_and_compare_and_swap():
    b = AtomicBool()
    b.store(True)
    assert b.load() is True
    assert b.exchange(False) is True and b.load() is False
    assert b.compare_and_swap(True, True) is False and b.load() is False
    assert b.compare_and_swap(False, True) is True and b.load() is True


def test_test_and_set_and_clear():
    b = AtomicBool()
    assert b.test_and_set() is False  # we set it
    assert b.test_and_set() is True  # already set
    b.clear()
    assert b.load() is False and not b


def test_protocols():
    b = AtomicBool(True)
    assert bool(b) and repr(b) == "AtomicBool(True)"
    assert pickle.loads(pickle.dumps(b)).load() is True
    c = copy.copy(b)
    c.clear()
    assert b.load() is True


def test_compares_like_the_bool_it_holds():
    t, f = AtomicBool(True), AtomicBool(False)
    assert t == True and True == t and t != False  # noqa: E712
    assert f == False and f != True  # noqa: E712
    assert t == 1 and f == 0 and t == 1.0  # as True == 1
    assert t == AtomicBool(True) and t != f
    assert f < t and t > 0 and t >= 1 and f <= 0  # bool orders as int
    assert (t == "True") is False
    with pytest.raises(TypeError):
        t < "x"  # noqa: B015


def test_number_protocols_and_format():
    t, f = AtomicBool(True), AtomicBool(False)
    assert int(t) == 1 and int(f) == 0 and operator.index(t) == 1
    assert ["no", "yes"][t] == "yes"
    assert format(t, "d") == "1" and format(f, "") == "False" and f"{t}" == "True"
    assert f"{t:>6}" == format(True, ">6") == "     1"  # bool formats as int with a spec
    assert repr(t) == "AtomicBool(True)"


def test_unhashable_and_weakly_referenceable():
    with pytest.raises(TypeError, match="unhashable"):
        hash(AtomicBool(True))
    b = AtomicBool()
    ref = weakref.ref(b)
    assert ref() is b
    del b
    gc.collect()
    assert ref() is None
