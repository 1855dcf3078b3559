"""The asyncio twins keep the face of the sync locks: the same checks, per kind, on real servers."""

import asyncio
import time

import pytest
import redis

from dlock_support import KINDS, unique_name

from patterns.dlock import LockError, LockLost, LockNotAcquired, LockNotOwned, QuorumNotReached
from patterns.dlock.aio import (
    AsyncEtcdLock,
    AsyncMemoryLock,
    AsyncRedisLock,
    AsyncRedlock,
    lock_from_url,
)

kinds = pytest.mark.parametrize("dlock_env", KINDS, indirect=True)
TYPES = {"memory": AsyncMemoryLock, "redis": AsyncRedisLock, "redlock": AsyncRedlock, "etcd": AsyncEtcdLock}


def _short_ttl(env):
    return 1 if env.kind == "etcd" else 0.3


def run(env, body):
    """Run ``body(new)`` in a fresh loop; ``new(name, ttl, **kw)`` makes async locks closed after."""

    async def main():
        made = []

        def new(name, ttl, **options):
            lock = lock_from_url(env.url, name, ttl, **options)
            assert type(lock) is TYPES[env.kind]
            made.append(lock)
            return lock

        try:
            await body(new)
        finally:
            for lock in made:
                await lock.aclose()

    asyncio.run(main())


@kinds
def test_acquire_release_tokens_and_with(dlock_env):
    async def body(new):
        name = unique_name()
        a, b = new(name, 5), new(name, 5, timeout=0.2)
        assert await a.acquire(blocking=False)
        assert await a.owned() and await b.locked() and not await b.owned()
        assert not await b.acquire(blocking=False)
        with pytest.raises(LockNotAcquired):
            async with b:
                raise AssertionError("the body ran without the lock")
        with pytest.raises(LockError, match="already held"):
            await a.acquire()
        first = a.token
        await a.release()
        async with b:
            assert await b.owned()
            if dlock_env.fencing:
                assert b.token > first
            else:
                assert b.token is None and first is None
        assert not await b.locked()
        with pytest.raises(LockNotOwned):
            await b.release()
        with pytest.raises(ValueError, match="ttl must be > 0 seconds, got -1"):
            new(name, -1)
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await a.acquire(timeout=-1)

    run(dlock_env, body)


@kinds
def test_a_late_holder_cannot_touch_the_next_owners_lock(dlock_env):
    async def body(new):
        name = unique_name()
        a, b = new(name, _short_ttl(dlock_env)), new(name, 5)
        await a.acquire()
        await asyncio.sleep(3.2 if dlock_env.kind == "etcd" else 0.45)
        assert await b.acquire(timeout=2)
        with pytest.raises(LockNotOwned):
            await a.extend()
        with pytest.raises(LockLost):
            await a.release()
        assert await b.owned()
        await b.release()

    run(dlock_env, body)


@kinds
def test_auto_renew_keeps_it_and_a_deleted_key_is_lost(dlock_env):
    async def body(new):
        ttl = _short_ttl(dlock_env)
        name = unique_name()
        calls = []

        async def on_lost(lock):
            calls.append(lock)

        a, b = new(name, ttl, auto_renew=True, on_lost=on_lost), new(name, ttl)
        await a.acquire()
        deadline = time.monotonic() + 3 * ttl
        while time.monotonic() < deadline:
            assert not await b.acquire(blocking=False)
            await asyncio.sleep(ttl / 4)
        assert await a.owned()
        dlock_env.delete(name)
        await asyncio.wait_for(a.lost.wait(), ttl + 1)
        assert calls == [a]
        with pytest.raises(LockLost):
            await a.owned()
        with pytest.raises(LockLost):
            await a.release()

    run(dlock_env, body)


@kinds
def test_tasks_count_exactly_under_the_lock(dlock_env):
    async def body(new):
        name = unique_name()
        box = {"n": 0, "inside": 0, "overlap": 0}

        async def worker(lock):
            for _ in range(25):
                async with lock:
                    box["inside"] += 1
                    box["overlap"] += box["inside"] != 1
                    value = box["n"]
                    await asyncio.sleep(0)
                    box["n"] = value + 1
                    box["inside"] -= 1

        await asyncio.gather(*(worker(new(name, 10)) for _ in range(4)))
        assert box == {"n": 100, "inside": 0, "overlap": 0}

    run(dlock_env, body)


def test_async_redlock_with_frozen_nodes(redis_servers):
    servers = redis_servers(3)

    async def main():
        clients = [redis.asyncio.Redis.from_url(s.url, socket_timeout=0.2) for s in servers]
        lock = AsyncRedlock(clients, unique_name(), 5, owns_clients=True)
        try:
            servers[0].pause()
            started = time.monotonic()
            assert await lock.acquire(timeout=1.5)
            assert time.monotonic() - started < 1.5
            await lock.release()
            servers[1].pause()
            started = time.monotonic()
            with pytest.raises(QuorumNotReached, match="1 of 3 nodes answered"):
                await lock.acquire(timeout=0.5)
            assert time.monotonic() - started < 2
            assert await clients[2].exists(lock.name) == 0
        finally:
            servers[0].resume()
            servers[1].resume()
            await lock.aclose()

    asyncio.run(main())


def test_the_sync_and_asyncio_faces_say_the_same_things():
    """Both faces share one bookkeeping core (patterns.dlock._hold): the same states in repr and
    the same errors with the same messages, step by step, on MemoryLock and AsyncMemoryLock."""
    from patterns.dlock import MemoryLock, MemoryRegistry

    def sync_steps():
        registry = MemoryRegistry()
        lock = MemoryLock("parity", 5, registry=registry)
        return _steps(lock, registry)

    def async_steps():
        async def main():
            registry = MemoryRegistry()
            lock = AsyncMemoryLock("parity", 5, registry=registry)
            return await _async_steps(lock, registry)

        return asyncio.run(main())

    sync, asynchronous = sync_steps(), async_steps()
    assert [step.replace("MemoryLock", "Lock") for step in sync] == \
        [step.replace("AsyncMemoryLock", "Lock") for step in asynchronous]


def _outcome(call):
    try:
        return f"ok {call()!r}"
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return f"{type(exc).__name__}: {exc}"


def _steps(lock, registry):
    seen = [repr(lock)]
    seen.append(_outcome(lambda: lock.acquire(blocking=False, timeout=1)))
    seen.append(_outcome(lock.release))
    seen.append(_outcome(lock.acquire))
    seen.append(repr(lock))
    seen.append(_outcome(lock.acquire))
    registry.delete("parity")
    seen.append(_outcome(lock.extend))
    seen.append(repr(lock))
    seen.append(_outcome(lock.owned))
    seen.append(_outcome(lock.release))
    lock.close()
    seen.append(_outcome(lock.acquire))
    return seen


async def _async_outcome(call):
    try:
        return f"ok {await call()!r}"
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return f"{type(exc).__name__}: {exc}"


async def _async_steps(lock, registry):
    seen = [repr(lock)]
    seen.append(await _async_outcome(lambda: lock.acquire(blocking=False, timeout=1)))
    seen.append(await _async_outcome(lock.release))
    seen.append(await _async_outcome(lock.acquire))
    seen.append(repr(lock))
    seen.append(await _async_outcome(lock.acquire))
    registry.delete("parity")
    seen.append(await _async_outcome(lock.extend))
    seen.append(repr(lock))
    seen.append(await _async_outcome(lock.owned))
    seen.append(await _async_outcome(lock.release))
    await lock.aclose()
    seen.append(await _async_outcome(lock.acquire))
    return seen
