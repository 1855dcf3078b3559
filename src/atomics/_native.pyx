# cython: language_level=3, freethreading_compatible=True, binding=False, always_allow_keywords=False, embedsignature=True
#
# binding=False: methods are plain C method descriptors.  With CyFunction bindings every call
# touches the shared function object, and on free-threaded builds that contention kept a
# per-thread handle from scaling past one thread (measured: 2 threads slower than 1).
"""The C-level atomic types: AtomicInt64, AtomicBool, AtomicCounter and its handles.

Every method is one C call into csrc/ftsync_atomic.h (sequentially consistent), with no
Python layer in between.  Argument conversion happens before any atomic operation, so a bad
argument (TypeError, OverflowError) never leaves a half-applied change.
"""
cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.number cimport PyIndex_Check, PyNumber_Index
from libc.stdint cimport int64_t, uint64_t

from ftsync_atomic cimport (
    ftsync_atomic_i64,
    ftsync_atomic_bool,
    c_bool,
    ATOMIC_LLONG_LOCK_FREE,
    ATOMIC_BOOL_LOCK_FREE,
    FTSYNC_RELAXED,
    ftsync_i64_load,
    ftsync_i64_store,
    ftsync_i64_exchange,
    ftsync_i64_add,
    ftsync_i64_sub,
    ftsync_i64_fetch_add,
    ftsync_i64_fetch_sub,
    ftsync_i64_fetch_and,
    ftsync_i64_fetch_or,
    ftsync_i64_fetch_xor,
    ftsync_i64_fetch_max,
    ftsync_i64_fetch_min,
    ftsync_i64_compare_exchange,
    ftsync_i64_fetch_add_explicit,
    ftsync_bool_load,
    ftsync_bool_store,
    ftsync_bool_exchange,
    ftsync_bool_compare_exchange,
)

from os import cpu_count as _cpu_count


cdef extern from "ftsync_counter.h" nogil:
    ctypedef struct ftsync_cell:
        ftsync_atomic_i64 value
        ftsync_cell *prev
        ftsync_cell *next
    int FTSYNC_CELL_SIZE
    ftsync_cell *ftsync_cells_new(size_t count)
    void ftsync_cells_free(ftsync_cell *cells)
    size_t ftsync_stripe_for(uint64_t thread_id, size_t mask)


cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident()


cdef inline int64_t _int64(object value, str name) except? -1:
    """``value`` as an int64: ints and objects with ``__index__``; named TypeError/OverflowError."""
    cdef int overflow = 0
    cdef long long result
    if not isinstance(value, int):
        if not PyIndex_Check(value):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
        value = PyNumber_Index(value)
    result = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow:
        raise OverflowError(f"{name}={value} is outside the int64 range [-2**63, 2**63 - 1]")
    return result


# Comparison operator names by Cython's ``op`` code (Py_LT .. Py_GE) and their reflections.
_OP_NAMES = ("__lt__", "__le__", "__eq__", "__ne__", "__gt__", "__ge__")
_REFLECTED = ("__gt__", "__ge__", "__eq__", "__ne__", "__lt__", "__le__")


cdef object _compare(object value, object other, int op):
    """Compare the plain ``value`` an atomic holds with ``other`` as ``value <op> other`` would.

    Other atomics are unwrapped first.  NotImplemented is passed on, so comparing with an
    unrelated type fails (or, for ==, falls back to identity) naming the atomic's own type.
    """
    if isinstance(other, (AtomicInt64, AtomicBool, AtomicCounter)):
        other = other.__index__()
    result = getattr(value, _OP_NAMES[op])(other)
    if result is NotImplemented:
        result = getattr(other, _REFLECTED[op])(value)
    return result


#: True when 64-bit atomics compile to lock-free instructions (the build fails otherwise).
INT64_LOCK_FREE = ATOMIC_LLONG_LOCK_FREE == 2
BOOL_LOCK_FREE = ATOMIC_BOOL_LOCK_FREE == 2
#: Bytes each AtomicCounter cell occupies, so that no two cells share a cache line.
CELL_SIZE = FTSYNC_CELL_SIZE


