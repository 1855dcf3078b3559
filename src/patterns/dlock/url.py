"""lock_from_url: pick the lock kind by URL scheme.

- ``redis://[:password@]host:port[/db]`` (``rediss://`` for TLS): RedisLock
- ``redlock://host1:port1,host2:port2,host3:port3[/db]``: Redlock over independent nodes
- ``etcd://host:port`` (``etcds://`` for https): EtcdLock through the v3 JSON gateway
- ``memory://``: MemoryLock (in this process)

The lock owns the clients it creates here: ``lock.close()`` closes them.  Redis clients get a
``socket_timeout`` (keyword ``socket_timeout``, default 2 s; Redlock nodes default to 0.2 s) so a
frozen server cannot stall a call forever.
"""

from __future__ import annotations

from typing import Any

from ._base import DistributedLock
from ._url import Flavour, build_lock

__all__ = ["lock_from_url"]

_LOCKS = Flavour(
    package="patterns.dlock", memory=".memory:MemoryLock", redis=".redis:RedisLock", redlock=".redlock:Redlock",
    etcd=".etcd:EtcdLock", redis_client="redis",
)


def lock_from_url(url: str, name: str, ttl: float, **options: Any) -> DistributedLock:
    """A lock for ``name`` with ``ttl`` on the server ``url`` names; ``options`` go to the lock
    (``timeout``, ``auto_renew``, ``on_lost``, ...), except ``socket_timeout`` for Redis clients."""
    lock: DistributedLock = build_lock(_LOCKS, url, name, ttl, options)
    return lock
