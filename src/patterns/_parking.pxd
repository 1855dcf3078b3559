# The shared parking waiter of the compiled patterns (Channel, Semaphore): see _parking.pyx.
from libc.stdint cimport int64_t

from ftsync_atomic cimport ftsync_atomic_i64

# Outcomes of a park other than "claimed with case/grant number n >= 0".
cdef enum:
    WAITING = -1
    TIMED_OUT = -2
    CANCELED = -3

cdef class Parker:
    cdef ftsync_atomic_i64 _state
    cdef object _parker
    cdef bint reusable
    cdef bint claim(self, int64_t outcome) noexcept
    cdef void wake(self) except *
    cdef void rearm(self) noexcept
    cdef int64_t park(self, object timeout, object ctx) except? -100
    cdef bint _sleep(self, object timeout) except -1
