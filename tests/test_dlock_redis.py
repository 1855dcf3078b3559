"""What is particular to RedisLock: its keys, its scripts, and a server that does not answer."""

import pytest
import redis

from dlock_support import unique_name

from patterns.dlock import LockConnectionError, LockLost, LockNotOwned, RedisLock


@pytest.fixture
def client(redis_server):
    client = redis.Redis.from_url(redis_server.url, socket_timeout=1)
    yield client
    client.close()


def test_keys_left_after_release_are_only_the_fence_counter(client):
    name = unique_name()
    lock = RedisLock(client, name, 5)
    lock.acquire()
    assert client.get(name) is not None and 1_000 < client.pttl(name) <= 5_000
    assert len(client.get(name)) == 32  # 128 random bits, hex
    lock_token = lock.token
    lock.release()
    assert client.exists(name) == 0
    assert int(client.get(f"{{{name}}}:fence")) == lock_token
    assert client.ttl(f"{{{name}}}:fence") == -1  # the last token never expires: tokens only grow
    assert sorted(k.decode() for k in client.keys(f"*{name}*")) == [f"{{{name}}}:fence"]


def test_scripts_survive_a_script_flush(client):
    name = unique_name()
    lock = RedisLock(client, name, 5)
    client.script_flush()
    assert lock.acquire(blocking=False)
    client.script_flush()
    lock.extend()
    client.script_flush()
    lock.release()


def test_a_dead_server_is_named_and_nothing_reports_success(redis_servers):
    (server,) = redis_servers(1)
    client = redis.Redis.from_url(server.url, socket_timeout=0.3)
    try:
        lock = RedisLock(client, unique_name(), 5)
        lock.acquire()
        server.kill()
        with pytest.raises(LockConnectionError, match=f"redis at {server.host}:{server.port}"):
            lock.extend()
        with pytest.raises(LockConnectionError, match=f"{server.port}"):
            lock.release()
        other = RedisLock(client, unique_name(), 5)
        with pytest.raises(LockConnectionError):
            other.acquire(timeout=0.5)
        assert other.token is None
        with pytest.raises(LockNotOwned):
            other.release()
    finally:
        client.close()


def test_client_type_is_checked():
    with pytest.raises(TypeError, match="client must be a redis.Redis"):
        RedisLock("redis://localhost", "x", 5)


def test_auto_renew_marks_the_lock_lost_when_the_server_stays_away(redis_servers):
    (server,) = redis_servers(1)
    client = redis.Redis.from_url(server.url, socket_timeout=0.1, socket_connect_timeout=0.1)
    lost = []
    try:
        lock = RedisLock(client, unique_name(), 0.6, auto_renew=True, on_lost=lost.append)
        lock.acquire()
        server.kill()
        assert lock.lost.wait(3)  # within about one ttl of failed renewals, never silently
        assert lost == [lock]
        with pytest.raises(LockLost):
            lock.extend()
        lock.close()  # forgets the lost hold quietly and joins the renewal thread
    finally:
        client.close()


def test_the_hold_belongs_to_the_object_not_the_thread(client):
    import threading

    lock = RedisLock(client, unique_name(), 5)
    lock.acquire()
    token = lock.token
    seen = []

    def other_thread():
        seen.append((lock.owned(), lock.token))
        lock.extend()
        lock.release()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen == [(True, token)]
    assert not lock.locked()


def test_a_releasing_owner_cannot_barge_ahead_of_the_waiter_it_woke(client):
    import threading
    import time

    name = unique_name()
    a, b = RedisLock(client, name, 5), RedisLock(client, name, 5)
    a.acquire()
    got = []
    waiter = threading.Thread(target=lambda: got.append(b.acquire(timeout=5)))
    waiter.start()
    time.sleep(0.3)  # b has failed once and is blocked waiting for a wake-up
    a.release()
    assert not a.acquire(blocking=False)  # reserved for b, whom the release woke
    waiter.join()
    assert got == [True] and b.owned()
    b.release()
    assert a.acquire(blocking=False)  # nobody took b's release's wake-up: no reservation in the way
    a.release()


@pytest.mark.parametrize("how", ["decode_responses", "single_connection_client"])
def test_other_client_settings_hold_and_hand_over_the_same_way(redis_server, how):
    """The scripts go straight onto a pooled connection, or through evalsha for a client without
    a pool; the replies (and the wake-up item BLPOP hands over) are bytes or str by the client."""
    import threading
    import time

    clients = [redis.Redis.from_url(redis_server.url, socket_timeout=2, **{how: True}) for _ in range(2)]
    name = unique_name()
    a, b = RedisLock(clients[0], name, 5), RedisLock(clients[1], name, 5)
    try:
        assert a.acquire(blocking=False) and a.owned() and a.locked()
        first = a.token
        a.extend(3)
        got = []
        waiter = threading.Thread(target=lambda: got.append(b.acquire(timeout=5)))
        waiter.start()
        time.sleep(0.3)
        a.release()
        waiter.join()
        assert got == [True] and b.token > first and b.owned()
        b.release()
        assert not b.locked()
    finally:
        for client in clients:
            client.close()


def test_keys_are_named_in_the_clients_own_encoding(redis_server):
    """The scripts' keys are encoded as the client encodes its other commands (BLPOP on the
    wake-up list, a GET by the caller), so they are the same keys."""
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2, encoding="latin-1")
    name = unique_name("verrou-\u00e9")
    lock = RedisLock(client, name, 5)
    try:
        lock.acquire()
        assert client.exists(name) == 1 and int(client.get(f"{{{name}}}:fence")) == lock.token
        lock.release()
        assert client.exists(name) == 0
    finally:
        client.close()
