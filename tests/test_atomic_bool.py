"""AtomicBool: flag operations and Python protocols."""

import copy
import pickle

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
