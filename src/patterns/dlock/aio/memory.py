"""AsyncMemoryLock: the asyncio twin of MemoryLock, on the same in-process registry.

Sync and async locks of one name exclude each other.  A waiting task polls the registry (every
few milliseconds, or when the holder's ttl ends), since a thread's release cannot wake a task.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..memory import MemoryRegistry, RegistryHold, check_registry
from ._base import AsyncDistributedLock

__all__ = ["AsyncMemoryLock"]

_POLL = 0.002


class AsyncMemoryLock(RegistryHold, AsyncDistributedLock):
    """MemoryLock for asyncio: an in-process lock with the distributed locks' face and fencing tokens."""

    def __init__(self, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[..., object] | None = None, registry: MemoryRegistry | None = None) -> None:
        check_registry(registry)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._use_registry(registry)

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        while True:
            remaining_ttl = self._try_take()
            if remaining_ttl is None:
                return True
            wait = min(_POLL, remaining_ttl)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            await asyncio.sleep(wait)

    async def _release_impl(self) -> bool:
        return self._give_back()

    async def _extend_impl(self, ttl: float) -> bool:
        return self._prolong(ttl)

    async def _owned_impl(self) -> bool:
        return self._is_ours()

    async def _locked_impl(self) -> bool:
        return self._is_taken()

    async def _forget_impl(self) -> None:
        self._drop()
