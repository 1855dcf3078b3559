"""Reading a lock URL and building its lock, for both ``lock_from_url`` functions: the schemes,
their checks and messages live here once; each caller names only its own lock classes.

Nothing is imported until a scheme is used, so that a lock kind's optional client (redis-py,
httpx) is needed only by that kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._validate import check_name, check_ttl

__all__ = ["Flavour", "build_lock", "need"]

_SCHEMES = "redis, rediss, redlock, etcd, etcds or memory"


@dataclass(frozen=True)
class Flavour:
    """What one ``lock_from_url`` builds: ``package`` (where the lock modules live), the lock
    class of each kind as ``"module:Class"`` relative to it, the redis-py module whose ``Redis``
    makes the clients, and the module (and extra) an etcd lock needs beyond the stdlib, if any."""

    package: str
    memory: str
    redis: str
    redlock: str
    etcd: str
    redis_client: str
    etcd_needs: tuple[str, str] | None = None

    def lock_class(self, kind: str) -> Any:
        module, _, name = getattr(self, kind).partition(":")
        return getattr(importlib.import_module(module, self.package), name)


def need(module: str, extra: str, url: str) -> Any:
    """Import an optional client library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, module.partition('.')[0]):
            raise
        scheme = url.partition("://")[0]
        raise ImportError(f"a {scheme}:// lock needs {module}: pip install 'ftsync[{extra}]'") from exc


def build_lock(flavour: Flavour, url: str, name: str, ttl: float, options: dict[str, Any]) -> Any:
    """The lock ``url`` names (see patterns.dlock.url for the schemes); ``options`` go to the
    lock, except ``socket_timeout`` for Redis clients (default 2 s; Redlock nodes 0.2 s)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    check_name(name)
    check_ttl(ttl)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"url must look like scheme://..., got {url!r}")
    if scheme == "memory":
        return flavour.lock_class("memory")(name, ttl, **options)
    if scheme in ("redis", "rediss", "unix"):
        redis = need(flavour.redis_client, "redis", url)
        client = redis.Redis.from_url(url, socket_timeout=options.pop("socket_timeout", 2.0))
        return flavour.lock_class("redis")(client, name, ttl, owns_client=True, **options)
    if scheme == "redlock":
        redis = need(flavour.redis_client, "redis", url)
        socket_timeout = options.pop("socket_timeout", 0.2)
        hosts, _, path = rest.partition("/")
        nodes = [h for h in hosts.split(",") if h]
        if not nodes:
            raise ValueError(f"url must name at least one node: redlock://h1:p1,h2:p2,..., got {url!r}")
        clients = [redis.Redis.from_url(f"redis://{node}/{path}", socket_timeout=socket_timeout) for node in nodes]
        return flavour.lock_class("redlock")(clients, name, ttl, owns_clients=True, **options)
    if scheme in ("etcd", "etcds"):
        if flavour.etcd_needs is not None:
            need(*flavour.etcd_needs, url)
        http = "https" if scheme == "etcds" else "http"
        return flavour.lock_class("etcd")(f"{http}://{urlsplit(url).netloc}", name, ttl, **options)
    raise ValueError(f"url scheme must be {_SCHEMES}, got {scheme!r}")
