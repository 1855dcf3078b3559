"""Semaphore and WeightedSemaphore: golang.org/x/sync/semaphore for threads, compiled.

``Semaphore(value)`` is a bounded counting semaphore; ``WeightedSemaphore(size)`` is Go's
``semaphore.Weighted``: ``n`` tokens at a time, strictly FIFO, so a large request at the head
is never starved by small ones::

    sem = WeightedSemaphore(10)
    sem.acquire(4, timeout=1.0, ctx=ctx)   # True, or TimeoutError / ctx.err()
    try:
        ...
    finally:
        sem.release(4)

    with Semaphore(8):                     # acquires 1, releases it on exit
        ...

Both classes share one contract:

- ``acquire(n=1, *, timeout=None, ctx=None)`` returns True or raises, like ``Channel``:
  TimeoutError after ``timeout`` seconds, ``ctx.err()`` when ``ctx`` is (or gets) cancelled;
  on either nothing is held.  A waiter granted its tokens after its ctx was cancelled gives
  them back and raises ``ctx.err()`` (as Go does).
- ``try_acquire(n=1)`` returns a bool and never blocks; it fails while others wait.
- ``release(n=1)``: releasing more than is held raises ValueError and changes nothing.
- ``n`` must be an int >= 0 (TypeError / ValueError otherwise, before anything changes);
  ``n=0`` succeeds at once.  ``n`` above the size can never be acquired: with a timeout or
  ctx it waits for them (without blocking anyone else, as Go does); with neither it raises
  ValueError at once instead of blocking forever.
- A waiter that times out or is cancelled at the head of the queue wakes those behind it
  that now fit.

``Semaphore.acquire`` takes its tokens with one atomic compare-and-swap while nobody waits;
``WeightedSemaphore.acquire`` decides under a lock so that newcomers queue behind waiters.
"""

from ._semaphore import Semaphore, WeightedSemaphore

__all__ = ["Semaphore", "WeightedSemaphore"]
