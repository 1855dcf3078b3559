"""lock_from_url for asyncio: the same schemes as patterns.dlock.lock_from_url, async locks."""

from __future__ import annotations

from typing import Any

from .._url import Flavour, build_lock
from ._base import AsyncDistributedLock

__all__ = ["lock_from_url"]

_LOCKS = Flavour(
    package="patterns.dlock.aio", memory=".memory:AsyncMemoryLock", redis=".redis:AsyncRedisLock",
    redlock=".redlock:AsyncRedlock", etcd=".etcd:AsyncEtcdLock", redis_client="redis.asyncio",
    etcd_needs=("httpx", "etcd"),
)


def lock_from_url(url: str, name: str, ttl: float, **options: Any) -> AsyncDistributedLock:
    """An asyncio lock for ``name`` on the server ``url`` names (see patterns.dlock.url);
    ``await lock.aclose()`` closes the clients it created."""
    lock: AsyncDistributedLock = build_lock(_LOCKS, url, name, ttl, options)
    return lock
