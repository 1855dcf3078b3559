"""asyncio twins of the distributed locks: the same face with coroutines and ``async with``.

``AsyncRedisLock`` (redis.asyncio), ``AsyncRedlock`` (concurrent coroutines per round, no
executor), ``AsyncEtcdLock`` and ``AsyncEtcdSession`` (httpx.AsyncClient), ``AsyncMemoryLock`` and
``lock_from_url``.
Errors are those of :mod:`patterns.dlock`.  A lock object belongs to one event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes, lazy_table as _lazy_table
from ._base import AsyncDistributedLock
from .memory import AsyncMemoryLock

__all__ = [
    "AsyncDistributedLock", "AsyncEtcdLock", "AsyncEtcdSession", "AsyncMemoryLock",
    "AsyncRedisLock", "AsyncRedlock", "lock_from_url",
]

if TYPE_CHECKING:  # checkers see the real types; at runtime __getattr__ imports on first use
    from .etcd import AsyncEtcdLock, AsyncEtcdSession
    from .redis import AsyncRedisLock
    from .redlock import AsyncRedlock
    from .url import lock_from_url

_LAZY = _lazy_table(asyncio=True)


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals(), __all__)
