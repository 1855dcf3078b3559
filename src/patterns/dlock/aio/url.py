"""lock_from_url for asyncio: the same schemes as patterns.dlock.lock_from_url, async locks."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .._validate import check_name, check_ttl
from ..url import _need
from ._base import AsyncDistributedLock

__all__ = ["lock_from_url"]


def lock_from_url(url: str, name: str, ttl: float, **options: Any) -> AsyncDistributedLock:
    """An asyncio lock for ``name`` on the server ``url`` names (see patterns.dlock.url);
    ``await lock.aclose()`` closes the clients it created."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    check_name(name)
    check_ttl(ttl)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"url must look like scheme://..., got {url!r}")
    if scheme == "memory":
        from .memory import AsyncMemoryLock

        return AsyncMemoryLock(name, ttl, **options)
    if scheme in ("redis", "rediss", "unix"):
        redis_asyncio = _need("redis.asyncio", "redis", url)

        from .redis import AsyncRedisLock

        client = redis_asyncio.Redis.from_url(url, socket_timeout=options.pop("socket_timeout", 2.0))
        return AsyncRedisLock(client, name, ttl, owns_client=True, **options)
    if scheme == "redlock":
        redis_asyncio = _need("redis.asyncio", "redis", url)

        from .redlock import AsyncRedlock

        socket_timeout = options.pop("socket_timeout", 0.2)
        hosts, _, path = rest.partition("/")
        nodes = [h for h in hosts.split(",") if h]
        if not nodes:
            raise ValueError(f"url must name at least one node: redlock://h1:p1,h2:p2,..., got {url!r}")
        clients = [redis_asyncio.Redis.from_url(f"redis://{n}/{path}", socket_timeout=socket_timeout) for n in nodes]
        return AsyncRedlock(clients, name, ttl, owns_clients=True, **options)
    if scheme in ("etcd", "etcds"):
        _need("httpx", "etcd", url)
        from .etcd import AsyncEtcdLock

        http = "https" if scheme == "etcds" else "http"
        return AsyncEtcdLock(f"{http}://{urlsplit(url).netloc}", name, ttl, **options)
    raise ValueError(f"url scheme must be redis, rediss, redlock, etcd, etcds or memory, got {scheme!r}")
