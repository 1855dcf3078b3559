"""RedisLock and the Redis rate limiters on a real Redis Cluster of three masters, including a
live move of the lock's slot to another master."""

from __future__ import annotations

import re

import pytest
from redis.cluster import RedisCluster as ClusterClient

from dlock_support import unique_name
from faults import bounded, watchdog
from patterns.dlock import FencedResource, RedisLock


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
