"""RedisLock, Redlock (a cluster as one of its nodes) and the Redis rate limiters on a real Redis
Cluster of three masters, including a live move of the lock's slot to another master."""

from __future__ import annotations

import re

import pytest
from redis.cluster import RedisCluster as ClusterClient

from dlock_support import unique_name
from faults import bounded, watchdog
import redis

from patterns.dlock import FencedResource, Redlock, RedisLock


@pytest.fixture
def cluster_client(redis_cluster):
    client = ClusterClient(host=redis_cluster.host, port=redis_cluster.port, socket_timeout=2)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _watchdog():
    with watchdog(120):
        yield


def _node_id(cluster, node):
    return cluster.command(node, "CLUSTER", "MYID").split(b"\r\n")[1].decode()


def _owner(cluster, slot):
    slots = cluster.command(cluster.nodes[0], "CLUSTER", "NODES").decode()
    for line in slots.splitlines():
        fields = line.split()
        if len(fields) < 9 or "master" not in fields[2]:
            continue
        port = int(re.split(r"[:@]", fields[1])[1])
        for part in fields[8:]:
            if part.startswith("["):
                continue
            low, _, high = part.partition("-")
            if int(low) <= slot <= int(high or low):
                return next(n for n in cluster.nodes if n.port == port)
    raise AssertionError(f"no master owns slot {slot}")


