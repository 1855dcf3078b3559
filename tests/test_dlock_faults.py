"""The distributed locks under the faults they exist for: frozen, restarted and partitioned servers
(tests/faults.py), with clients built the two documented ways, sync and asyncio.

Every call runs under ``bounded``/``abounded`` (a hang fails the test with every stack), and the
whole module under a watchdog.  Bounds are the ones the locks promise, with a margin for a loaded
2-core CI machine.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
import redis.asyncio as aredis

from dlock_support import unique_name
from faults import abounded, atimed, bounded, timed, watchdog
from patterns.dlock import EtcdLock, FencedResource, LockLost, QuorumNotReached, RedisLock, Redlock, StaleToken
from patterns.dlock.aio import AsyncEtcdLock, AsyncRedisLock, AsyncRedlock

NODE_TIMEOUT = 0.2
SLACK = 0.2  # scheduling on a loaded CI machine; the bound is "a few ms" (benchmarks check speed)
CLIENT_WAYS = ["kwargs", "from_url"]


@pytest.fixture(autouse=True)
def _module_watchdog():
    with watchdog(240):
        yield


def _sync_client(server, way, socket_timeout=0.5):
    if way == "kwargs":
        return redis.Redis(host=server.host, port=server.port, socket_timeout=socket_timeout)
    return redis.Redis.from_url(server.url, socket_timeout=socket_timeout)


def _async_client(server, way, socket_timeout=0.5):
    if way == "kwargs":
        return aredis.Redis(host=server.host, port=server.port, socket_timeout=socket_timeout)
    return aredis.Redis.from_url(server.url, socket_timeout=socket_timeout)


# -- Redlock: a minority of nodes frozen ---------------------------------------------------------


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_redlock_one_of_three_frozen_every_call_within_node_timeout(redis_servers, way):
    nodes = redis_servers(3)
    clients = [_sync_client(s, way) for s in nodes]
    other_clients = [_sync_client(s, way) for s in nodes]
    name = unique_name("rl-minority")
    lock = Redlock(clients, name, 5, node_timeout=NODE_TIMEOUT)
    other = Redlock(other_clients, name, 5, node_timeout=NODE_TIMEOUT)
    try:
        assert bounded(lock.acquire, limit=5)  # every node connected before the fault
        bounded(lock.release, limit=5)
        nodes[0].freeze()
        try:
            for _ in range(5):
                got, took = timed(lock.acquire, limit=10)
                assert got is True and took <= NODE_TIMEOUT + SLACK, (got, took)
                result, took = timed(lock.extend, limit=10)
                assert result is None and took <= NODE_TIMEOUT + SLACK, (result, took)
                got, took = timed(other.acquire, timeout=0.3, limit=10)
                assert got is False and took <= 0.3 + NODE_TIMEOUT + SLACK, (got, took)
                result, took = timed(lock.release, limit=10)
                assert result is None and took <= NODE_TIMEOUT + SLACK, (result, took)
        finally:
            nodes[0].thaw()
        assert bounded(other.acquire, timeout=5, limit=10)  # the thawed node rejoins
        bounded(other.release, limit=5)
    finally:
        lock.close()
        other.close()
        for client in clients + other_clients:
            client.close()


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_redlock_two_of_three_frozen_every_call_says_quorum_not_reached(redis_servers, way):
    nodes = redis_servers(3)
    clients = [_sync_client(s, way) for s in nodes]
    name = unique_name("rl-majority")
    lock = Redlock(clients, name, 5, node_timeout=NODE_TIMEOUT)
    fresh = Redlock([_sync_client(s, way) for s in nodes], name + "-b", 5, node_timeout=NODE_TIMEOUT)
    try:
        assert bounded(lock.acquire, limit=5)
        assert bounded(fresh.acquire, limit=5)
        bounded(fresh.release, limit=5)
        nodes[0].freeze()
        nodes[1].freeze()
        try:
            for call, kwargs, budget in [
                (lock.extend, {}, NODE_TIMEOUT),
                (lock.owned, {}, NODE_TIMEOUT),
                (fresh.acquire, {"blocking": False}, NODE_TIMEOUT),
                (fresh.acquire, {"timeout": 0.4}, 0.4 + NODE_TIMEOUT),
                (lock.release, {}, NODE_TIMEOUT),
            ]:
                result, took = timed(call, limit=10, **kwargs)
                assert isinstance(result, QuorumNotReached), (call, result)
                assert took <= budget + SLACK, (call, took)
        finally:
            nodes[0].thaw()
            nodes[1].thaw()
    finally:
        lock.close()
        fresh.close()
        for client in clients + fresh._clients:
            client.close()


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_async_redlock_one_frozen_and_two_frozen(redis_servers, way):
    nodes = redis_servers(3)

    async def main():
        clients = [_async_client(s, way) for s in nodes]
        name = unique_name("arl")
        lock = AsyncRedlock(clients, name, 5, node_timeout=NODE_TIMEOUT)
        other = AsyncRedlock([_async_client(s, way) for s in nodes], name, 5, node_timeout=NODE_TIMEOUT)
        try:
            assert await abounded(lock.acquire(), 5)
            await abounded(lock.release(), 5)
            nodes[0].freeze()
            try:
                for _ in range(3):
                    got, took = await atimed(lock.acquire(), 10)
                    assert got is True and took <= NODE_TIMEOUT + SLACK, (got, took)
                    assert lock.validity > 4
                    result, took = await atimed(lock.extend(), 10)
                    assert result is None and took <= NODE_TIMEOUT + SLACK, (result, took)
                    got, took = await atimed(other.acquire(timeout=0.3), 10)
                    assert got is False and took <= 0.3 + NODE_TIMEOUT + SLACK, (got, took)
                    result, took = await atimed(lock.release(), 10)
                    assert result is None and took <= NODE_TIMEOUT + SLACK, (result, took)
                assert await abounded(lock.acquire(), 5)
                nodes[1].freeze()
                try:
                    for make, budget in [
                        (lock.extend, NODE_TIMEOUT),
                        (lambda: other.acquire(blocking=False), NODE_TIMEOUT),
                        (lambda: other.acquire(timeout=0.4), 0.4 + NODE_TIMEOUT),
                        (lock.release, NODE_TIMEOUT),
                    ]:
                        result, took = await atimed(make(), 10)
                        assert isinstance(result, QuorumNotReached), result
                        assert took <= budget + SLACK, took
                finally:
                    nodes[1].thaw()
            finally:
                nodes[0].thaw()
        finally:
            await lock.aclose()
            await other.aclose()
            for client in clients + other._clients:
                await client.aclose()

    asyncio.run(main())


def test_redlock_refuses_the_same_node_twice(redis_servers):
    (node,) = redis_servers(1)
    a = redis.Redis(host=node.host, port=node.port, socket_timeout=0.5)
    b = redis.Redis.from_url(node.url, socket_timeout=0.5)
    c = redis.Redis(host=node.host, port=node.port, db=1, socket_timeout=0.5)
    try:
        with pytest.raises(ValueError, match=r"clients must be distinct nodes: clients\[0\] and clients\[1\]"):
            Redlock([a, b, c], unique_name(), 5)
        with pytest.raises(ValueError, match="distinct"):
            AsyncRedlock([aredis.Redis(host=node.host, port=node.port)] * 2, unique_name(), 5)
    finally:
        for client in (a, b, c):
            client.close()


# -- a partitioned holder learns of its loss before anyone else holds the lock -------------------


class _LossWitness:
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, lock):
        with self.lock:
            self.calls.append(time.monotonic())


def _partitioned_holder(make_holder, make_rival, proxy, ttl):
    witness = _LossWitness()
    holder = make_holder(witness)
    rival = make_rival()
    try:
        assert bounded(holder.acquire, limit=10)
        time.sleep(ttl / 2)  # at least one renewal goes through
        assert bounded(holder.owned, limit=10)
        proxy.stall()
        got = bounded(rival.acquire, timeout=ttl * 4, limit=ttl * 6)
        seen_lost = holder.lost.is_set()
        acquired_at = time.monotonic()
        assert got, "the rival never acquired after the holder's ttl"
        assert seen_lost, "the rival acquired before the holder's loss was signalled"
        assert len(witness.calls) == 1 and witness.calls[0] <= acquired_at
        time.sleep(0.2)
        assert len(witness.calls) == 1  # on_lost runs once
        bounded(rival.release, limit=10)
    finally:
        proxy.heal()
        bounded(holder.close, limit=20)
        rival.close()


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_redis_partitioned_holder_is_lost_before_another_acquires(redis_servers, fault_proxy, way):
    (server,) = redis_servers(1)
    proxy = fault_proxy(server.host, server.port)
    name = unique_name("part")
    clients = [_sync_client(proxy, way, socket_timeout=2), _sync_client(server, way, socket_timeout=2)]
    try:
        _partitioned_holder(
            lambda witness: RedisLock(clients[0], name, 1, auto_renew=True, on_lost=witness),
            lambda: RedisLock(clients[1], name, 1),
            proxy, 1,
        )
    finally:
        for client in clients:
            client.close()


def test_redlock_partitioned_holder_is_lost_before_another_acquires(redis_servers, fault_proxy):
    nodes = redis_servers(3)
    proxies = [fault_proxy(s.host, s.port) for s in nodes]

    class AllProxies:
        def stall(self):
            for p in proxies:
                p.stall()

        def heal(self):
            for p in proxies:
                p.heal()

    name = unique_name("rpart")
    holder_clients = [_sync_client(p, "kwargs") for p in proxies]
    rival_clients = [_sync_client(s, "from_url") for s in nodes]
    try:
        _partitioned_holder(
            lambda witness: Redlock(holder_clients, name, 1, auto_renew=True, on_lost=witness),
            lambda: Redlock(rival_clients, name, 1),
            AllProxies(), 1,
        )
    finally:
        for client in holder_clients + rival_clients:
            client.close()


def test_etcd_partitioned_holder_is_lost_before_another_acquires(etcd_server, fault_proxy):
    proxy = fault_proxy(etcd_server.host, etcd_server.port)
    name = unique_name("epart")
    _partitioned_holder(
        lambda witness: EtcdLock(proxy.endpoint, name, 2, auto_renew=True, on_lost=witness),
        lambda: EtcdLock(etcd_server.endpoint, name, 2),
        proxy, 2,
    )


def test_etcd_session_partitioned_holder_is_lost_before_another_acquires(etcd_server, fault_proxy):
    from patterns.dlock import EtcdSession

    proxy = fault_proxy(etcd_server.host, etcd_server.port)
    name = unique_name("spart")
    sessions = [EtcdSession(proxy.endpoint, 2), EtcdSession(etcd_server.endpoint, 2)]
    try:
        _partitioned_holder(
            lambda witness: sessions[0].lock(name, on_lost=witness),
            lambda: sessions[1].lock(name),
            proxy, 2,
        )
    finally:
        for session in sessions:
            bounded(session.close, limit=20)


async def _apartitioned_holder(holder, rival, proxy, ttl, witness):
    try:
        assert await abounded(holder.acquire(), 10)
        await asyncio.sleep(ttl / 2)
        assert await abounded(holder.owned(), 10)
        proxy.stall()
        got = await abounded(rival.acquire(timeout=ttl * 4), ttl * 6)
        seen_lost = holder.lost.is_set()
        acquired_at = time.monotonic()
        assert got and seen_lost, (got, seen_lost)
        assert len(witness.calls) == 1 and witness.calls[0] <= acquired_at
        await asyncio.sleep(0.2)
        assert len(witness.calls) == 1
        await abounded(rival.release(), 10)
    finally:
        proxy.heal()
        await abounded(holder.aclose(), 20)
        await rival.aclose()


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_async_redis_partitioned_holder_is_lost_before_another_acquires(redis_servers, fault_proxy, way):
    (server,) = redis_servers(1)
    proxy = fault_proxy(server.host, server.port)

    async def main():
        name = unique_name("apart")
        witness = _LossWitness()
        a, b = _async_client(proxy, way, 2), _async_client(server, way, 2)
        try:
            await _apartitioned_holder(
                AsyncRedisLock(a, name, 1, auto_renew=True, on_lost=witness), AsyncRedisLock(b, name, 1),
                proxy, 1, witness,
            )
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(main())


def test_async_etcd_partitioned_holder_is_lost_before_another_acquires(etcd_server, fault_proxy):
    proxy = fault_proxy(etcd_server.host, etcd_server.port)

    async def main():
        name = unique_name("aepart")
        witness = _LossWitness()
        await _apartitioned_holder(
            AsyncEtcdLock(proxy.endpoint, name, 2, auto_renew=True, on_lost=witness),
            AsyncEtcdLock(etcd_server.endpoint, name, 2),
            proxy, 2, witness,
        )

    asyncio.run(main())


# -- fencing tokens across restarts --------------------------------------------------------------


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_redis_tokens_keep_increasing_after_a_restart_empty(redis_servers, way):
    (server,) = redis_servers(1)
    store = redis_servers(1)[0]  # the fenced resource lives elsewhere and survives
    name = unique_name("fence")
    client = _sync_client(server, way, socket_timeout=2)
    store_client = _sync_client(store, way, socket_timeout=2)
    resource = FencedResource(store_client, name + "-resource")
    try:
        a = RedisLock(client, name, 30)
        for _ in range(5):  # several tokens before the crash
            assert bounded(a.acquire, limit=5)
            bounded(a.release, limit=5)
        assert bounded(a.acquire, limit=5)
        a_token = a.token
        resource.write(a_token, "from A")
        server.restart_empty()  # A's hold and the counter are gone
        b = RedisLock(client, name, 30)
        assert bounded(b.acquire, blocking=False, limit=5)  # mutual exclusion was lost ...
        assert b.token > a_token  # ... but fencing holds
        resource.write(b.token, "from B")
        with pytest.raises(StaleToken):
            resource.write(a_token, "late from A")
        assert resource.read() == (b"from B", b.token)
        with pytest.raises(LockLost):
            bounded(a.release, limit=5)
        bounded(b.release, limit=5)
    finally:
        client.close()
        store_client.close()


def test_async_redis_tokens_keep_increasing_after_a_restart_empty(redis_servers):
    (server,) = redis_servers(1)

    async def main():
        client = _async_client(server, "from_url", 2)
        name = unique_name("afence")
        try:
            a = AsyncRedisLock(client, name, 30)
            assert await abounded(a.acquire(), 5)
            first = a.token
            server.restart_empty()
            b = AsyncRedisLock(client, name, 30)
            for _ in range(20):  # the client notices the restart on its first command
                try:
                    got = await abounded(b.acquire(blocking=False), 5)
                    break
                except Exception:  # noqa: BLE001 - a reset connection, once
                    await asyncio.sleep(0.05)
            assert got and b.token > first
            await b.release()
        finally:
            await client.aclose()

    asyncio.run(main())


def test_etcd_tokens_survive_a_restart_with_data(etcd_servers):
    (server,) = etcd_servers(1)
    name = unique_name("etoken")
    a = EtcdLock(server.endpoint, name, 5, request_timeout=2)
    try:
        assert bounded(a.acquire, limit=10)
        first = a.token
        bounded(a.release, limit=10)
        server.restart_with_data()
        b = EtcdLock(server.endpoint, name, 5, request_timeout=2)
        try:
            assert bounded(b.acquire, timeout=10, limit=20)
            assert b.token > first
            bounded(b.release, limit=10)
        finally:
            b.close()
    finally:
        a.close()


# -- a paused holder ------------------------------------------------------------------------------


def test_paused_holder_late_write_is_refused_and_release_says_lost(redis_server):
    name = unique_name("paused")
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    resource = FencedResource(client, name + "-resource")
    a, b = RedisLock(client, name, 0.3), RedisLock(client, name, 5)
    try:
        assert a.acquire()
        paused_token = a.token
        time.sleep(0.5)  # a GC pause longer than the ttl
        assert bounded(b.acquire, timeout=2, limit=5)
        resource.write(b.token, "from B")
        with pytest.raises(StaleToken):
            resource.write(paused_token, "from paused A")
        with pytest.raises(LockLost):
            a.release()
        assert resource.read() == (b"from B", b.token)
        b.release()
    finally:
        client.close()


# -- every blocking call keeps its word ----------------------------------------------------------


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_redis_acquire_on_a_frozen_server_returns_within_timeout_plus_one_socket_timeout(redis_servers, way):
    (server,) = redis_servers(1)
    client = _sync_client(server, way, socket_timeout=0.5)
    lock = RedisLock(client, unique_name("frozen"), 5)
    try:
        client.ping()
        server.freeze()
        try:
            result, took = timed(lock.acquire, timeout=1, limit=10)
            assert isinstance(result, Exception) or result is False, result
            assert took <= 1 + 0.5 + SLACK, took
        finally:
            server.thaw()
    finally:
        client.close()


def test_etcd_acquire_on_a_frozen_server_returns_within_timeout_plus_one_request_timeout(etcd_servers):
    (server,) = etcd_servers(1)
    lock = EtcdLock(server.endpoint, unique_name("efrozen"), 5, request_timeout=0.5)
    try:
        assert bounded(lock.locked, limit=5) is False
        server.freeze()
        try:
            result, took = timed(lock.acquire, timeout=1, limit=10)
            assert isinstance(result, Exception) or result is False, result
            assert took <= 1 + 0.5 + SLACK, took
        finally:
            server.thaw()
    finally:
        bounded(lock.close, limit=10)


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_async_redis_acquire_on_a_frozen_server_returns_within_timeout_plus_one_socket_timeout(redis_servers, way):
    (server,) = redis_servers(1)

    async def main():
        client = _async_client(server, way, 0.5)
        lock = AsyncRedisLock(client, unique_name("afrozen"), 5)
        try:
            await client.ping()
            server.freeze()
            try:
                result, took = await atimed(lock.acquire(timeout=1), 10)
                assert isinstance(result, Exception) or result is False, result
                assert took <= 1 + 0.5 + SLACK, took
            finally:
                server.thaw()
        finally:
            await client.aclose()

    asyncio.run(main())


def test_async_etcd_acquire_on_a_frozen_server_returns_within_timeout_plus_one_request_timeout(etcd_servers):
    (server,) = etcd_servers(1)

    async def main():
        lock = AsyncEtcdLock(server.endpoint, unique_name("aefrozen"), 5, request_timeout=0.5)
        try:
            assert await abounded(lock.locked(), 5) is False
            server.freeze()
            try:
                result, took = await atimed(lock.acquire(timeout=1), 10)
                assert isinstance(result, Exception) or result is False, result
                assert took <= 1 + 0.5 + SLACK, took
            finally:
                server.thaw()
        finally:
            await abounded(lock.aclose(), 10)

    asyncio.run(main())


@pytest.mark.parametrize("keep_lease", [False, True])
def test_sync_and_async_etcd_abort_an_acquire_with_the_same_requests(etcd_server, keep_lease):
    """A non-blocking acquire that finds the lock held: the same requests from both drivers,
    and no key of the loser left behind."""
    from dlock_support import b64, etcd_post, prefix_end

    name = unique_name("abort")
    holder = EtcdLock(etcd_server.endpoint, name, 5)
    sync_paths, async_paths = [], []
    try:
        assert holder.acquire()
        loser = EtcdLock(etcd_server.endpoint, name, 5, keep_lease=keep_lease)
        real = loser._post
        loser._post = lambda path, *a, **k: (sync_paths.append(path), real(path, *a, **k))[1]
        assert not bounded(loser.acquire, blocking=False, limit=10)
        loser.close()

        async def main():
            aloser = AsyncEtcdLock(etcd_server.endpoint, name, 5, keep_lease=keep_lease)
            areal = aloser._post

            async def counting(path, *a, **k):
                async_paths.append(path)
                return await areal(path, *a, **k)

            aloser._post = counting
            assert not await abounded(aloser.acquire(blocking=False), 10)
            await aloser.aclose()

        asyncio.run(main())
        keys = etcd_post(etcd_server.endpoint, "/v3/kv/range",
                         {"key": b64(name + "/"), "range_end": prefix_end(name + "/"), "count_only": True})
        assert int(keys.get("count", 0)) == 1  # the holder's key only
    finally:
        holder.close()
    assert sync_paths == async_paths, (sync_paths, async_paths)


@pytest.mark.parametrize("dlock_env", ["redis", "redlock", "etcd"], indirect=True)
def test_paused_holder_of_every_kind_is_fenced_and_told_on_release(dlock_env, redis_server):
    ttl = 1 if dlock_env.kind == "etcd" else 0.3
    name = unique_name("pause-kind")
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    resource = FencedResource(client, name + "-resource")
    a, b = dlock_env.new(name, ttl), dlock_env.new(name, 5)
    try:
        assert bounded(a.acquire, limit=10)
        paused_token = a.token
        time.sleep(ttl + 0.3)  # paused past its ttl
        assert bounded(b.acquire, timeout=10, limit=20)
        if dlock_env.fencing:
            resource.write(b.token, "from B")
            with pytest.raises(StaleToken):
                resource.write(paused_token, "late from A")
        with pytest.raises(LockLost):
            bounded(a.release, limit=10)
        bounded(b.release, limit=10)
    finally:
        client.close()
