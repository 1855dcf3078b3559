# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""Parker: how a compiled Channel or Semaphore operation blocks, and how it is woken exactly once.

A blocked operation sleeps on a ``_thread`` lock of its own (so Ctrl-C and signals behave as
for any Python lock wait).  Whoever completes it first *claims* it: one compare-and-swap of
an atomic state from WAITING to the outcome (a select case, a grant, TIMED_OUT or CANCELED),
then ``wake()``.  The grant, the timeout and the context's cancellation race through that
one CAS, so an operation completes or fails, never both.
"""

cimport cython
from libc.stdint cimport int64_t

from ftsync_atomic cimport ftsync_i64_compare_exchange, ftsync_i64_load, ftsync_i64_store

from _thread import allocate_lock

from ._waiting import TIMEOUT_MAX as _TIMEOUT_MAX
from ._waiting import wait_until as _wait_until

#: The park outcomes other than a case number (WAITING, TIMED_OUT, CANCELED) as Python ints, for
#: the Python reference Channel (tests/channel_reference.py): defined once, in _parking.pxd.
OUTCOMES = (WAITING, TIMED_OUT, CANCELED)


cdef class Parker:
    """A claimable, parkable waiter; subclasses add what their operation carries."""

    def __cinit__(self):
        self._parker = allocate_lock()
        self._parker.acquire()
        ftsync_i64_store(&self._state, WAITING)
        self.reusable = True

    cdef bint claim(self, int64_t outcome) noexcept:
        """Win the right to complete this waiter with ``outcome``; False if someone else did."""
        cdef int64_t expected = WAITING
        return ftsync_i64_compare_exchange(&self._state, &expected, outcome)

    cdef void wake(self) except *:
        """Wake the parked thread (only the claimer calls this, once)."""
        self._parker.release()

    cdef void rearm(self) noexcept:
        """Make a completed waiter usable for another operation of the same thread."""
        ftsync_i64_store(&self._state, WAITING)

    cdef int64_t park(self, object timeout, object ctx) except? -100:
        """Sleep until claimed; return the outcome (>= 0), or TIMED_OUT / CANCELED.

        If a context's canceller may still call ``_cancel`` later, ``reusable`` becomes False.
        """
        cdef object token = None
        if ctx is not None and ctx._cancellable:
            token = object()
            if not ctx._add_waker(token, self._cancel):
                self._cancel()
        try:
            if not self._sleep(timeout):
                if self.claim(TIMED_OUT):
                    return TIMED_OUT
                self._parker.acquire()  # claimed meanwhile: the claimer is about to wake us
        finally:
            if token is not None and not ctx._remove_waker(token):
                self.reusable = False
        return ftsync_i64_load(&self._state)

    cdef bint _sleep(self, object timeout) except -1:
        """Sleep on the parker lock until released or ``timeout`` (any length) passes."""
        if timeout is None:
            return self._parker.acquire(True, -1)
        if timeout <= _TIMEOUT_MAX:
            return self._parker.acquire(True, max(timeout, 0.0))
        return _wait_until(self._acquire_for, timeout)  # beyond what one lock wait takes

    def _acquire_for(self, piece):
        return self._parker.acquire(True, -1 if piece is None else piece)

    def _cancel(self):
        if self.claim(CANCELED):
            self._parker.release()


@cython.final
@cython.auto_pickle(False)
cdef class WaitEntry:
    """A waiter queued in one WaitQueue (a singly linked list node); see _parking.pxd."""


@cython.final
@cython.auto_pickle(False)
cdef class WaitQueue:
    """FIFO of WaitEntry, guarded by its owner's lock; the methods are inline in _parking.pxd."""
