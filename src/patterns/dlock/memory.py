"""MemoryLock: the distributed-lock face inside one process, for development and tests.

Same semantics as RedisLock (ttl expiry, fencing tokens, extend, lost), kept in a registry in
this process: threads contend, processes do not share it.  ``lock_from_url("memory://", ...)``.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ._base import DistributedLock

__all__ = ["MemoryLock", "MemoryRegistry"]


class MemoryRegistry:
    """The shared state of in-process locks: who holds each name until when, and its fence counter."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._holders: dict[str, tuple[object, float]] = {}  # name -> (owner, expires at monotonic)
        self._fences: dict[str, int] = {}

    def _holder(self, name: str, now: float) -> object | None:  # with _cond held
        entry = self._holders.get(name)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._holders[name]
            return None
        return entry[0]

    def try_acquire(self, name: str, owner: object, ttl: float) -> tuple[int | None, float]:
        """(fencing token, 0) on success, else (None, seconds until the holder's ttl ends)."""
        with self._cond:
            now = time.monotonic()
            if self._holder(name, now) is None:
                self._holders[name] = (owner, now + ttl)
                fence = self._fences.get(name, 0) + 1
                self._fences[name] = fence
                return fence, 0.0
            return None, self._holders[name][1] - now

    def wait(self, timeout: float) -> None:
        """Sleep until some lock of this registry is released, or ``timeout`` seconds."""
        with self._cond:
            self._cond.wait(timeout)

    def release(self, name: str, owner: object) -> bool:
        """Drop ``owner``'s hold on ``name``; False if it does not hold it (expired or taken)."""
        with self._cond:
            if self._holder(name, time.monotonic()) is not owner:
                return False
            del self._holders[name]
            self._cond.notify_all()
            return True

    def extend(self, name: str, owner: object, ttl: float) -> bool:
        """Give ``owner``'s hold on ``name`` a fresh ``ttl``; False if it does not hold it."""
        with self._cond:
            now = time.monotonic()
            if self._holder(name, now) is not owner:
                return False
            self._holders[name] = (owner, now + ttl)
            return True

    def holder(self, name: str) -> object | None:
        """The owner holding ``name`` now, or None."""
        with self._cond:
            return self._holder(name, time.monotonic())

    def delete(self, name: str) -> None:
        """Remove a hold by hand (what an operator's DEL does to a Redis lock)."""
        with self._cond:
            self._holders.pop(name, None)
            self._cond.notify_all()


#: the registry MemoryLock uses unless given another
default_registry = MemoryRegistry()


class RegistryHold:
    """What MemoryLock and AsyncMemoryLock do with the registry (no waiting here: the drivers
    wait, a thread on the registry's condition, a task by polling)."""

    _name: str
    _ttl: float
    _token: int | None

    def _use_registry(self, registry: MemoryRegistry | None) -> None:
        self._registry = registry if registry is not None else default_registry
        self._owner: object | None = None

    def _try_take(self) -> float | None:
        """One try: None when taken (owner and token stored), else seconds the holder has left."""
        owner = object()
        fence, remaining_ttl = self._registry.try_acquire(self._name, owner, self._ttl)
        if fence is None:
            return remaining_ttl
        self._owner, self._token = owner, fence
        return None

    def _give_back(self) -> bool:
        owner, self._owner = self._owner, None
        return self._registry.release(self._name, owner)

    def _prolong(self, ttl: float) -> bool:
        return self._registry.extend(self._name, self._owner, ttl)

    def _is_ours(self) -> bool:
        return self._owner is not None and self._registry.holder(self._name) is self._owner

    def _is_taken(self) -> bool:
        return self._registry.holder(self._name) is not None

    def _drop(self) -> None:
        if self._owner is not None:
            self._give_back()


def check_registry(registry: object) -> None:
    if registry is not None and not isinstance(registry, MemoryRegistry):
        raise TypeError(f"registry must be a MemoryRegistry or None, got {type(registry).__name__}")


class MemoryLock(RegistryHold, DistributedLock):
    """An in-process lock with the distributed-lock face (see DistributedLock for the methods).

    ``registry``: where holds live (default: one per process).  Waiters are woken on release.
    """

    def __init__(self, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[[DistributedLock], object] | None = None,
                 registry: MemoryRegistry | None = None) -> None:
        check_registry(registry)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._use_registry(registry)

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        while True:
            remaining_ttl = self._try_take()
            if remaining_ttl is None:
                return True
            if deadline is None:
                wait = remaining_ttl
            else:
                wait = min(remaining_ttl, deadline - time.monotonic())
                if wait <= 0:
                    return False
            self._registry.wait(wait)

    def _release_impl(self) -> bool:
        return self._give_back()

    def _extend_impl(self, ttl: float) -> bool:
        return self._prolong(ttl)

    def _owned_impl(self) -> bool:
        return self._is_ours()

    def _locked_impl(self) -> bool:
        return self._is_taken()

    def _forget_impl(self) -> None:
        self._drop()