def _move_slot(cluster, slot, source, target):
    """Migrate ``slot`` with its keys from ``source`` to ``target`` as ``redis-cli --cluster
    reshard`` does: IMPORTING/MIGRATING, MIGRATE the keys, then SETSLOT NODE on every master."""
    src_id, dst_id = _node_id(cluster, source), _node_id(cluster, target)
    assert cluster.command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == b"+OK\r\n"
    assert cluster.command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == b"+OK\r\n"
    while True:
        reply = cluster.command(source, "CLUSTER", "GETKEYSINSLOT", slot, 100)
        keys = re.findall(rb"\$\d+\r\n([^\r]*)\r\n", reply)
        if not keys:
            break
        moved = cluster.command(source, "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
        assert moved == b"+OK\r\n", moved
    for node in (target, source, *[n for n in cluster.nodes if n not in (source, target)]):
        assert cluster.command(node, "CLUSTER", "SETSLOT", slot, "NODE", dst_id) == b"+OK\r\n"


def test_redis_lock_on_a_cluster_needs_no_hash_tag(cluster_client):
    name = unique_name("orders")
    a, b = RedisLock(cluster_client, name, 5), RedisLock(cluster_client, name, 5)
    assert bounded(a.acquire, limit=10)
    assert not bounded(b.acquire, blocking=False, limit=10)
    first = a.token
    bounded(a.release, limit=10)
    assert bounded(b.acquire, timeout=2, limit=10) and b.token > first
    assert cluster_client.keyslot(f"{{{name}}}:fence") == cluster_client.keyslot(name)
    bounded(b.release, limit=10)


def test_redis_lock_keeps_working_when_its_slot_moves_to_another_master(redis_cluster, cluster_client):
    name = unique_name("moving")
    slot = cluster_client.keyslot(name)
    lock = RedisLock(cluster_client, name, 10)
    other = RedisLock(cluster_client, name, 10)
    resource = FencedResource(cluster_client, f"{{{name}}}:resource")
    assert bounded(lock.acquire, limit=10)
    resource.write(lock.token, "before")
    source = _owner(redis_cluster, slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    _move_slot(redis_cluster, slot, source, target)
    assert _owner(redis_cluster, slot) is target
    # the client learns of the move from a MOVED reply and follows it
    assert bounded(lock.owned, limit=10)
    bounded(lock.extend, limit=10)
    assert not bounded(other.acquire, blocking=False, limit=10)
    first = lock.token
    bounded(lock.release, limit=10)
    assert bounded(other.acquire, timeout=2, limit=10) and other.token > first
    resource.write(other.token, "after")
    assert resource.read() == (b"after", other.token)
    assert not bounded(lock.acquire, blocking=False, limit=10)
    bounded(other.release, limit=10)


def test_redis_lock_refuses_a_name_with_braces_that_are_no_hash_tag(cluster_client):
    with pytest.raises(ValueError, match="name must not contain"):
        RedisLock(cluster_client, "a}b", 5)
    lock = RedisLock(cluster_client, "job{7}", 5)  # its own hash tag: used as it is
    assert bounded(lock.acquire, limit=10)
    assert cluster_client.exists("job{7}:fence") == 1
    bounded(lock.release, limit=10)


@pytest.mark.parametrize("kind", ["RedisTokenBucket", "RedisSlidingWindowLog", "RedisSlidingWindowCounter", "RedisFixedWindow"])
def test_redis_rate_limiters_work_on_a_cluster(cluster_client, kind):
    from patterns.ratelimit import redis as ratelimit

    cls = getattr(ratelimit, kind)
    name = unique_name("rl")
    limiter = cls(cluster_client, name, 1, 3) if kind == "RedisTokenBucket" else cls(cluster_client, name, 3, 60)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]


# -- Redlock: a Redis Cluster as one of its nodes ------------------------------------------------


@pytest.fixture
def plain_nodes(redis_servers):
    clients = [redis.Redis(host=s.host, port=s.port, socket_timeout=0.5) for s in redis_servers(2)]
    yield clients
    for client in clients:
        client.close()


def test_redlock_takes_a_cluster_as_one_node(cluster_client, plain_nodes):
    name = unique_name("redlock")
    nodes = [cluster_client, *plain_nodes]
    lock, other = Redlock(nodes, name, 5, node_timeout=0.5), Redlock(nodes, name, 5, node_timeout=0.5)
    assert bounded(lock.acquire, limit=10)
    # held on all three nodes: the cluster's master for the key's slot, and the two servers
    assert cluster_client.exists(name) == 1 and all(c.exists(name) == 1 for c in plain_nodes)
    assert not bounded(other.acquire, blocking=False, limit=10)
    assert bounded(lock.owned, limit=10)
    bounded(lock.release, limit=10)
    assert cluster_client.exists(name) == 0 and all(c.exists(name) == 0 for c in plain_nodes)
    assert bounded(other.acquire, limit=10)
    bounded(other.release, limit=10)
    lock.close()
    other.close()


def test_redlock_follows_its_key_when_the_slot_moves_within_the_round(redis_cluster, cluster_client, plain_nodes):
    name = unique_name("redlock-moving")
    slot = cluster_client.keyslot(name)
    lock = Redlock([cluster_client, *plain_nodes], name, 10, node_timeout=0.5)
    assert bounded(lock.acquire, limit=10)
    source = _owner(redis_cluster, slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    _move_slot(redis_cluster, slot, source, target)
    # the old master answers MOVED; the same round asks the new one, so all three extend
    bounded(lock.extend, 30, limit=10)
    assert cluster_client.pttl(name) > 20_000
    assert all(c.pttl(name) > 20_000 for c in plain_nodes)
    bounded(lock.release, limit=10)
    assert cluster_client.exists(name) == 0
    lock.close()


def test_redlock_refuses_the_same_cluster_twice(redis_cluster, cluster_client, plain_nodes):
    second = ClusterClient(host=redis_cluster.host, port=redis_cluster.nodes[1].port, socket_timeout=2)
    try:
        with pytest.raises(ValueError, match="distinct nodes"):
            Redlock([cluster_client, second, plain_nodes[0]], unique_name(), 5)
    finally:
        second.close()


def test_redlock_wants_a_socket_timeout_on_a_cluster_client_too(redis_cluster, plain_nodes):
    bare = ClusterClient(host=redis_cluster.host, port=redis_cluster.port)
    try:
        with pytest.raises(ValueError, match="socket_timeout"):
            Redlock([bare, *plain_nodes], unique_name(), 5)
    finally:
        bare.close()


def test_async_redlock_takes_a_cluster_as_one_node(redis_cluster, plain_nodes):
    import asyncio

    import redis.asyncio as aredis
    from redis.asyncio.cluster import RedisCluster as AsyncClusterClient

    from patterns.dlock.aio import AsyncRedlock

    name = unique_name("aredlock")

    async def main():
        cluster = AsyncClusterClient(host=redis_cluster.host, port=redis_cluster.port, socket_timeout=2)
        plain = [aredis.Redis(**{k: c.connection_pool.connection_kwargs[k] for k in ("host", "port")},
                              socket_timeout=0.5) for c in plain_nodes]
        nodes = [cluster, *plain]
        lock, other = AsyncRedlock(nodes, name, 10, node_timeout=1), AsyncRedlock(nodes, name, 10, node_timeout=1)
        try:
            assert await asyncio.wait_for(lock.acquire(), 10)
            assert await cluster.exists(name) == 1  # on the master of the key's slot
            assert not await asyncio.wait_for(other.acquire(blocking=False), 10)
            await asyncio.wait_for(lock.release(), 10)
            assert await cluster.exists(name) == 0
            with pytest.raises(ValueError, match="distinct nodes"):
                AsyncRedlock([cluster, cluster, plain[0]], name, 5)
            await lock.aclose()
            await other.aclose()
            assert await cluster.ping()  # the locks do not close a cluster client they were given
        finally:
            await cluster.aclose()
            for client in plain:
                await client.aclose()

    asyncio.run(main())
