"""AtomicInt64: every method's result, the Python protocols, and refusal of bad input."""

import copy
import operator
import pickle

import pytest

from atomics import AtomicInt64
from conftest import INT64_MAX, INT64_MIN


class Three:
    """Not an int, but usable as one through __index__."""

    def __index__(self):
        return 3


def test_default_and_initial_value():
    assert AtomicInt64().load() == 0
    assert AtomicInt64(-7).load() == -7
    assert AtomicInt64(Three()).load() == 3
    assert AtomicInt64(value=INT64_MIN).load() == INT64_MIN


def test_read_modify_write_results():
    a = AtomicInt64(10)
    assert a.add(5) == 15
    assert a.sub(3) == 12
    assert a.inc() == 13
    assert a.dec() == 12
    assert a.fetch_add(8) == 12 and a.load() == 20
    assert a.fetch_sub(5) == 20 and a.load() == 15
    assert a.exchange(0b1100) == 15 and a.load() == 0b1100
    assert a.fetch_and(0b1010) == 0b1100 and a.load() == 0b1000
    assert a.fetch_or(0b0011) == 0b1000 and a.load() == 0b1011
    assert a.fetch_xor(0b1111) == 0b1011 and a.load() == 0b0100
    assert a.fetch_max(9) == 4 and a.load() == 9
    assert a.fetch_max(2) == 9 and a.load() == 9
    assert a.fetch_min(20) == 9 and a.load() == 9
    assert a.fetch_min(-1) == 9 and a.load() == -1
    a.store(42)
    assert a.load() == 42


def test_compare_and_swap_and_exchange():
    a = AtomicInt64(1)
    assert a.compare_and_swap(2, 3) is False and a.load() == 1
    assert a.compare_and_swap(1, 3) is True and a.load() == 3
    assert a.compare_exchange(0, 9) == (False, 3)
    assert a.compare_exchange(3, 9) == (True, 3)
    assert a.load() == 9


def test_update_applies_function_and_returns_new_value():
    a = AtomicInt64(6)
    assert a.update(lambda v: v * 7) == 42
    assert a.load() == 42


