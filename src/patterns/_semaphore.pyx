# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""Semaphore and WeightedSemaphore, compiled (golang.org/x/sync/semaphore semantics).

State: ``_avail`` (free tokens) and ``_nwaiters`` (acquirers on the slow path: queued, or
about to queue) are C11 atomics; the FIFO of parked waiters is guarded by a ``PyMutex``.

- ``release`` adds its tokens with one compare-and-swap (refusing to exceed the size), then,
  only if someone waits, takes the lock and grants head waiters while they fit.
- ``Semaphore.acquire`` takes tokens with one compare-and-swap while nobody waits (the fast
  path); ``WeightedSemaphore.acquire`` always decides under the lock, so a newcomer queues
  behind existing waiters even when tokens are free (strict FIFO, no starvation of large
  requests).
- A slow-path acquirer counts itself in ``_nwaiters`` *before* it looks at ``_avail``, and a
  releaser adds to ``_avail`` *before* it looks at ``_nwaiters`` (both sequentially
  consistent): at least one of them sees the other, so no wake-up is lost.
- A parked waiter is claimed exactly once by compare-and-swap on its state: by a grant
  (GRANTED), its timeout (TIMED_OUT) or its context (CANCELED).  A grant takes the tokens
  first and gives them back if its claim loses; a waiter that loses to nobody but finds its
  context cancelled on waking gives its tokens back too (as Go does).
