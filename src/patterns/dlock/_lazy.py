"""Package attributes imported on first use, so that a lock kind's optional client (redis-py,
httpx) is imported only when that kind is used."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

#: The names each package imports on first use: (sync name, asyncio name or None, module), the
#: module relative to ``patterns.dlock`` and to ``patterns.dlock.aio`` alike.
LAZY_NAMES = [
    ("RedisLock", "AsyncRedisLock", ".redis"),
    ("Redlock", "AsyncRedlock", ".redlock"),
    ("EtcdLock", "AsyncEtcdLock", ".etcd"),
    ("EtcdSession", "AsyncEtcdSession", ".etcd"),
    ("FencedResource", None, ".fencing"),
    ("lock_from_url", "lock_from_url", ".url"),
]


def lazy_table(asyncio: bool) -> dict[str, str]:
    """{name: relative module} of the sync package, or of the asyncio one."""
    table = {}
    for sync_name, async_name, module in LAZY_NAMES:
        name = async_name if asyncio else sync_name
        if name is not None:
            table[name] = module
    return table


def lazy_attributes(package: str, table: dict[str, str], namespace: dict[str, Any],
                    public: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``: ``table`` maps a name to the
    relative module defining it; a name, once imported, is kept in ``namespace``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