cdef class AtomicInt64:
    """A 64-bit signed integer whose every operation is one lock-free atomic instruction.

    All operations are sequentially consistent.  Arithmetic wraps in two's complement, as in C
    and Go: ``AtomicInt64(2**63 - 1).inc() == -2**63``.  Arguments must be integers (objects
    with ``__index__`` are accepted) within int64, else TypeError / OverflowError is raised and
    the value is left unchanged.

    An instance behaves like the int it holds: ``int()``, ``operator.index()``, ``bool()``,
    ``format()`` and comparisons (``==``, ``<``, ... with ints, floats and other atomics) all
    read the current value.  Equal values do not make equal hashes of a mutable object, so
    instances are unhashable.  Instances can be weakly referenced.
    """

    cdef ftsync_atomic_i64 _value
    cdef object __weakref__

    def __init__(self, value=0):
        cdef int64_t c_value = _int64(value, "value")
        ftsync_i64_store(&self._value, c_value)

    def load(self):
        """Return the current value."""
        return ftsync_i64_load(&self._value)

    def store(self, value):
        """Set the value."""
        cdef int64_t c_value = _int64(value, "value")
        ftsync_i64_store(&self._value, c_value)

    def exchange(self, value):
        """Set the value and return the previous one."""
        cdef int64_t c_value = _int64(value, "value")
        return ftsync_i64_exchange(&self._value, c_value)

    def add(self, delta):
        """Add ``delta`` and return the new value."""
        cdef int64_t c_delta = _int64(delta, "delta")
        return ftsync_i64_add(&self._value, c_delta)

    def sub(self, delta):
        """Subtract ``delta`` and return the new value."""
        cdef int64_t c_delta = _int64(delta, "delta")
        return ftsync_i64_sub(&self._value, c_delta)

    def inc(self):
        """Add one and return the new value."""
        return ftsync_i64_add(&self._value, 1)

    def dec(self):
        """Subtract one and return the new value."""
        return ftsync_i64_sub(&self._value, 1)

    def fetch_add(self, delta):
        """Add ``delta`` and return the previous value."""
        cdef int64_t c_delta = _int64(delta, "delta")
        return ftsync_i64_fetch_add(&self._value, c_delta)

    def fetch_sub(self, delta):
        """Subtract ``delta`` and return the previous value."""
        cdef int64_t c_delta = _int64(delta, "delta")
        return ftsync_i64_fetch_sub(&self._value, c_delta)

    def fetch_and(self, mask):
        """Bitwise-and with ``mask`` and return the previous value."""
        cdef int64_t c_mask = _int64(mask, "mask")
        return ftsync_i64_fetch_and(&self._value, c_mask)

    def fetch_or(self, mask):
        """Bitwise-or with ``mask`` and return the previous value."""
        cdef int64_t c_mask = _int64(mask, "mask")
        return ftsync_i64_fetch_or(&self._value, c_mask)

    def fetch_xor(self, mask):
        """Bitwise-xor with ``mask`` and return the previous value."""
        cdef int64_t c_mask = _int64(mask, "mask")
        return ftsync_i64_fetch_xor(&self._value, c_mask)

    def fetch_max(self, value):
        """Set the value to ``max(current, value)`` and return the previous value."""
        cdef int64_t c_value = _int64(value, "value")
        return ftsync_i64_fetch_max(&self._value, c_value)

    def fetch_min(self, value):
        """Set the value to ``min(current, value)`` and return the previous value."""
        cdef int64_t c_value = _int64(value, "value")
        return ftsync_i64_fetch_min(&self._value, c_value)

    def compare_and_swap(self, expected, desired):
        """Set the value to ``desired`` if it equals ``expected``; return whether it did."""
        cdef int64_t c_expected = _int64(expected, "expected")
        cdef int64_t c_desired = _int64(desired, "desired")
        return ftsync_i64_compare_exchange(&self._value, &c_expected, c_desired)

    def compare_exchange(self, expected, desired):
        """Like compare_and_swap, but return ``(swapped, witnessed)``.

        ``witnessed`` is the value seen: ``expected`` on success, the current value on failure,
        ready for the next try of a CAS loop.
        """
        cdef int64_t c_expected = _int64(expected, "expected")
        cdef int64_t c_desired = _int64(desired, "desired")
        cdef bint swapped = ftsync_i64_compare_exchange(&self._value, &c_expected, c_desired)
        return swapped, c_expected

    def update(self, fn):
        """Atomically replace the value with ``fn(value)`` and return the new value.

        A compare-and-swap loop: when another thread changes the value between the read and
        the swap, ``fn`` is called again with the fresh value.  ``fn`` may therefore run more
        than once and must have no side effects.  If ``fn`` raises or returns something that
        is not an int64, the value is left unchanged.
        """
        cdef int64_t seen = ftsync_i64_load(&self._value)
        cdef int64_t desired
        while True:
            desired = _int64(fn(seen), "fn(value)")
            if ftsync_i64_compare_exchange(&self._value, &seen, desired):
                return desired

    def __int__(self):
        return ftsync_i64_load(&self._value)

    def __index__(self):
        return ftsync_i64_load(&self._value)

    def __bool__(self):
        return ftsync_i64_load(&self._value) != 0

    def __format__(self, spec):
        return format(ftsync_i64_load(&self._value), spec)

    def __repr__(self):
        return f"{type(self).__name__}({ftsync_i64_load(&self._value)})"

    def __richcmp__(self, other, int op):
        return _compare(ftsync_i64_load(&self._value), other, op)

    __hash__ = None

    def __iadd__(self, delta):
        cdef int64_t c_delta = _int64(delta, "delta")
        ftsync_i64_fetch_add(&self._value, c_delta)
        return self

    def __isub__(self, delta):
        cdef int64_t c_delta = _int64(delta, "delta")
        ftsync_i64_fetch_sub(&self._value, c_delta)
        return self

    def __iand__(self, mask):
        cdef int64_t c_mask = _int64(mask, "mask")
        ftsync_i64_fetch_and(&self._value, c_mask)
        return self

    def __ior__(self, mask):
        cdef int64_t c_mask = _int64(mask, "mask")
        ftsync_i64_fetch_or(&self._value, c_mask)
        return self

    def __ixor__(self, mask):
        cdef int64_t c_mask = _int64(mask, "mask")
        ftsync_i64_fetch_xor(&self._value, c_mask)
        return self

    def __reduce__(self):
        return type(self), (ftsync_i64_load(&self._value),)

    def __copy__(self):
        return type(self)(ftsync_i64_load(&self._value))

    def __deepcopy__(self, memo):
        return type(self)(ftsync_i64_load(&self._value))


