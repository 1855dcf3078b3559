"""Atomic int64 operations on memory you already have: any writable buffer.

``Int64View(buffer, offset)`` is one atomic int64 inside a bytearray, mmap,
``multiprocessing.shared_memory.SharedMemory.buf`` or numpy array; ``Int64ArrayView(buffer)``
is every aligned int64 of it.  Processes that map the same memory share the atomics: a
counter in shared memory needs no lock and no server.  Both carry the AtomicInt64 method set,
each method with an optional ``order=`` keyword taking :class:`atomics.MemoryOrder`
(sequentially consistent by default); orders C11 forbids for an operation raise ValueError.

A view holds the buffer's export for its whole life, so the buffer cannot be resized, closed
or freed under it (``SharedMemory.close()`` raises BufferError until the views are dropped).

The calls go through cffi (``atomics._cffi``).  cffi does not install on free-threaded
Python 3.13, so there this module raises ImportError; the rest of :mod:`atomics` works.
"""

import operator
import sys
import sysconfig
from operator import index as _index

from ._memory_order import MemoryOrder
from ._native import AtomicInt64

try:
    from ._cffi import ffi as _ffi
    from ._cffi import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    if sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 14):
        raise ImportError(
            "atomics.views is unavailable on free-threaded Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: it is built with cffi, and cffi "
            "supports free threading only from Python 3.14t. AtomicInt64, AtomicBool and "
            "AtomicCounter from atomics work here."
        ) from exc
    raise ImportError(f"atomics.views needs the compiled module atomics._cffi: {exc}") from exc

__all__ = ["Int64ArrayView", "Int64View"]

# Which orders each kind of operation accepts, asked of the C core itself (one truth).
_LOAD = frozenset(o for o in MemoryOrder if _lib.ftsync_load_order_valid(o))
_STORE = frozenset(o for o in MemoryOrder if _lib.ftsync_store_order_valid(o))
_RMW = frozenset(o for o in MemoryOrder if _lib.ftsync_rmw_order_valid(o))
_SEQ_CST = int(MemoryOrder.SEQ_CST)

_load = _lib.ftsync_addr_load
_cas = _lib.ftsync_addr_compare_exchange
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _order(order, allowed, operation):
    """The C order number for ``order=`` of ``operation``, or TypeError/ValueError."""
    if order is None:
        return _SEQ_CST
    if not isinstance(order, MemoryOrder):
        raise TypeError(f"order must be an atomics.MemoryOrder or None, got {order!r}")
    if order not in allowed:
        names = ", ".join(o.name for o in sorted(allowed))
        raise ValueError(f"order=MemoryOrder.{order.name} is not allowed for {operation}; allowed: {names}")
    return int(order)


def _cas_orders(order, failure):
    """(success, failure) order numbers for a compare-exchange."""
    success = _order(order, _RMW, "compare_exchange")
    if failure is None:
        return success, _lib.ftsync_cas_failure_order(success)
    failure = _order(failure, _LOAD, "the failure of compare_exchange")
    if not _lib.ftsync_cas_orders_valid(success, failure):
        raise ValueError(
            f"failure=MemoryOrder.{MemoryOrder(failure).name} is stronger than "
            f"order=MemoryOrder.{MemoryOrder(success).name}"
        )
    return success, failure


def _int64(value, name):
    """``value`` as an int64, with the exceptions and messages AtomicInt64 gives."""
    if not isinstance(value, int):
        if not hasattr(type(value), "__index__"):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
        value = _index(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"{name}={value} is outside the int64 range [-2**63, 2**63 - 1]")
    return value


def _cas_at(base, i, expected, desired, order, failure):
    """Strong CAS of element ``i``: ``(swapped, witnessed)``; arguments checked before the C call."""
    expected = _int64(expected, "expected")
    desired = _int64(desired, "desired")
    witnessed = _cas(base, i, expected, desired, *_cas_orders(order, failure))
    return witnessed == expected, witnessed


def _update_at(base, i, fn, order):
    """CAS loop behind update(): ``fn`` may run more than once."""
    success, failure = _cas_orders(order, None)
    seen = _load(base, i, failure)
    while True:
        desired = _int64(fn(seen), "fn(value)")
        witnessed = _cas(base, i, seen, desired, success, failure)
        if witnessed == seen:
            return desired
        seen = witnessed


