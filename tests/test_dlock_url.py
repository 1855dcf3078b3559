"""lock_from_url picks the lock kind by scheme, and the package imports its clients lazily."""

import subprocess
import sys

import pytest

from dlock_support import unique_name

from patterns.dlock import EtcdLock, MemoryLock, RedisLock, Redlock, lock_from_url


def test_each_scheme_gives_its_lock(redis_server, redlock_nodes, etcd_server):
    name = unique_name()
    nodes = ",".join(f"{s.host}:{s.port}" for s in redlock_nodes)
    cases = [
        ("memory://", MemoryLock),
        (redis_server.url, RedisLock),
        (f"redlock://{nodes}/0", Redlock),
        (f"etcd://{etcd_server.host}:{etcd_server.port}", EtcdLock),
    ]
    for url, kind in cases:
        lock = lock_from_url(url, name, 2, timeout=1)
        try:
            assert type(lock) is kind and lock.name == name and lock.timeout == 1
            with lock:
                assert lock.owned()
        finally:
            lock.close()
    lock = lock_from_url(f"redlock://{nodes}", name, 2)
    assert lock.quorum == 2
    lock.close()


def test_bad_urls_are_refused():
    with pytest.raises(ValueError, match="url scheme must be"):
        lock_from_url("zookeeper://h:1", "x", 1)
    with pytest.raises(ValueError, match="url must look like"):
        lock_from_url("localhost:6379", "x", 1)
    with pytest.raises(TypeError, match="url must be a str"):
        lock_from_url(None, "x", 1)
    with pytest.raises(ValueError, match="ttl must be > 0"):
        lock_from_url("memory://", "x", 0)
    with pytest.raises(ValueError, match="at least one node"):
        lock_from_url("redlock://", "x", 1)


def test_importing_patterns_dlock_does_not_import_redis_or_httpx():
    code = (
        "import sys, patterns, patterns.dlock as d; "
        "assert 'redis' not in sys.modules and 'httpx' not in sys.modules, sorted(sys.modules); "
        "d.MemoryLock('x', 1); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_every_dlock_module_keeps_the_gil_disabled():
    from conftest import FREE_THREADED_BUILD

    if not FREE_THREADED_BUILD:
        pytest.skip("the GIL can only stay disabled on a free-threaded build")
    code = (
        "import sys, importlib, pkgutil, patterns.dlock as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module('patterns.dlock.' + m.name)\n"
        "import httpx, redis\n"
        "assert not sys._is_gil_enabled(), 'an import re-enabled the GIL'\n"
        "print('ok')\n"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "ok", out.stderr
