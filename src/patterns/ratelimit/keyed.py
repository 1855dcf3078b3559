"""KeyedLimiter: one limiter per key (per user, per IP) in bounded memory.

::

    per_ip = KeyedLimiter(lambda: TokenBucket(10, 20), max_keys=100_000, idle_timeout=60)
    if not per_ip.allow(request.remote_addr): ...

The hot path is a dict lookup (thread-safe without a lock, also free-threaded), one atomic
increment that pins the entry while the call uses its limiter, a timestamp write and one
atomic decrement; creating a key takes a lock.  Memory stays bounded two ways:

- ``idle_timeout``: keys unused that long are dropped (swept at most twice per
  ``idle_timeout``).  Choose it at least as long as a limiter takes to reset (``burst / rate``
  for a bucket, ``window`` for a window): a dropped key comes back as a fresh, full limiter,
  which then admits nothing it would not have admitted anyway.
- ``max_keys``: when a new key would exceed it, the least recently used tenth is dropped.
  Under that pressure a busy key can be forgotten and start afresh: the price of the bound.

A key is dropped only while no call is using its limiter (the pin), and a call that finds
its entry dropped looks the key up again, so one key never has two limiters admitting at
once.  ``limiter(key)`` hands the limiter out unpinned: a caller that keeps it and uses it
later can use a limiter already dropped; ``with keyed.hold(key) as lim:`` pins it instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable

from atomics import AtomicInt64

__all__ = ["KeyedLimiter"]

_DROPPED = -(1 << 62)  # an entry's pin count once it is dropped: every later pin sees < 0


class _Entry:
    __slots__ = ("limiter", "pins", "used")

    def __init__(self, limiter: Any, now: float) -> None:
        self.limiter = limiter
        self.used = now
        self.pins = AtomicInt64(0)


class _Hold:
    """``with keyed.hold(key) as lim``: the key's limiter, pinned for the block."""

    __slots__ = ("_entry", "_keyed", "_key")

    def __init__(self, keyed: KeyedLimiter, key: Hashable) -> None:
        self._keyed = keyed
        self._key = key
        self._entry: _Entry | None = None

    def __enter__(self) -> Any:
        self._entry = self._keyed._pin(self._key)
        return self._entry.limiter

    def __exit__(self, *exc: object) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.pins.dec()

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


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
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self._next_sweep = self._clock() + (self._idle or 0) / 2

    def _pin(self, key: Hashable) -> _Entry:
        """The entry of ``key``, made on first use, pinned (the caller unpins it)."""
        now = self._clock()
        entry = self._entries.get(key)
        while entry is None or entry.pins.inc() < 0:
            # new, or dropped between the lookup and the pin: under the lock the sweep is
            # over and the dict says what the key's entry is now
            entry = self._create(key, now)
        entry.used = now
        if self._idle is not None and now >= self._next_sweep:
            self._sweep(now)
        return entry

    def limiter(self, key: Hashable) -> Any:
        """The limiter of ``key``, made on first use (not pinned: see ``hold``)."""
        entry = self._pin(key)
        entry.pins.dec()
        return entry.limiter

    def hold(self, key: Hashable) -> _Hold:
        """``with keyed.hold(key) as lim:`` (or ``async with``): the limiter of ``key``,
        which cannot be dropped before the block ends."""
        return _Hold(self, key)

    def _create(self, key: Hashable, now: float) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            limiter = self._factory()
            if len(self._entries) >= self._max_keys:
                self._evict_lru()
            entry = _Entry(limiter, now)
            self._entries[key] = entry
            return entry

    def _drop(self, key: Hashable, entry: _Entry) -> bool:
        """Drop ``entry`` if no call has it pinned (lock held); a pin after this sees < 0."""
        if entry.pins.compare_and_swap(0, _DROPPED):
            del self._entries[key]
            return True
        return False

    def _evict_lru(self) -> None:
        """Drop the least recently used tenth (lock held): amortised O(log n) per new key.
        A pinned entry (in use right now) is skipped."""
        count = max(1, len(self._entries) // 10)
        items = sorted(self._entries.items(), key=lambda item: item[1].used)
        for key, entry in items:
            if count == 0:
                break
            count -= self._drop(key, entry)

    def _sweep(self, now: float) -> None:
        with self._lock:
            if now < self._next_sweep:
                return
            self._next_sweep = now + self._idle / 2
            edge = now - self._idle
            for key, entry in list(self._entries.items()):
                if entry.used < edge and self._drop(key, entry) and entry.used >= edge:
                    # A call pinned, stamped and unpinned it between the look and the drop:
                    # not idle after all.  Nobody can pin the dropped entry any more, so its
                    # limiter, state and all, goes back under a fresh entry (dropping it
                    # would hand the key a fresh, full limiter right after a use).
                    self._entries[key] = _Entry(entry.limiter, entry.used)

    def allow(self, key: Hashable, n: int = 1) -> bool:
        """``allow(n)`` on the key's limiter."""
        entry = self._pin(key)
        try:
            return entry.limiter.allow(n)
        finally:
            entry.pins.dec()

    def wait(self, key: Hashable, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """``wait(n, timeout, ctx)`` on the key's limiter."""
        entry = self._pin(key)
        try:
            return entry.limiter.wait(n, timeout, ctx)
        finally:
            entry.pins.dec()

    def retry_after(self, key: Hashable, n: int = 1) -> float:
        """``retry_after(n)`` of the key's limiter."""
        entry = self._pin(key)
        try:
            return entry.limiter.retry_after(n)
        finally:
            entry.pins.dec()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return f"<KeyedLimiter {len(self)} keys, max {self._max_keys}, idle_timeout {self._idle}>"