# The single-value operations: name -> (C function, orders allowed, argument name or a fixed
# argument, docstring).  Both views build their methods from this table, so the two can
# never drift apart.  cffi converts plain ints itself (the fast path); anything it refuses is
# converted by _int64, which accepts __index__ objects and names the argument in errors.
_OPS = {
    "store": (_lib.ftsync_addr_store, _STORE, "value", "Set the value."),
    "exchange": (_lib.ftsync_addr_exchange, _RMW, "value", "Set the value and return the previous one."),
    "add": (_lib.ftsync_addr_add, _RMW, "delta", "Add ``delta`` and return the new value."),
    "sub": (_lib.ftsync_addr_sub, _RMW, "delta", "Subtract ``delta`` and return the new value."),
    "inc": (_lib.ftsync_addr_add, _RMW, 1, "Add one and return the new value."),
    "dec": (_lib.ftsync_addr_sub, _RMW, 1, "Subtract one and return the new value."),
    "fetch_add": (_lib.ftsync_addr_fetch_add, _RMW, "delta", "Add ``delta`` and return the previous value."),
    "fetch_sub": (_lib.ftsync_addr_fetch_sub, _RMW, "delta", "Subtract ``delta`` and return the previous value."),
    "fetch_and": (_lib.ftsync_addr_fetch_and, _RMW, "mask", "Bitwise-and with ``mask``; return the previous value."),
    "fetch_or": (_lib.ftsync_addr_fetch_or, _RMW, "mask", "Bitwise-or with ``mask``; return the previous value."),
    "fetch_xor": (_lib.ftsync_addr_fetch_xor, _RMW, "mask", "Bitwise-xor with ``mask``; return the previous value."),
    "fetch_max": (_lib.ftsync_addr_fetch_max, _RMW, "value", "Set ``max(current, value)``; return the previous value."),
    "fetch_min": (_lib.ftsync_addr_fetch_min, _RMW, "value", "Set ``min(current, value)``; return the previous value."),
}

#: In-place operators and the operation each performs (they return the view itself).
_INPLACE = {"__iadd__": "fetch_add", "__isub__": "fetch_sub", "__iand__": "fetch_and",
            "__ior__": "fetch_or", "__ixor__": "fetch_xor"}


def _scalar_method(name, cfunc, allowed, arg, doc):
    if isinstance(arg, int):  # inc/dec: nothing to convert
        def method(self, *, order=None):
            return cfunc(self._ptr, 0, arg, _SEQ_CST if order is None else _order(order, allowed, name))
    else:
        def method(self, value, *, order=None):
            o = _SEQ_CST if order is None else _order(order, allowed, name)
            try:
                return cfunc(self._ptr, 0, value, o)
            except (TypeError, OverflowError):  # raised by cffi before the call: nothing changed
                return cfunc(self._ptr, 0, _int64(value, arg), o)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return method


def _array_method(name, cfunc, allowed, arg, doc):
    # The index check is inlined for plain in-range ints and the indexing is done in C: this is
    # the hot path of counting in shared memory, and each Python-level step saved is ~40 ns.
    if isinstance(arg, int):
        def method(self, index, *, order=None):
            i = index if type(index) is int and 0 <= index < self._len else self._position(index)
            return cfunc(self._base, i, arg, _SEQ_CST if order is None else _order(order, allowed, name))
    else:
        def method(self, index, value, *, order=None):
            i = index if type(index) is int and 0 <= index < self._len else self._position(index)
            o = _SEQ_CST if order is None else _order(order, allowed, name)
            try:
                return cfunc(self._base, i, value, o)
            except (TypeError, OverflowError):
                return cfunc(self._base, i, _int64(value, arg), o)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"On element ``index``: {doc[0].lower()}{doc[1:]}"
    return method


def _inplace_method(name, operation):
    fetch = _OPS[operation][0]
    arg = _OPS[operation][2]

    def method(self, value):
        try:
            fetch(self._ptr, 0, value, _SEQ_CST)
        except (TypeError, OverflowError):
            fetch(self._ptr, 0, _int64(value, arg), _SEQ_CST)
        return self

    method.__name__ = method.__qualname__ = name
    return method


