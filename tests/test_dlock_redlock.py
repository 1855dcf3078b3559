"""Redlock under faults: frozen nodes (SIGSTOP), a node restarted empty, no partial holds."""

import time

import pytest
import redis

from dlock_support import unique_name

from patterns.dlock import QuorumNotReached, Redlock

BOUND = 1.0  # seconds an acquire may take with frozen nodes (node_timeout 0.1 s per round)


@pytest.fixture
def nodes(redis_servers):
    servers = redis_servers(3)
    clients = [redis.Redis.from_url(s.url, socket_timeout=0.1) for s in servers]
    yield servers, clients
    for server in servers:
        server.resume()
    for client in clients:
        client.close()


def _lock(clients, name, ttl=5, **options):
    options.setdefault("node_timeout", 0.1)
    return Redlock(clients, name, ttl, **options)


def test_one_frozen_node_of_three_still_gives_the_lock(nodes):
    servers, clients = nodes
    lock = _lock(clients, unique_name())
    try:
        servers[0].pause()
        started = time.monotonic()
        assert lock.acquire(timeout=BOUND)
        assert time.monotonic() - started < BOUND
        assert lock.token is None
        assert 4.5 < lock.validity < 5
        assert lock.owned()
        lock.extend()
        lock.release()
    finally:
        servers[0].resume()
        lock.close()


def test_two_frozen_nodes_of_three_raise_quorum_not_reached_and_leave_no_key(nodes):
    servers, clients = nodes
    name = unique_name()
    lock = _lock(clients, name)
    try:
        servers[0].pause()
        servers[1].pause()
        started = time.monotonic()
        with pytest.raises(QuorumNotReached, match=f"1 of 3 nodes answered, 2 needed.*{servers[0].port}"):
            lock.acquire(timeout=1)
        assert time.monotonic() - started < 1 + BOUND
        started = time.monotonic()
        with pytest.raises(QuorumNotReached):
            lock.acquire()  # untimed: reported after a few rounds, not waited on forever
        assert time.monotonic() - started < 2 * BOUND
        with pytest.raises(QuorumNotReached):
            lock.acquire(blocking=False)
        assert clients[2].exists(name) == 0  # the healthy node keeps no partial hold
        assert lock.token is None and not lock.lost.is_set()
    finally:
        servers[0].resume()
        servers[1].resume()
        lock.close()


def test_a_node_restarted_empty_does_not_let_a_second_owner_in(nodes):
    servers, clients = nodes
    name = unique_name()
    a, b = _lock(clients, name), _lock(clients, name)
    try:
        assert a.acquire(blocking=False)
        servers[0].restart()  # comes back without a's key
        assert clients[0].exists(name) == 0
        assert not b.acquire(blocking=False)
        assert not b.acquire(timeout=0.3)
        values = [c.get(name) for c in clients[1:]]
        assert values[0] == values[1] is not None  # still a's value, no partial hold of b's
        assert clients[0].exists(name) == 0
        assert a.owned()
        a.extend()
        a.release()
        assert b.acquire(timeout=1)
        b.release()
    finally:
        a.close()
        b.close()


def test_rounds_use_no_threads_and_survive_a_script_flush(redlock_nodes):
    import threading

    clients = [redis.Redis.from_url(s.url, socket_timeout=1) for s in redlock_nodes]
    lock = _lock(clients, unique_name())
    try:
        threads = threading.active_count()
        for _ in range(20):
            assert lock.acquire()
            assert threading.active_count() == threads  # pipelined I/O, not an executor
            lock.release()
        for client in clients:
            client.script_flush()
        assert lock.acquire(blocking=False)  # NOSCRIPT: the round falls back to EVAL
        lock.extend()
        assert lock.owned()
        lock.release()
    finally:
        lock.close()
        for client in clients:
            client.close()


def test_bad_arguments(redlock_nodes):
    clients = [redis.Redis.from_url(s.url, socket_timeout=1) for s in redlock_nodes]
    try:
        with pytest.raises(ValueError, match="clients must have a socket_timeout"):
            Redlock([redis.Redis.from_url(redlock_nodes[0].url)], "x", 1)
        with pytest.raises(ValueError, match="clients must be a non-empty"):
            Redlock([], "x", 1)
        with pytest.raises(TypeError, match="clients must be redis.Redis"):
            Redlock(["localhost"], "x", 1)
        with pytest.raises(ValueError, match="node_timeout must be > 0"):
            Redlock(clients, "x", 1, node_timeout=0)
        with pytest.raises(ValueError, match="ttl must be > 0 seconds, got -1"):
            Redlock(clients, "x", -1)
    finally:
        for client in clients:
            client.close()


def test_extend_without_a_quorum_answering_says_so_instead_of_guessing_lost(nodes):
    servers, clients = nodes
    lock = _lock(clients, unique_name())
    try:
        assert lock.acquire(blocking=False)
        servers[0].pause()
        servers[1].pause()
        with pytest.raises(QuorumNotReached, match="1 of 3 nodes answered"):
            lock.extend()
        with pytest.raises(QuorumNotReached):
            lock.owned()
        assert not lock.lost.is_set()
        servers[0].resume()
        servers[1].resume()
        lock.extend()  # the nodes are back and the hold is still valid
        assert lock.owned()
        lock.release()
    finally:
        servers[0].resume()
        servers[1].resume()
        lock.close()


class _ScriptsButNoPool:
    """Looks like a redis-py client to a quick glance (register_script) but has no connection pool."""

    def register_script(self, source):
        raise AssertionError("never used")


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_a_client_without_a_connection_pool_is_refused_alike(kind):
    # AsyncRedlock used to accept it and fail later with AttributeError; both faces check alike now
    from patterns.dlock.aio import AsyncRedlock

    cls, wanted = (Redlock, "redis.Redis") if kind == "sync" else (AsyncRedlock, "redis.asyncio.Redis")
    with pytest.raises(TypeError, match=f"clients must be {wanted} objects, got _ScriptsButNoPool"):
        cls([_ScriptsButNoPool()], unique_name(), 1)