cdef class AtomicBool:
    """A boolean flag with atomic load, store, exchange and compare-and-swap.

    Values are taken by truth value, like ``bool(value)``.  All operations are sequentially
    consistent, so ``test_and_set()`` / ``clear()`` make a correct (if spinning) lock.

    An instance behaves like the bool it holds: ``bool()``, ``int()``, ``operator.index()``,
    ``format()`` and comparisons (``AtomicBool(True) == True``, ``== 1``) read the current
    value.  Like AtomicInt64 it is mutable, so unhashable.  Instances can be weakly referenced.
    """

    cdef ftsync_atomic_bool _value
    cdef object __weakref__

    def __init__(self, bint value=False):
        ftsync_bool_store(&self._value, value)

    def load(self):
        """Return the current value."""
        return ftsync_bool_load(&self._value)

    def store(self, bint value):
        """Set the value."""
        ftsync_bool_store(&self._value, value)

    def exchange(self, bint value):
        """Set the value and return the previous one."""
        return ftsync_bool_exchange(&self._value, value)

    def compare_and_swap(self, bint expected, bint desired):
        """Set the value to ``desired`` if it equals ``expected``; return whether it did."""
        cdef c_bool seen = expected
        return ftsync_bool_compare_exchange(&self._value, &seen, desired)

    def test_and_set(self):
        """Set the flag and return its previous value (False means the caller set it)."""
        return ftsync_bool_exchange(&self._value, True)

    def clear(self):
        """Reset the flag to False."""
        ftsync_bool_store(&self._value, False)

    def __bool__(self):
        return ftsync_bool_load(&self._value)

    def __int__(self):
        return 1 if ftsync_bool_load(&self._value) else 0

    def __index__(self):
        return 1 if ftsync_bool_load(&self._value) else 0

    def __format__(self, spec):
        return format(True if ftsync_bool_load(&self._value) else False, spec)

    def __repr__(self):
        return f"{type(self).__name__}({ftsync_bool_load(&self._value)})"

    def __richcmp__(self, other, int op):
        return _compare(True if ftsync_bool_load(&self._value) else False, other, op)

    __hash__ = None

    def __reduce__(self):
        return type(self), (ftsync_bool_load(&self._value),)

    def __copy__(self):
        return type(self)(ftsync_bool_load(&self._value))

    def __deepcopy__(self, memo):
        return type(self)(ftsync_bool_load(&self._value))