def _export(buffer, readonly):
    """A cffi char[] over ``buffer``, holding its export (so the buffer stays alive and
    unresized); TypeError for a read-only buffer unless ``readonly``."""
    if not readonly:
        with memoryview(buffer) as probe:
            if probe.readonly:
                raise TypeError(
                    f"the {type(buffer).__name__} buffer is read-only; "
                    "pass readonly=True for a view that only loads"
                )
    return _ffi.from_buffer("char[]", buffer, require_writable=not readonly)


def _aligned_pointer(chars, offset, count):
    """``int64_t *`` at ``offset`` bytes into ``chars`` for ``count`` int64s, or ValueError."""
    size = len(chars)
    if offset < 0 or offset + 8 * count > size:
        raise ValueError(f"offset={offset} with {count} int64 does not fit in a buffer of {size} bytes")
    ptr = _ffi.cast("int64_t *", chars + offset)
    address = int(_ffi.cast("uintptr_t", ptr))
    if address % 8:
        raise ValueError(f"offset={offset} is misaligned: the address must be a multiple of 8, got {address:#x}")
    return ptr


def _refuse_write(name):
    def method(self, *args, **kwargs):
        raise TypeError(f"{name}() on a read-only view: only load() is allowed")

    method.__name__ = method.__qualname__ = name
    return method


class _BufferView:
    """What both views share: the buffer they pin, and whether they only load."""

    __slots__ = ()

    @property
    def buffer(self):
        """The buffer this view reads and writes."""
        return self._buffer

    @property
    def readonly(self):
        """Whether this view only loads."""
        return False


class Int64View(_BufferView):
    """One atomic int64 at ``offset`` bytes into ``buffer``.

    ``readonly=True`` accepts a read-only buffer and allows only load(); every other method
    raises TypeError.  Misaligned or out-of-range offsets raise ValueError.
    """

    __slots__ = ("_buffer", "_chars", "_ptr", "offset")
    __hash__ = None  # mutable, like AtomicInt64

    def __new__(cls, buffer, offset=0, *, readonly=False):
        return object.__new__(_ReadOnlyInt64View if readonly else cls)

    def __init__(self, buffer, offset=0, *, readonly=False):
        offset = _index(offset)
        chars = _export(buffer, readonly)
        self._ptr = _aligned_pointer(chars, offset, 1)
        self._chars = chars  # the export that pins the buffer
        self._buffer = buffer
        self.offset = offset

    def load(self, *, order=None):
        """Return the current value."""
        return _load(self._ptr, 0, _SEQ_CST if order is None else _order(order, _LOAD, "load"))

    for _name, _spec in _OPS.items():
        locals()[_name] = _scalar_method(_name, *_spec)
    for _name, _operation in _INPLACE.items():
        locals()[_name] = _inplace_method(_name, _operation)
    del _name, _spec, _operation

    def compare_and_swap(self, expected, desired, *, order=None, failure=None):
        """Set the value to ``desired`` if it equals ``expected``; return whether it did."""
        if order is None and failure is None and type(expected) is int and type(desired) is int:
            try:  # the hot path: plain ints, default orders
                return _cas(self._ptr, 0, expected, desired, _SEQ_CST, _SEQ_CST) == expected
            except OverflowError:  # raised by cffi before the call; _cas_at names the argument
                pass
        return _cas_at(self._ptr, 0, expected, desired, order, failure)[0]

    def compare_exchange(self, expected, desired, *, order=None, failure=None):
        """Like compare_and_swap, but return ``(swapped, witnessed)``.

        ``failure`` orders the load of a failed swap; by default the strongest ``order`` allows.
        """
        return _cas_at(self._ptr, 0, expected, desired, order, failure)

    def update(self, fn, *, order=None):
        """Atomically replace the value with ``fn(value)``; return the new value.

        A CAS loop: ``fn`` may run more than once and must have no side effects.
        """
        return _update_at(self._ptr, 0, fn, order)

    def __int__(self):
        return _load(self._ptr, 0, _SEQ_CST)

    __index__ = __int__

    def __bool__(self):
        return _load(self._ptr, 0, _SEQ_CST) != 0

    def __repr__(self):
        return f"{type(self).__name__}({self.load()}, offset={self.offset})"

    def _compare(self, other, op):
        if isinstance(other, _COMPARABLE):
            return op(_load(self._ptr, 0, _SEQ_CST), _index(other))
        return NotImplemented

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __reduce__(self):
        raise TypeError(f"cannot pickle a view of a {type(self._buffer).__name__}: it points into memory")


