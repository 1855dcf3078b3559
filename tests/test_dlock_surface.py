"""One rule for every lock after close(); errors users meet name the public module and the fix."""

import asyncio
import subprocess
import sys

import pytest

from dlock_support import KINDS, unique_name
from patterns import dlock
from patterns.dlock import LockError


@pytest.mark.parametrize("dlock_env", KINDS, indirect=True)
def test_every_lock_refuses_acquire_after_close(dlock_env):
    lock = dlock_env.new(unique_name("closed"), 5)
    assert lock.acquire(timeout=5)
    lock.close()
    with pytest.raises(LockError, match="this lock is closed"):
        lock.acquire(blocking=False)
    lock.close()  # twice is fine


@pytest.mark.parametrize("url_kind", ["memory", "redis"])
def test_every_async_lock_refuses_acquire_after_aclose(url_kind, request):
    from patterns.dlock.aio import lock_from_url

    url = "memory://" if url_kind == "memory" else request.getfixturevalue("redis_server").url

    async def main():
        lock = lock_from_url(url, unique_name("aclosed"), 5)
        assert await lock.acquire()
        await lock.aclose()
        with pytest.raises(LockError, match="this lock is closed"):
            await lock.acquire(blocking=False)

    asyncio.run(main())


def test_a_lock_made_on_your_client_leaves_it_open_after_close(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        lock = dlock.RedisLock(client, unique_name(), 5)
        lock.close()
        assert client.ping()
        with pytest.raises(LockError, match="closed"):
            lock.acquire()
    finally:
        client.close()


def test_exceptions_name_the_public_module():
    for name in ("LockError", "LockNotAcquired", "LockNotOwned", "LockLost", "QuorumNotReached",
                 "LockConnectionError", "StaleToken"):
        cls = getattr(dlock, name)
        assert cls.__module__ == "patterns.dlock", cls
        assert getattr(sys.modules[cls.__module__], name) is cls


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redlock://127.0.0.1:1,127.0.0.1:2"])
@pytest.mark.parametrize("flavour", ["patterns.dlock", "patterns.dlock.aio"])
def test_lock_from_url_without_redis_py_names_the_extra(url, flavour):
    code = (
        "import sys; sys.modules['redis'] = None\n"
        f"from {flavour} import lock_from_url\n"
        "try:\n"
        f"    lock_from_url({url!r}, 'x', 5)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'ftsync[redis]'" in out.stdout, out.stdout + out.stderr