cdef size_t _default_stripes():
    """Twice the CPU count, rounded up to a power of two, between 4 and 64."""
    cdef size_t wanted = 2 * (_cpu_count() or 1)
    cdef size_t stripes = 4
    while stripes < wanted and stripes < 64:
        stripes *= 2
    return stripes


@cython.final
cdef class AtomicCounter:
    """A counter that many threads can add to without contending, like Java's LongAdder.

    Adds go to one of several cache-line-padded stripes, chosen by a hash of the calling
    thread, and ``value()`` sums them: adds scale with threads, reads cost O(stripes).
    For the fastest path give each thread its own ``handle()``: ``h.inc()`` touches only that
    handle's cell, never shared memory.  ``value()`` while others add is a moment's sum, not a
    snapshot; once the adders stop it is exact, including the counts of dropped handles.

    ``AtomicCounter(value)`` starts the count at ``value`` (default 0).  Like AtomicInt64 it
    behaves like the int it holds: ``int()``, ``operator.index()``, ``bool()``, ``format()``
    and comparisons read ``value()``; it is unhashable and can be weakly referenced.
    """

    cdef ftsync_atomic_i64 _base      # folded-in counts of dropped handles and resets
    cdef ftsync_cell *_stripes
    cdef size_t _mask
    cdef ftsync_cell *_handles        # head of the list of live handle cells
    cdef cython.pymutex _handles_lock
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        cdef size_t stripes = _default_stripes()
        self._stripes = ftsync_cells_new(stripes)
        if self._stripes == NULL:
            raise MemoryError()
        self._mask = stripes - 1

    def __init__(self, value=0):
        cdef int64_t c_value = _int64(value, "value")
        ftsync_i64_store(&self._base, c_value)

    def __dealloc__(self):
        ftsync_cells_free(self._stripes)

    cdef inline ftsync_atomic_i64 *_my_stripe(self):
        return &self._stripes[ftsync_stripe_for(PyThread_get_thread_ident(), self._mask)].value

    def add(self, delta):
        """Add ``delta`` (which may be negative)."""
        cdef int64_t c_delta = _int64(delta, "delta")
        ftsync_i64_fetch_add_explicit(self._my_stripe(), c_delta, FTSYNC_RELAXED)

    def inc(self):
        """Add one."""
        ftsync_i64_fetch_add_explicit(self._my_stripe(), 1, FTSYNC_RELAXED)

    def dec(self):
        """Subtract one."""
        ftsync_i64_fetch_add_explicit(self._my_stripe(), -1, FTSYNC_RELAXED)

    def value(self):
        """Return the sum of every stripe and handle (wrapping like AtomicInt64)."""
        cdef uint64_t total = <uint64_t>ftsync_i64_load(&self._base)
        cdef size_t i
        cdef ftsync_cell *cell
        for i in range(self._mask + 1):
            total += <uint64_t>ftsync_i64_load(&self._stripes[i].value)
        with self._handles_lock:
            cell = self._handles
            while cell != NULL:
                total += <uint64_t>ftsync_i64_load(&cell.value)
                cell = cell.next
        return <int64_t>total

    def reset(self):
        """Set the counter to zero and return the value it had.

        Adds that race with reset() land either in the returned value or in the new count,
        never in neither.
        """
        cdef uint64_t total = <uint64_t>ftsync_i64_exchange(&self._base, 0)
        cdef size_t i
        cdef ftsync_cell *cell
        for i in range(self._mask + 1):
            total += <uint64_t>ftsync_i64_exchange(&self._stripes[i].value, 0)
        with self._handles_lock:
            cell = self._handles
            while cell != NULL:
                total += <uint64_t>ftsync_i64_exchange(&cell.value, 0)
                cell = cell.next
        return <int64_t>total

    def handle(self):
        """Return a new CounterHandle: a private cell for one thread to count in."""
        cdef CounterHandle h = CounterHandle.__new__(CounterHandle)
        h._counter = self
        with self._handles_lock:
            h._cell.next = self._handles
            if self._handles != NULL:
                self._handles.prev = h._cell
            self._handles = h._cell
        return h

    cdef void _retire(self, ftsync_cell *cell) noexcept:
        """Fold a dropped handle's count into the base and unlink its cell (then free it)."""
        with self._handles_lock:
            ftsync_i64_fetch_add(&self._base, ftsync_i64_exchange(&cell.value, 0))
            if cell.prev != NULL:
                cell.prev.next = cell.next
            else:
                self._handles = cell.next
            if cell.next != NULL:
                cell.next.prev = cell.prev
        ftsync_cells_free(cell)

    def __int__(self):
        return self.value()

    def __index__(self):
        return self.value()

    def __bool__(self):
        return self.value() != 0

    def __format__(self, spec):
        return format(self.value(), spec)

    def __repr__(self):
        return f"AtomicCounter({self.value()})"

    def __richcmp__(self, other, int op):
        return _compare(self.value(), other, op)

    __hash__ = None

    def __reduce__(self):
        return type(self), (self.value(),)


