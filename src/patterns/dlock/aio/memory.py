"""AsyncMemoryLock: the asyncio twin of MemoryLock, on the same in-process registry.

Sync and async locks of one name exclude each other.  A waiting task polls the registry (every
few milliseconds, or when the holder's ttl ends), since a thread's release cannot wake a task.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..memory import MemoryRegistry, default_registry
from ._base import AsyncDistributedLock

__all__ = ["AsyncMemoryLock"]

_POLL = 0.002


class AsyncMemoryLock(AsyncDistributedLock):
    """MemoryLock for asyncio: an in-process lock with the distributed locks' face and fencing tokens."""

    def __init__(
        self,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[..., object] | None = None,
        registry: MemoryRegistry | None = None,
    ) -> None:
        if registry is not None and not isinstance(registry, MemoryRegistry):
            raise TypeError(f"registry must be a MemoryRegistry or None, got {type(registry).__name__}")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._registry = registry if registry is not None else default_registry
        self._owner: object | None = None

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        while True:
            owner = object()
            fence, remaining_ttl = self._registry.try_acquire(self._name, owner, self._ttl)
            if fence is not None:
                self._owner, self._token = owner, fence
                return True
            wait = min(_POLL, remaining_ttl)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            await asyncio.sleep(wait)

    async def _release_impl(self) -> bool:
        owner, self._owner = self._owner, None
        return self._registry.release(self._name, owner)

    async def _extend_impl(self, ttl: float) -> bool:
        return self._registry.extend(self._name, self._owner, ttl)

    async def _owned_impl(self) -> bool:
        return self._owner is not None and self._registry.holder(self._name) is self._owner

    async def _locked_impl(self) -> bool:
        return self._registry.holder(self._name) is not None

    async def _forget_impl(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            self._registry.release(self._name, owner)