"""

cimport cython
from libc.stdint cimport int64_t

from ftsync_atomic cimport (
    ftsync_atomic_i64,
    ftsync_i64_load,
    ftsync_i64_store,
    ftsync_i64_fetch_add,
    ftsync_i64_fetch_sub,
    ftsync_i64_compare_exchange,
)

from ._validate import check_wait
from ._parking cimport CANCELED, TIMED_OUT, Parker, WaitQueue


cdef enum:
    GRANTED = 0  # the claim of a grant (the other outcomes come from _parking)

# the largest size: leaves room so that ``avail + n`` cannot overflow int64
cdef int64_t MAX_SIZE = (<int64_t>1) << 62


@cython.final
@cython.auto_pickle(False)
cdef class _Waiter(Parker):
    """One blocked acquire and how many tokens it wants."""

    cdef int64_t n


cdef str _type_name(object value):
    return type(value).__name__


@cython.auto_pickle(False)
cdef class _TokenSemaphore:
    """The shared core; see Semaphore and WeightedSemaphore."""

    cdef ftsync_atomic_i64 _avail
    cdef ftsync_atomic_i64 _nwaiters
    cdef int64_t _size
    cdef bint _fast  # acquire may take tokens without the lock while nobody waits
    cdef cython.pymutex _lock
    cdef WaitQueue _queue  # the FIFO of parked waiters (lock held)
    cdef object __weakref__

    def __cinit__(self):
        self._queue = WaitQueue()

    cdef int _setup(self, object size, str name, bint fast) except -1:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"{name} must be an int, got {_type_name(size)}")
        if size < 0:
            raise ValueError(f"{name} must be >= 0, got {size}")
        if size > MAX_SIZE:
            raise ValueError(f"{name} must be <= 2**62, got {size}")
        self._size = size
        self._fast = fast
        ftsync_i64_store(&self._avail, size)
        ftsync_i64_store(&self._nwaiters, 0)
        return 0

    # -- introspection -------------------------------------------------------------------------

    @property
    def size(self):
        """The total number of tokens."""
        return self._size

    @property
    def available(self):
        """Tokens free right now (a snapshot)."""
        return ftsync_i64_load(&self._avail)

    @property
    def waiting(self):
        """Acquirers blocked right now (a snapshot)."""
        return ftsync_i64_load(&self._nwaiters)

    # -- argument checks (before anything changes) -----------------------------------------------

    cdef int64_t _count(self, object n) except -1:
        """``n`` as a token count; ``size + 1`` stands for "more than the size"."""
        if type(n) is not int:
            if not isinstance(n, int) or isinstance(n, bool):
                raise TypeError(f"n must be an int, got {_type_name(n)}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self._size:
            return self._size + 1
        return n

    # -- the token count -------------------------------------------------------------------------

    cdef inline bint _take(self, int64_t n) noexcept:
        """Take ``n`` free tokens with compare-and-swap; False if fewer are free."""
        cdef int64_t cur = ftsync_i64_load(&self._avail)
        while cur >= n:
            if ftsync_i64_compare_exchange(&self._avail, &cur, cur - n):
                return True
        return False

    cdef int _grant(self) except -1:
        """Grant head waiters, in order, while they fit (lock held)."""
        cdef _Waiter waiter
        while self._queue.head is not None:
            waiter = <_Waiter>self._queue.head.waiter
            if not self._take(waiter.n):
                return 0  # the head does not fit: everyone behind it waits (FIFO)
            self._queue.pop()
            if waiter.claim(GRANTED):
                ftsync_i64_fetch_sub(&self._nwaiters, 1)
                waiter.wake()
            else:  # it timed out or was cancelled meanwhile: it uncounts itself
                ftsync_i64_fetch_add(&self._avail, waiter.n)
        return 0

    # -- acquiring -------------------------------------------------------------------------------

    def acquire(self, n=1, *, timeout=None, ctx=None):
        """Acquire ``n`` tokens, blocking until they are free; returns True.

        Raises TimeoutError after ``timeout`` seconds (``timeout=0``: only if they are not
        free now) and ``ctx.err()`` if ``ctx`` is or gets cancelled; either way nothing is
        held.  ``n=0`` succeeds at once.  ``n`` above the size can never be acquired: it
        waits for its timeout or ctx, and without either (or with a ctx that can never be
        cancelled) raises ValueError at once instead of blocking forever.
        """
        cdef int64_t k
        cdef _Waiter waiter
        cdef int64_t outcome
        if timeout is not None or ctx is not None:
            timeout, ctx = check_wait(timeout, ctx)
        k = self._count(n)
        if k == 0:
            return True
        if k > self._size:
            if timeout is None and (ctx is None or not ctx._cancellable):  # nothing would end it
                raise ValueError(
                    f"n must be <= size ({self._size}) unless a timeout or ctx is given, got {n}: "
                    "it could never be acquired"
                )
            waiter = _Waiter.__new__(_Waiter)  # never queued: only its timeout or ctx ends it
            if waiter.park(timeout, ctx) == TIMED_OUT:
                raise TimeoutError(f"acquire({n}) timed out after {timeout} s: more than the size")
            ctx.raise_if_done()
        if self._fast and ftsync_i64_load(&self._nwaiters) == 0 and self._take(k):
            return True
        with self._lock:
            ftsync_i64_fetch_add(&self._nwaiters, 1)  # counted before looking at the tokens
            if self._queue.head is None and self._take(k):
                ftsync_i64_fetch_sub(&self._nwaiters, 1)
                return True
            if timeout == 0:
                ftsync_i64_fetch_sub(&self._nwaiters, 1)
                raise TimeoutError(f"acquire({n}) timed out: not enough tokens free")
            waiter = _Waiter.__new__(_Waiter)
            waiter.n = k
            self._queue.push(waiter, 0, None)
            self._grant()  # a release may have landed after our look: never sleep on free tokens
        outcome = waiter.park(timeout, ctx)
        if outcome == GRANTED:
            if ctx is not None and ctx.err() is not None:
                self._give_back(k)  # granted, but the context ended first: give them back (Go)
                ctx.raise_if_done()
            return True
        with self._lock:
            self._queue.remove(waiter)
            ftsync_i64_fetch_sub(&self._nwaiters, 1)
            self._grant()  # it may have been the head: those behind it may fit now
        if outcome == TIMED_OUT:
            raise TimeoutError(f"acquire({n}) timed out after {timeout} s")
        ctx.raise_if_done()

    def try_acquire(self, n=1):
        """Acquire ``n`` tokens only if free now and nobody is waiting; True if acquired."""
        cdef int64_t k = self._count(n)
        if k == 0:
            return True
        if k > self._size:
            return False
        if self._fast and ftsync_i64_load(&self._nwaiters) == 0:
            return self._take(k)
        with self._lock:
            return self._queue.head is None and self._take(k)

    # -- releasing -------------------------------------------------------------------------------

    def release(self, n=1):
        """Give back ``n`` tokens and wake the waiters that now fit, in order.

        Raises ValueError, changing nothing, if that would be more than is held.
        """
        cdef int64_t k = self._count(n)
        if k > self._size:
            raise ValueError(f"released more than held: n={n}, size={self._size}")
        if k != 0:
            self._release(k)

    cdef int _release(self, int64_t k) except -1:
        cdef int64_t cur = ftsync_i64_load(&self._avail)
        while True:
            if cur + k > self._size:
                raise ValueError(f"released more than held: n={k}, held={self._size - cur}")
            if ftsync_i64_compare_exchange(&self._avail, &cur, cur + k):
                break
        if ftsync_i64_load(&self._nwaiters) != 0:  # looked at after the tokens were added
            with self._lock:
                self._grant()
        return 0

    cdef int _give_back(self, int64_t k) except -1:
        ftsync_i64_fetch_add(&self._avail, k)
        if ftsync_i64_load(&self._nwaiters) != 0:
            with self._lock:
                self._grant()
        return 0

    def __enter__(self):
        if not (self._fast and ftsync_i64_load(&self._nwaiters) == 0 and self._take(1)):
            self.acquire(1)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._release(1)
        return False


@cython.auto_pickle(False)
cdef class Semaphore(_TokenSemaphore):
    """A counting semaphore of ``value`` tokens, bounded: releasing more than held is an error.

    ``acquire`` takes its tokens with one atomic compare-and-swap while nobody waits; blocked
    acquirers queue in FIFO order.
    """

    def __init__(self, value=1):
        self._setup(value, "value", True)

    def __repr__(self):
        return f"<Semaphore {self.available}/{self._size} free, {self.waiting} waiting>"


@cython.auto_pickle(False)
cdef class WeightedSemaphore(_TokenSemaphore):
    """Go's ``semaphore.Weighted``: ``size`` tokens, acquired ``n`` at a time, strictly FIFO.

    A new acquire queues behind existing waiters even when enough tokens are free, so a large
    request at the head is never starved by small ones.
    """

    def __init__(self, size):
        self._setup(size, "size", False)

    def __repr__(self):
        return f"<WeightedSemaphore {self.available}/{self._size} free, {self.waiting} waiting>"
