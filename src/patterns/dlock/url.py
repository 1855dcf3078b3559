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
from urllib.parse import urlsplit

from ._base import DistributedLock
from ._validate import check_name, check_ttl

__all__ = ["lock_from_url"]


def _need(module: str, extra: str, url: str) -> Any:
    """Import an optional client library, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, module.partition('.')[0]):
            raise
        scheme = url.partition("://")[0]
        raise ImportError(f"a {scheme}:// lock needs {module}: pip install 'ftsync[{extra}]'") from exc


def lock_from_url(url: str, name: str, ttl: float, **options: Any) -> DistributedLock:
    """A lock for ``name`` with ``ttl`` on the server ``url`` names; ``options`` go to the lock
    (``timeout``, ``auto_renew``, ``on_lost``, ...), except ``socket_timeout`` for Redis clients."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    check_name(name)
    check_ttl(ttl)
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if not _:
        raise ValueError(f"url must look like scheme://..., got {url!r}")
    if scheme == "memory":
        from .memory import MemoryLock

        return MemoryLock(name, ttl, **options)
    if scheme in ("redis", "rediss", "unix"):
        redis = _need("redis", "redis", url)

        from .redis import RedisLock

        socket_timeout = options.pop("socket_timeout", 2.0)
        client = redis.Redis.from_url(url, socket_timeout=socket_timeout)
        return RedisLock(client, name, ttl, owns_client=True, **options)
    if scheme == "redlock":
        redis = _need("redis", "redis", url)

        from .redlock import Redlock

        socket_timeout = options.pop("socket_timeout", 0.2)
        hosts, slash, path = rest.partition("/")
        nodes = [h for h in hosts.split(",") if h]
        if not nodes:
            raise ValueError(f"url must name at least one node: redlock://h1:p1,h2:p2,..., got {url!r}")
        clients = [
            redis.Redis.from_url(f"redis://{node}/{path}", socket_timeout=socket_timeout)
            for node in nodes
        ]
        return Redlock(clients, name, ttl, owns_clients=True, **options)
    if scheme in ("etcd", "etcds"):
        from .etcd import EtcdLock

        parts = urlsplit(url)
        http = "https" if scheme == "etcds" else "http"
        return EtcdLock(f"{http}://{parts.netloc}", name, ttl, **options)
    raise ValueError(f"url scheme must be redis, rediss, redlock, etcd, etcds or memory, got {scheme!r}")
