# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""Channel and select, compiled; tests/channel_reference.py is the same algorithm in Python (same tests).

What compiling buys: the channel lock is a ``PyMutex`` (no lock object, no ``with`` protocol),
a waiter's state is a C11 atomic claimed with one compare-and-swap, the buffer is a ring over
a list, and the wait queues are linked lists of C-level entries.  Blocking still parks on a
``threading.Lock``, so Ctrl-C and signals behave as with any Python lock.

Algorithm (both twins): a blocked operation queues a waiter on the channel and parks.  Whoever
completes it first claims the waiter by compare-and-swap, hands the value over and wakes it;
timeouts, cancellation and ``close()`` claim it the same way, so an operation either completes
or fails, exactly once.  ``select`` holds its channels' locks (taken in ``id`` order, so
selects cannot deadlock each other) while it polls the cases and queues on all of them.
"""

cimport cython
from libc.stdint cimport int64_t

import random

from ._channel_base import NO_DEFAULT as _NO_DEFAULT
from ._channel_base import ChannelClosed, Recv, Selected, Send, check_capacity, check_cases
from ._validate import check_wait
from .context import Context


from ._parking cimport CANCELED, TIMED_OUT, Parker, WaitEntry, WaitQueue


cdef inline void _check_ctx(object ctx) except *:
    """check_wait() for a ctx without a timeout, without the Python calls: the hot path of
    pipeline stages, which pass their ctx on every send and receive."""
    if not isinstance(ctx, Context):
        check_wait(None, ctx)  # raises the TypeError with its message
    canceler = ctx._canceler
    if canceler is not None and canceler._err is not None:
        ctx.raise_if_done()


cdef inline object _checked_timeout(object timeout, object ctx):
    """check_wait() for send and receive: the timeout as a float or None, ``ctx`` checked (a
    cancelled one raises), with no Python call when only a ctx is given."""
    if timeout is not None:
        return check_wait(timeout, ctx)[0]
    if ctx is not None:
        _check_ctx(ctx)
    return None


@cython.final
@cython.auto_pickle(False)
cdef class _Waiter(Parker):
    """One blocked operation or select; the claim decides which case completed it."""

    cdef object value
    cdef bint ok
    cdef bint closed  # completed because the channel was closed

    cdef inline void reset(self):
        self.rearm()
        self.value = None
        self.ok = False
        self.closed = False


import threading as _threading

_local = _threading.local()


cdef _Waiter _waiter_for_this_thread():
    """This thread's reusable waiter, reset (a new one if the last cannot be reused)."""
    cdef _Waiter waiter = getattr(_local, "waiter", None)
    if waiter is None or not waiter.reusable:
        waiter = _Waiter.__new__(_Waiter)
        _local.waiter = waiter
    else:
        waiter.reset()
    return waiter