def test_update_leaves_value_when_function_fails():
    a = AtomicInt64(6)
    with pytest.raises(ZeroDivisionError):
        a.update(lambda v: v // 0)
    with pytest.raises(OverflowError, match=r"fn\(value\)="):
        a.update(lambda v: 2**64)
    with pytest.raises(TypeError, match=r"fn\(value\) must be an integer, not str"):
        a.update(lambda v: "seven")
    assert a.load() == 6


@pytest.mark.parametrize(
    ("start", "method", "args", "result", "after"),
    [
        (INT64_MAX, "inc", (), INT64_MIN, INT64_MIN),
        (INT64_MIN, "dec", (), INT64_MAX, INT64_MAX),
        (INT64_MAX, "add", (INT64_MAX,), -2, -2),
        (INT64_MIN, "sub", (1,), INT64_MAX, INT64_MAX),
        (INT64_MAX, "fetch_add", (1,), INT64_MAX, INT64_MIN),
        (INT64_MIN, "fetch_sub", (INT64_MAX,), INT64_MIN, 1),
    ],
)
def test_arithmetic_wraps_like_go(start, method, args, result, after):
    a = AtomicInt64(start)
    assert getattr(a, method)(*args) == result
    assert a.load() == after


BAD_ARGUMENTS = [
    (1.5, TypeError, "must be an integer, not float"),
    ("7", TypeError, "must be an integer, not str"),
    (None, TypeError, "must be an integer, not NoneType"),
    (2**63, OverflowError, "outside the int64 range"),
    (-(2**63) - 1, OverflowError, "outside the int64 range"),
]

ONE_ARGUMENT = ["store", "exchange", "add", "sub", "fetch_add", "fetch_sub", "fetch_and",
                "fetch_or", "fetch_xor", "fetch_max", "fetch_min"]


@pytest.mark.parametrize("method", ONE_ARGUMENT)
@pytest.mark.parametrize(("bad", "error", "message"), BAD_ARGUMENTS)
def test_bad_argument_raises_and_changes_nothing(method, bad, error, message):
    a = AtomicInt64(5)
    with pytest.raises(error, match=message):
        getattr(a, method)(bad)
    assert a.load() == 5


@pytest.mark.parametrize(("bad", "error", "message"), BAD_ARGUMENTS)
def test_bad_compare_and_swap_arguments_change_nothing(bad, error, message):
    a = AtomicInt64(5)
    with pytest.raises(error, match=f"expected {message}|expected={bad}"):
        a.compare_and_swap(bad, 1)
    with pytest.raises(error, match=f"desired {message}|desired={bad}"):
        a.compare_exchange(5, bad)
    assert a.load() == 5


@pytest.mark.parametrize(("bad", "error", "message"), BAD_ARGUMENTS)
def test_bad_initial_value(bad, error, message):
    with pytest.raises(error, match=message):
        AtomicInt64(bad)


@pytest.mark.parametrize("op", [operator.iadd, operator.isub, operator.iand, operator.ior, operator.ixor])
def test_bad_inplace_operand_changes_nothing(op):
    a = AtomicInt64(5)
    with pytest.raises(TypeError):
        op(a, 1.0)
    with pytest.raises(OverflowError):
        op(a, 2**70)
    assert a.load() == 5


def test_index_objects_accepted_everywhere():
    a = AtomicInt64(1)
    assert a.add(Three()) == 4
    assert a.compare_and_swap(Three(), 0) is False
    assert a.compare_and_swap(4, Three()) is True and a.load() == 3


def test_inplace_operators_are_atomic_and_return_self():
    a = AtomicInt64(5)
    same = a
    a += 10
    assert a is same and a.load() == 15
    a -= 5
    assert a is same and a.load() == 10
    a &= 0b0110
    assert a.load() == 0b0010
    a |= 0b1000
    assert a.load() == 0b1010
    a ^= 0b1111
    assert a is same and a.load() == 0b0101


def test_number_protocols():
    a = AtomicInt64(5)
    assert int(a) == 5 and operator.index(a) == 5
    assert [10, 11, 12, 13, 14, 15][a] == 15
    assert bool(a) and not bool(AtomicInt64(0))
    assert repr(a) == "AtomicInt64(5)" and repr(AtomicInt64(-3)) == "AtomicInt64(-3)"


def test_comparisons_with_ints_and_atomics():
    a = AtomicInt64(5)
    assert a == 5 and 5 == a and a != 6
    assert a < 6 and a <= 5 and a > 4 and a >= 5
    assert a == AtomicInt64(5) and a < AtomicInt64(6)
    assert a < 2**70  # compares as Python ints, no overflow
    assert (a == "5") is False and a != 5.5
    with pytest.raises(TypeError):
        a < "6"  # noqa: B015


def test_comparisons_with_floats_and_other_numbers_follow_int():
    from fractions import Fraction

    a = AtomicInt64(5)
    assert a == 5.0 and 5.0 == a and a < 5.5 and a > 4.5
    assert a == Fraction(5) and a < Fraction(11, 2)
    assert (a == 5.5) is False


def test_format_reads_like_an_int():
    a = AtomicInt64(255)
    assert format(a, "d") == "255" and format(a, "x") == "ff" and f"{a:>6}" == "   255"
    assert f"{a}" == "255" and format(a, "") == "255"
    assert f"{AtomicInt64(-1234567):,}" == "-1,234,567"
    with pytest.raises(ValueError):
        format(a, "q")


def test_weak_reference():
    import weakref

    a = AtomicInt64(1)
    ref = weakref.ref(a)
    assert ref() is a
    del a
    import gc

    gc.collect()
    assert ref() is None


def test_unhashable():
    with pytest.raises(TypeError, match="unhashable"):
        hash(AtomicInt64(1))


def test_pickle_and_copy_take_the_current_value():
    a = AtomicInt64(7)
    a.inc()
    for other in (pickle.loads(pickle.dumps(a)), copy.copy(a), copy.deepcopy(a)):
        assert type(other) is AtomicInt64 and other.load() == 8 and other is not a
        other.inc()
        assert a.load() == 8


def test_subclass_keeps_its_type_through_copy():
    class Named(AtomicInt64):
        pass

    n = Named(3)
    assert repr(n) == "Named(3)"
    assert type(copy.copy(n)) is Named and copy.copy(n).load() == 3
