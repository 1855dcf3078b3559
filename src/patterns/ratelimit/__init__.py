"""Rate limiters: in process (compiled, lock-free token bucket) and in Redis (one Lua script).

In process, from :mod:`patterns.ratelimit._local`:

- ``TokenBucket(rate, burst)``: Go's ``x/time/rate.Limiter`` (allow / reserve / wait), one
  compare-and-swap per decision; ``INF`` is the unlimited rate.
- ``SlidingWindowLog(limit, window)``: exact, memory bounded by ``limit``, O(1) per call.
- ``SlidingWindowCounter(limit, window)``: two fixed windows weighted by overlap, O(1) memory.
- ``FixedWindow(limit, window)``: ``limit`` per clock-aligned window.

Every limiter takes ``clock=``, a zero-argument callable returning monotonic seconds
(default ``time.monotonic``), so tests can drive time by hand.  The Redis twins live in
:mod:`patterns.ratelimit.redis` (they need the ``redis`` extra, so they are not imported here).
"""

from ._local import (
    INF,
    FixedWindow,
    Reservation,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)

__all__ = [
    "INF",
    "FixedWindow",
    "Reservation",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
]
