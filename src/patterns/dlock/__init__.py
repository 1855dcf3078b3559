"""Distributed locks with one face: RedisLock, Redlock, EtcdLock and the in-process MemoryLock.

Which to use:

- **EtcdLock** or **RedisLock** when correctness matters: both give a fencing token
  (``lock.token``, strictly increasing across owners); pass it to the resource you write and have
  the resource refuse stale tokens (:class:`FencedResource` shows how).  etcd is a consensus store,
  so its locks survive a server failover; a single Redis server is a single point of failure.
- **Redlock** for efficiency locks over several independent Redis nodes (survives a minority of
  nodes failing).  It has no fencing token (``token`` is always None): a holder paused past its
  ttl cannot be stopped by the resource, so do not use it to protect correctness.
- **MemoryLock** inside one process: development and tests, the same semantics.

For many etcd locks in one process, an :class:`EtcdSession` shares one lease, kept alive by one
thread, between them (etcd's Go ``concurrency.Session``): two requests per acquire+release.

``lock_from_url(url, name, ttl)`` builds any of them from ``redis://``, ``redlock://h1,h2,h3``,
``etcd://`` or ``memory://``.  :mod:`patterns.dlock.aio` has the asyncio twins (``AsyncRedisLock``,
``AsyncRedlock``, ``AsyncEtcdLock``, ``AsyncMemoryLock`` and its own ``lock_from_url``).  Redis needs the ``redis`` extra; the etcd
locks need nothing more (the standard library's ``http.client``), their asyncio twin the ``etcd``
extra (httpx).  Clients are imported only when the lock kind is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import DistributedLock
from ._errors import (
    LockConnectionError,
    LockError,
    LockLost,
    LockNotAcquired,
    LockNotOwned,
    QuorumNotReached,
    StaleToken,
)
from ._lazy import lazy_attributes as _lazy_attributes, lazy_table as _lazy_table
from .memory import MemoryLock, MemoryRegistry

__all__ = [
    "DistributedLock", "EtcdLock", "EtcdSession", "FencedResource", "LockConnectionError",
    "LockError", "LockLost", "LockNotAcquired", "LockNotOwned", "MemoryLock", "MemoryRegistry",
    "QuorumNotReached", "RedisLock", "Redlock", "StaleToken", "lock_from_url",
]

if TYPE_CHECKING:  # checkers see the real types; at runtime __getattr__ imports on first use
    from .etcd import EtcdLock, EtcdSession
    from .fencing import FencedResource
    from .redis import RedisLock
    from .redlock import Redlock
    from .url import lock_from_url

_LAZY = _lazy_table(asyncio=False)


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals(), __all__)