@cython.final
@cython.no_gc_clear  # __dealloc__ needs _counter to fold the count back in
cdef class CounterHandle:
    """One thread's private cell of an AtomicCounter, made by ``AtomicCounter.handle()``.

    ``inc()`` / ``add()`` are one C call on memory no other thread writes to, so they scale
    with threads on a free-threaded build.  Keep one handle per thread (a handle shared by
    threads is still correct, just not faster).  When the handle is dropped its count moves
    into the counter: nothing is lost.
    """

    cdef AtomicCounter _counter       # None until AtomicCounter.handle() links the cell
    cdef ftsync_cell *_cell

    def __cinit__(self):
        self._cell = ftsync_cells_new(1)
        if self._cell == NULL:
            raise MemoryError()

    def __init__(self):
        raise TypeError("CounterHandle cannot be created directly; use AtomicCounter.handle()")

    def __dealloc__(self):
        if self._counter is not None:
            self._counter._retire(self._cell)  # folds the count in, unlinks and frees the cell
        else:
            ftsync_cells_free(self._cell)

    def add(self, delta):
        """Add ``delta`` to the counter."""
        cdef int64_t c_delta = _int64(delta, "delta")
        ftsync_i64_fetch_add_explicit(&self._cell.value, c_delta, FTSYNC_RELAXED)

    def inc(self):
        """Add one to the counter."""
        ftsync_i64_fetch_add_explicit(&self._cell.value, 1, FTSYNC_RELAXED)

    def dec(self):
        """Subtract one from the counter."""
        ftsync_i64_fetch_add_explicit(&self._cell.value, -1, FTSYNC_RELAXED)

    @property
    def counter(self):
        """The AtomicCounter this handle counts into."""
        return self._counter
