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


# The wait queue of a channel or semaphore: a FIFO of entries, each naming a parked waiter and,
# for a channel, the select case and the value it waits with.  One waiter may sit in several
# queues (a select); the owner's lock guards a queue.  The methods are inline so each module
# compiles them in (no cross-module call on the hand-off path).
cdef class WaitEntry:
    cdef Parker waiter
    cdef int64_t case
    cdef object value
    cdef WaitEntry next


cdef class WaitQueue:
    cdef WaitEntry head
    cdef WaitEntry tail

    cdef inline void push(self, Parker waiter, int64_t case, object value):
        """Queue ``waiter`` at the tail."""
        cdef WaitEntry entry = WaitEntry.__new__(WaitEntry)
        entry.waiter = waiter
        entry.case = case
        entry.value = value
        if self.tail is None:
            self.head = entry
        else:
            self.tail.next = entry
        self.tail = entry

    cdef inline WaitEntry pop(self):
        """Unqueue and return the head entry (None when empty)."""
        cdef WaitEntry entry = self.head
        if entry is not None:
            self.head = entry.next
            if self.head is None:
                self.tail = None
            entry.next = None
        return entry

    cdef inline void remove(self, Parker waiter):
        """Drop every entry of ``waiter`` (it gave up: timeout, cancel, another select case)."""
        cdef WaitEntry previous = None
        cdef WaitEntry entry = self.head
        while entry is not None:
            if entry.waiter is waiter:
                if previous is None:
                    self.head = entry.next
                else:
                    previous.next = entry.next
                if self.tail is entry:
                    self.tail = previous
                entry = entry.next
            else:
                previous = entry
                entry = entry.next
