"""What is particular to EtcdLock: FIFO waiters, a killed holder, no leaked leases, whole-second ttl."""

import signal
import threading
import time

import pytest

from dlock_support import b64, etcd_post, prefix_end, unique_name
from servers import free_port
from test_dlock_processes import _expect, _spawn

from patterns.dlock import EtcdLock, LockConnectionError


def _leases(endpoint):
    return {lease["ID"] for lease in etcd_post(endpoint, "/v3/lease/leases", {}).get("leases") or []}


def _waiting(endpoint, name):
    reply = etcd_post(endpoint, "/v3/kv/range", {"key": b64(name + "/"), "range_end": prefix_end(name + "/"), "count_only": True})
    return int(reply.get("count", 0))


def test_ttl_is_whole_seconds_rounded_up_and_must_be_positive(etcd_server):
    lock = EtcdLock(etcd_server.endpoint, unique_name(), 0.3)
    try:
        assert lock.ttl == 1
        with pytest.raises(ValueError, match="ttl must be > 0 seconds, got 0"):
            EtcdLock(etcd_server.endpoint, "x", 0)
        with pytest.raises(ValueError, match="ttl must be > 0 seconds, got -2"):
            EtcdLock(etcd_server.endpoint, "x", -2)
        with pytest.raises(ValueError, match="endpoint must be an http"):
            EtcdLock("127.0.0.1:2379", "x", 1)
        lock.acquire()
        with pytest.raises(ValueError, match="lease's 1 s"):
            lock.extend(5)
        lock.extend(0.5)
        lock.release()
    finally:
        lock.close()


def test_waiters_are_served_in_fifo_order(etcd_server):
    name = unique_name()
    holder = EtcdLock(etcd_server.endpoint, name, 5)
    waiters = [EtcdLock(etcd_server.endpoint, name, 5) for _ in range(4)]
    order = []
    holder.acquire()

    def wait(index):
        with waiters[index]:
            order.append(index)
            time.sleep(0.01)

    threads = []
    try:
        for index in range(len(waiters)):
            thread = threading.Thread(target=wait, args=(index,))
            thread.start()
            threads.append(thread)
            give_up = time.monotonic() + 5
            while _waiting(etcd_server.endpoint, name) < index + 2 and time.monotonic() < give_up:
                time.sleep(0.005)  # the waiter has queued its key before the next one starts
        holder.release()
        for thread in threads:
            thread.join(10)
        assert order == [0, 1, 2, 3]
    finally:
        for lock in [holder, *waiters]:
            lock.close()


def test_killed_holder_lets_a_waiter_in_within_ttl_plus_one_second(etcd_server):
    name, ttl = unique_name(), 2
    url = f"etcd://{etcd_server.host}:{etcd_server.port}"
    holder = _spawn("hold", url, name, str(ttl))
    waiter = EtcdLock(etcd_server.endpoint, name, ttl)
    try:
        _expect(holder, "held")
        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        holder.wait(10)
        assert waiter.acquire(timeout=ttl + 3)
        assert time.monotonic() - killed < ttl + 1
        waiter.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for stream in (holder.stdin, holder.stdout, holder.stderr):
            stream.close()
        waiter.close()


def test_many_cycles_leave_no_lease_behind(etcd_server):
    endpoint = etcd_server.endpoint
    before = _leases(endpoint)
    name = unique_name()
    a, b = EtcdLock(endpoint, name, 5), EtcdLock(endpoint, name, 5)
    try:
        for i in range(300):
            assert a.acquire()
            if i % 50 == 0:
                assert not b.acquire(blocking=False)  # a refused try revokes its lease too
                assert not b.acquire(timeout=0.05)  # and so does a timed-out wait
            a.release()
        assert _leases(endpoint) - before == set()  # release revokes: none left even before close
    finally:
        a.close()
        b.close()
    assert _leases(endpoint) - before == set()
    assert _waiting(endpoint, name) == 0


def test_keep_lease_reuses_one_lease_until_close(etcd_server):
    endpoint = etcd_server.endpoint
    before = _leases(endpoint)
    lock = EtcdLock(endpoint, unique_name(), 5, keep_lease=True)
    try:
        tokens = []
        for _ in range(20):
            with lock:
                tokens.append(lock.token)
        assert tokens == sorted(set(tokens))  # a new key, so a new token, every hold
        assert len(_leases(endpoint) - before) == 1
    finally:
        lock.close()
    assert _leases(endpoint) - before == set()
    with pytest.raises(TypeError, match="keep_lease must be a bool"):
        EtcdLock(endpoint, "x", 1, keep_lease="yes")


def test_an_unreachable_etcd_is_named():
    endpoint = f"http://127.0.0.1:{free_port()}"
    lock = EtcdLock(endpoint, unique_name(), 2, request_timeout=1)
    try:
        with pytest.raises(LockConnectionError, match=f"etcd at {endpoint}"):
            lock.acquire(timeout=1)
        assert lock.token is None and not lock.lost.is_set()
    finally:
        lock.close()


@pytest.fixture
def own_etcd(tmp_path):
    """An etcd of this test's own, for faults that must not disturb the session's server."""
    from servers import EtcdServer

    server = EtcdServer(tmp_path / "etcd")
    server.start()
    yield server
    server.stop()


def test_a_restarted_etcd_is_reached_again_on_a_fresh_connection(own_etcd):
    lock = EtcdLock(own_etcd.endpoint, unique_name(), 5, request_timeout=2)
    try:
        with lock:
            first = lock.token
        own_etcd.restart()  # the kept-alive connection is now closed by the other side
        with lock:  # noticed before a request is written, so nothing is sent twice
            assert lock.token > first
        assert not lock.locked()
    finally:
        lock.close()


def test_a_frozen_etcd_fails_within_the_request_timeout_and_recovers(own_etcd):
    lock = EtcdLock(own_etcd.endpoint, unique_name(), 5, request_timeout=0.5)
    try:
        with lock:
            pass
        own_etcd.pause()
        try:
            started = time.monotonic()
            with pytest.raises(LockConnectionError, match=f"etcd at {own_etcd.endpoint} did not answer"):
                lock.acquire(timeout=5)
            assert time.monotonic() - started < 2
            assert lock.token is None
        finally:
            own_etcd.resume()
        assert lock.acquire(timeout=10)  # the timed-out connection was dropped, not reused
        lock.release()
    finally:
        lock.close()


def test_threads_sharing_one_lock_object_get_their_own_connections(etcd_server):
    lock = EtcdLock(etcd_server.endpoint, unique_name(), 5)
    answers = []
    try:
        lock.acquire()
        token = lock.token

        def ask():
            for _ in range(20):
                answers.append(lock.owned() and lock.token == token)

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [True] * 120
        lock.release()
        assert not lock.locked()
    finally:
        lock.close()
    with pytest.raises(Exception, match="closed"):
        lock.locked()