@cython.auto_pickle(False)
cdef class Channel:
    """A Go channel for threads: bounded FIFO, close(), iteration, and :func:`select`.

    Every blocking call takes ``timeout=`` (TimeoutError when it passes) and ``ctx=`` (raises
    ``ctx.err()`` when the context is cancelled); neither ever loses or duplicates a value.
    """

    cdef cython.pymutex _lock
    cdef list _ring  # the buffer: a ring of `_capacity` slots
    cdef Py_ssize_t _head
    cdef Py_ssize_t _count
    cdef Py_ssize_t _capacity
    cdef bint _closed
    cdef WaitQueue _receivers
    cdef WaitQueue _senders
    cdef object __weakref__

    def __cinit__(self):
        # here, not in __init__: a Channel.__new__() whose __init__ never ran must not crash
        self._receivers = WaitQueue()
        self._senders = WaitQueue()

    def __init__(self, capacity=0):
        check_capacity(capacity)
        try:
            self._ring = [None] * capacity  # allocated up front, as Go's make(chan T, n) does
        except MemoryError:
            raise MemoryError(f"Channel(capacity={capacity}): not enough memory for that many slots") from None
        self._capacity = capacity

    @property
    def capacity(self):
        """How many values the buffer holds (0: unbuffered, a rendezvous)."""
        return self._capacity

    @property
    def closed(self):
        """Whether close() was called (values may still be buffered)."""
        cdef bint closed
        with self._lock:  # read under the lock that guards the write: no torn or racy read
            closed = self._closed
        return closed

    def __len__(self):
        """How many values are buffered now."""
        cdef Py_ssize_t count
        with self._lock:
            count = self._count
        return count

    def __repr__(self):
        cdef bint closed
        cdef Py_ssize_t count
        with self._lock:
            closed, count = self._closed, self._count
        return f"<Channel {'closed' if closed else 'open'} {count}/{self._capacity}>"

    # -- the ring buffer (lock held) ------------------------------------------------------------

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef inline void _push(self, object value):
        cdef Py_ssize_t slot = self._head + self._count
        if slot >= self._capacity:
            slot -= self._capacity
        self._ring[slot] = value
        self._count += 1

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef inline object _pop(self):
        cdef object value = self._ring[self._head]
        self._ring[self._head] = None
        self._head += 1
        if self._head == self._capacity:
            self._head = 0
        self._count -= 1
        return value

    # -- the operations, each tried under the lock without blocking ----------------------------

    cdef int _send_now(self, object value) except -1:
        """Hand ``value`` to a receiver or buffer it: 1; 0 if neither is possible now."""
        cdef WaitEntry entry
        cdef _Waiter waiter
        if self._closed:
            raise ChannelClosed("send on closed channel")
        while True:
            entry = self._receivers.pop()
            if entry is None:
                break
            if entry.waiter.claim(entry.case):
                waiter = <_Waiter>entry.waiter
                waiter.value = value
                waiter.ok = True
                waiter.wake()
                return 1
        if self._count < self._capacity:
            self._push(value)
            return 1
        return 0

    cdef object _recv_now(self):
        """``(value, True)``, ``(None, False)`` when closed and drained, or None if it would block."""
        cdef WaitEntry entry
        cdef object value
        if self._count:
            value = self._pop()
            while True:  # a blocked sender's value takes the freed slot
                entry = self._senders.pop()
                if entry is None:
                    break
                if entry.waiter.claim(entry.case):
                    self._push(entry.value)
                    entry.waiter.wake()
                    break
            return (value, True)
        while True:
            entry = self._senders.pop()
            if entry is None:
                break
            if entry.waiter.claim(entry.case):
                entry.waiter.wake()
                return (entry.value, True)
        if self._closed:
            return (None, False)
        return None

    cdef void _dequeue(self, _Waiter waiter):
        with self._lock:
            self._receivers.remove(waiter)
            self._senders.remove(waiter)

    # -- sending -------------------------------------------------------------------------------

    def send(self, value, timeout=None, ctx=None):
        """Send ``value``, blocking while the channel is full (unbuffered: until received).

        Raises ChannelClosed if the channel is or becomes closed, TimeoutError after
        ``timeout`` seconds, ``ctx.err()`` if ``ctx`` is (or gets) cancelled: a cancelled
        context wins even over a ready channel.  On any of these the value is not sent.
        """
        cdef _Waiter waiter
        timeout = _checked_timeout(timeout, ctx)
        with self._lock:
            if self._send_now(value):
                return
            if timeout == 0:
                raise TimeoutError("send timed out: channel full")
            waiter = _waiter_for_this_thread()
            self._senders.push(waiter, 0, value)
        self._finish_blocked(waiter, timeout, ctx, True)

    def try_send(self, value):
        """Send without blocking; False if it would block.  Raises ChannelClosed if closed."""
        with self._lock:
            return self._send_now(value) == 1

    # -- receiving -----------------------------------------------------------------------------

    def recv_ok(self, timeout=None, ctx=None):
        """Receive: ``(value, True)``, or ``(None, False)`` once the channel is closed and drained.

        Blocks while empty; TimeoutError after ``timeout`` seconds; ``ctx.err()`` on cancel.
        """
        cdef _Waiter waiter
        cdef object got
        timeout = _checked_timeout(timeout, ctx)
        with self._lock:
            got = self._recv_now()
            if got is not None:
                return got
            if timeout == 0:
                raise TimeoutError("recv timed out: channel empty")
            waiter = _waiter_for_this_thread()
            self._receivers.push(waiter, 0, None)
        self._finish_blocked(waiter, timeout, ctx, False)
        got = (waiter.value, waiter.ok)
        waiter.value = None  # do not keep the value alive in the cached waiter
        return got

    def recv(self, timeout=None, ctx=None):
        """Receive a value; raises ChannelClosed once the channel is closed and drained."""
        value, ok = self.recv_ok(timeout, ctx)
        if not ok:
            raise ChannelClosed("receive from closed channel")
        return value

    def try_recv(self):
        """Receive without blocking: ``(value, True)``, or ``(None, False)`` if nothing is ready.

        Raises ChannelClosed once the channel is closed and drained.
        """
        cdef object got
        with self._lock:
            got = self._recv_now()
        if got is None:
            return None, False
        if not got[1]:
            raise ChannelClosed("receive from closed channel")
        return got

    def __iter__(self):
        """Receive until the channel is closed and drained."""
        while True:
            value, ok = self.recv_ok()
            if not ok:
                return
            yield value

    # -- closing -------------------------------------------------------------------------------

    def close(self):
        """No more sends: wake every blocked receiver (closed) and sender (ChannelClosed)."""
        cdef WaitEntry entry
        cdef WaitQueue queue
        with self._lock:
            if self._closed:
                raise ChannelClosed("close of closed channel")
            self._closed = True
            # claim under the lock: once a waiter is dequeued nobody may claim it any more
            for queue in (self._receivers, self._senders):
                while True:
                    entry = queue.pop()
                    if entry is None:
                        break
                    if entry.waiter.claim(entry.case):
                        (<_Waiter>entry.waiter).closed = True
                        entry.waiter.wake()

    # -- blocking ------------------------------------------------------------------------------

    cdef int _finish_blocked(self, _Waiter waiter, object timeout, object ctx, bint sending) except -1:
        cdef int64_t outcome = waiter.park(timeout, ctx)
        if outcome == TIMED_OUT:
            self._dequeue(waiter)
            raise TimeoutError(f"{'send' if sending else 'recv'} timed out after {timeout} s")
        if outcome == CANCELED:
            self._dequeue(waiter)
            ctx.raise_if_done()
        if sending and waiter.closed:
            raise ChannelClosed("send on closed channel")
        return 0


