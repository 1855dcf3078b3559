"""KeyedLimiter: one limiter per key (per user, per IP) in bounded memory.

::

    per_ip = KeyedLimiter(lambda: TokenBucket(10, 20), max_keys=100_000, idle_timeout=60)
    if not per_ip.allow(request.remote_addr): ...

The hot path is a dict lookup (thread-safe without a lock, also free-threaded) and a
timestamp write; creating a key takes a lock.  Memory stays bounded two ways:

- ``idle_timeout``: keys unused that long are dropped (swept at most twice per
  ``idle_timeout``).  Choose it at least as long as a limiter takes to reset (``burst / rate``
  for a bucket, ``window`` for a window): a dropped key comes back as a fresh, full limiter,
  which then admits nothing it would not have admitted anyway.
- ``max_keys``: when a new key would exceed it, the least recently used tenth is dropped.
  Under that pressure a busy key can be forgotten and start afresh: the price of the bound.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any, Callable, Hashable

__all__ = ["KeyedLimiter"]


class KeyedLimiter:
    """``factory()`` makes the limiter of a key on first use; calls take the key first."""

    def __init__(self, factory: Callable[[], Any], *, max_keys: int = 100_000,
                 idle_timeout: float | None = None, clock: Callable[[], float] | None = None) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be a zero-argument callable, got {type(factory).__name__}")
        if not isinstance(max_keys, int) or isinstance(max_keys, bool):
            raise TypeError(f"max_keys must be an int, got {type(max_keys).__name__}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        if idle_timeout is not None:
            if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)):
                raise TypeError(f"idle_timeout must be a number of seconds or None, got {type(idle_timeout).__name__}")
            if not idle_timeout > 0:
                raise ValueError(f"idle_timeout must be > 0 or None, got {idle_timeout!r}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a zero-argument callable or None, got {type(clock).__name__}")
        self._factory = factory
        self._max_keys = max_keys
        self._idle = None if idle_timeout is None else float(idle_timeout)
        self._clock = clock or time.monotonic
        self._entries: dict[Hashable, list] = {}  # key -> [limiter, last use]
        self._lock = threading.Lock()
        self._next_sweep = self._clock() + (self._idle or 0) / 2

    def limiter(self, key: Hashable) -> Any:
        """The limiter of ``key``, made on first use."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._create(key, now)
        else:
            entry[1] = now
        if self._idle is not None and now >= self._next_sweep:
            self._sweep(now)
        return entry[0]

    def _create(self, key: Hashable, now: float) -> list:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry[1] = now
                return entry
            limiter = self._factory()
            if len(self._entries) >= self._max_keys:
                self._evict_lru()
            entry = [limiter, now]
            self._entries[key] = entry
            return entry

    def _evict_lru(self) -> None:
        """Drop the least recently used tenth (lock held): amortised O(log n) per new key."""
        count = max(1, len(self._entries) // 10)
        items = list(self._entries.items())
        for key, entry in heapq.nsmallest(count, items, key=lambda item: item[1][1]):
            if self._entries.get(key) is entry:
                del self._entries[key]

    def _sweep(self, now: float) -> None:
        with self._lock:
            if now < self._next_sweep:
                return
            self._next_sweep = now + self._idle / 2
            edge = now - self._idle
            for key, entry in list(self._entries.items()):
                if entry[1] < edge and self._entries.get(key) is entry:
                    del self._entries[key]

    def allow(self, key: Hashable, n: int = 1) -> bool:
        """``allow(n)`` on the key's limiter."""
        return self.limiter(key).allow(n)

    def wait(self, key: Hashable, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """``wait(n, timeout, ctx)`` on the key's limiter."""
        return self.limiter(key).wait(n, timeout, ctx)

    def retry_after(self, key: Hashable, n: int = 1) -> float:
        """``retry_after(n)`` of the key's limiter."""
        return self.limiter(key).retry_after(n)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return f"<KeyedLimiter {len(self)} keys, max {self._max_keys}, idle_timeout {self._idle}>"