_COMPARABLE = (int, AtomicInt64, Int64View)


class _ReadOnlyInt64View(Int64View):
    """What ``Int64View(buffer, readonly=True)`` makes: loads only.

    A subclass rather than a flag, so writable views pay nothing for the check.
    """

    __slots__ = ()

    @property
    def readonly(self):
        """Whether this view only loads."""
        return True

    for _name in (*_OPS, *_INPLACE, "compare_and_swap", "compare_exchange", "update"):
        locals()[_name] = _refuse_write(_name)
    del _name


class Int64ArrayView(_BufferView):
    """Every int64 of ``buffer`` as an array of atomics: ``view.inc(i)``, ``view[i]``, ``len(view)``.

    Methods take the index first and otherwise match Int64View's.  Negative indexes count from
    the end; out-of-range ones raise IndexError.  The buffer's address must be 8-byte aligned
    and its size a multiple of 8 (ValueError otherwise).  ``readonly=True`` as for Int64View.
    """

    __slots__ = ("_buffer", "_chars", "_base", "_len")
    __hash__ = None

    def __new__(cls, buffer, *, readonly=False):
        return object.__new__(_ReadOnlyInt64ArrayView if readonly else cls)

    def __init__(self, buffer, *, readonly=False):
        chars = _export(buffer, readonly)
        size = len(chars)
        if size % 8:
            raise ValueError(f"buffer size must be a multiple of 8 bytes, got {size}")
        self._base = _aligned_pointer(chars, 0, size // 8)
        self._chars = chars
        self._buffer = buffer
        self._len = size // 8

    def _position(self, index):
        """``index`` as a position in 0..len-1 (negative counts from the end), or IndexError."""
        i = _index(index)
        n = self._len
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for {n} int64")
        return i

    def __len__(self):
        return self._len

    def __iter__(self):
        base = self._base
        for i in range(self._len):
            yield _load(base, i, _SEQ_CST)

    def __repr__(self):
        return f"{type(self).__name__}(len={self._len}, readonly={self.readonly})"

    def view(self, index):
        """An Int64View of element ``index``, sharing this buffer."""
        return Int64View(self._buffer, 8 * self._position(index), readonly=self.readonly)

    def load(self, index, *, order=None):
        """Return element ``index``."""
        i = index if type(index) is int and 0 <= index < self._len else self._position(index)
        return _load(self._base, i, _SEQ_CST if order is None else _order(order, _LOAD, "load"))

    __getitem__ = load

    for _name, _spec in _OPS.items():
        locals()[_name] = _array_method(_name, *_spec)
    del _name, _spec

    def __setitem__(self, index, value):
        self.store(index, value)

    def compare_and_swap(self, index, expected, desired, *, order=None, failure=None):
        """Set element ``index`` to ``desired`` if it equals ``expected``; return whether it did."""
        return _cas_at(self._base, self._position(index), expected, desired, order, failure)[0]

    def compare_exchange(self, index, expected, desired, *, order=None, failure=None):
        """Like compare_and_swap, but return ``(swapped, witnessed)``."""
        return _cas_at(self._base, self._position(index), expected, desired, order, failure)

    def update(self, index, fn, *, order=None):
        """Atomically replace element ``index`` with ``fn(value)``; return the new value.

        A CAS loop: ``fn`` may run more than once and must have no side effects.
        """
        return _update_at(self._base, self._position(index), fn, order)

    def __reduce__(self):
        raise TypeError(f"cannot pickle a view of a {type(self._buffer).__name__}: it points into memory")


class _ReadOnlyInt64ArrayView(Int64ArrayView):
    """What ``Int64ArrayView(buffer, readonly=True)`` makes: loads only."""

    __slots__ = ()

    @property
    def readonly(self):
        """Whether this view only loads."""
        return True

    for _name in (*_OPS, "__setitem__", "compare_and_swap", "compare_exchange", "update"):
        locals()[_name] = _refuse_write(_name)
    del _name