cdef object _attempt(object case, Py_ssize_t index):
    """With the channel's lock held: perform ``case`` now if it can run without blocking."""
    cdef Channel channel = case.channel
    cdef object got
    if type(case) is Send:
        return Selected(index, None, True) if channel._send_now(case.value) else None
    got = channel._recv_now()
    return None if got is None else Selected(index, got[0], got[1])


def select(*cases, timeout=None, ctx=None, default=_NO_DEFAULT):
    """Perform exactly one of ``cases`` (``Recv(ch)`` / ``Send(ch, value)``), Go's ``select``.

    Among cases ready at once, one is chosen at random (fairly).  With ``default=`` given,
    return it at once when no case is ready (Go's ``default:`` clause); otherwise block until
    one is, raising TimeoutError after ``timeout`` seconds or ``ctx.err()`` on cancel.  A
    receive from a closed channel is ready with ``ok=False``; a send to one raises
    ChannelClosed.  Returns ``Selected(index, value, ok)``.
    """
    cdef Channel channel
    cdef _Waiter waiter = None
    cdef Py_ssize_t i
    cdef int64_t outcome
    cdef object chosen
    check_cases(cases, Channel)
    timeout, ctx = check_wait(timeout, ctx)
    if not cases and default is _NO_DEFAULT and timeout is None and ctx is None:
        raise ValueError("select() with no cases, no default, no timeout and no ctx would block forever")
    order = random.sample(range(len(cases)), len(cases))
    channels = sorted({id(c.channel): c.channel for c in cases}.values(), key=id)
    for channel in channels:
        channel._lock.acquire()
    try:
        for i in order:
            chosen = _attempt(cases[i], i)
            if chosen is not None:
                return chosen
        if default is not _NO_DEFAULT:
            return default
        if timeout == 0:
            raise TimeoutError("select timed out: no case ready")
        waiter = _waiter_for_this_thread()
        for i in order:
            case = cases[i]
            channel = case.channel
            if type(case) is Send:
                channel._senders.push(waiter, i, case.value)
            else:
                channel._receivers.push(waiter, i, None)
    finally:
        for channel in reversed(channels):
            channel._lock.release()

    try:
        outcome = waiter.park(timeout, ctx)
    finally:
        for channel in channels:
            channel._dequeue(waiter)
    if outcome == TIMED_OUT:
        raise TimeoutError(f"select timed out after {timeout} s")
    if outcome == CANCELED:
        ctx.raise_if_done()
    if type(cases[outcome]) is Send:
        if waiter.closed:
            raise ChannelClosed("send on closed channel")
        return Selected(outcome, None, True)
    value = waiter.value
    waiter.value = None
    return Selected(outcome, value, waiter.ok)
