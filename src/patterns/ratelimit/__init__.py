"""Rate limiters: in process (compiled, lock-free token bucket) and in Redis (one Lua script).

In process, from :mod:`patterns.ratelimit._local`:

- ``TokenBucket(rate, burst)``: Go's ``x/time/rate.Limiter`` (allow / reserve / wait), one
  compare-and-swap per decision; ``INF`` is the unlimited rate, ``every(interval)`` the rate of
  one token per interval.
- ``SlidingWindowLog(limit, window)``: exact, memory bounded by ``limit``, O(1) per call.
- ``SlidingWindowCounter(limit, window)``: two fixed windows weighted by overlap, O(1) memory.
- ``FixedWindow(limit, window)``: ``limit`` per clock-aligned window.

- ``KeyedLimiter(factory, max_keys=, idle_timeout=)``: a limiter per key in bounded memory.
- ``rate_limited(limiter, block=, timeout=, key=)``: a decorator for sync and async functions;
  a refusal raises ``RateLimited`` carrying ``retry_after``.

Every in-process limiter takes ``clock=``, a zero-argument callable returning monotonic seconds
(default ``time.monotonic``), and ``sleep=``, what ``wait`` sleeps with (default: real time), so
tests can drive time, waits included, by hand.  The Redis twins live in
:mod:`patterns.ratelimit.redis` (they need the ``redis`` extra, so they are not imported here).
"""

from ._local import (
    INF,
    FixedWindow,
    Reservation,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    every,
)
from .decorator import RateLimited, rate_limited
from .keyed import KeyedLimiter

__all__ = [
    "INF",
    "FixedWindow",
    "KeyedLimiter",
    "RateLimited",
    "Reservation",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
    "every",
    "rate_limited",
]
