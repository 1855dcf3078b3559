"""asyncio twins of the distributed locks: the same face with coroutines and ``async with``.

``AsyncRedisLock`` (redis.asyncio), ``AsyncRedlock`` (concurrent coroutines per round, no
executor), ``AsyncEtcdLock`` and ``AsyncEtcdSession`` (httpx.AsyncClient), ``AsyncMemoryLock`` and
``lock_from_url``.
Errors are those of :mod:`patterns.dlock`.  A lock object belongs to one event loop.
"""

from __future__ import annotations

from typing import Any

from ._base import AsyncDistributedLock
from .memory import AsyncMemoryLock

__all__ = [
    "AsyncDistributedLock",
    "AsyncEtcdLock",
    "AsyncEtcdSession",
    "AsyncMemoryLock",
    "AsyncRedisLock",
    "AsyncRedlock",
    "lock_from_url",
]

_LAZY = {
    "AsyncRedisLock": ".redis",
    "AsyncRedlock": ".redlock",
    "AsyncEtcdLock": ".etcd",
    "AsyncEtcdSession": ".etcd",
    "lock_from_url": ".url",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
