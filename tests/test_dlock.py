"""The common face of every distributed lock, on real servers: each test runs for each kind."""

import threading
import time

import pytest

from conftest import GIL_DISABLED, run_threads
from dlock_support import unique_name

from patterns.dlock import (
    LockError,
    LockLost,
    LockNotAcquired,
    LockNotOwned,
    MemoryLock,
)

AVAILABLE = ["memory", "redis", "redlock", "etcd"]
kinds = pytest.mark.parametrize("dlock_env", AVAILABLE, indirect=True)


@kinds
def test_acquire_release_and_tokens_increase_across_owners(dlock_env):
    name = unique_name()
    a, b = dlock_env.new(name, 5), dlock_env.new(name, 5)
    assert not a.locked() and not a.owned() and a.token is None
    assert a.acquire(blocking=False)
    assert a.owned() and a.locked() and b.locked() and not b.owned()
    assert not b.acquire(blocking=False)
    first = a.token
    a.release()
    assert a.token is None and not a.locked()
    assert b.acquire(timeout=1)
    if dlock_env.fencing:
        assert isinstance(first, int) and b.token > first
    else:
        assert first is None and b.token is None
    b.release()


@kinds
def test_acquire_waits_only_its_timeout(dlock_env):
    name = unique_name()
    a, b = dlock_env.new(name, 5), dlock_env.new(name, 5, timeout=0.2)
    a.acquire()
    started = time.monotonic()
    assert not b.acquire(timeout=0.2)
    assert 0.15 <= time.monotonic() - started < 1.5
    ran = []
    with pytest.raises(LockNotAcquired):
        with b:
            ran.append(1)
    assert ran == []
    a.release()
    with b as held:
        assert held is b and b.owned()
    assert not b.locked()


@kinds
def test_release_and_extend_refuse_a_lock_not_held(dlock_env):
    lock = dlock_env.new(unique_name(), 5)
    with pytest.raises(LockNotOwned):
        lock.release()
    with pytest.raises(LockNotOwned):
        lock.extend()
    lock.acquire()
    with pytest.raises(LockError, match="already held"):
        lock.acquire(blocking=False)
    lock.release()


@kinds
def test_a_late_holder_cannot_touch_the_next_owners_lock(dlock_env):
    name = unique_name()
    a, b = dlock_env.new(name, 0.3), dlock_env.new(name, 5)
    a.acquire()
    time.sleep(0.45 if dlock_env.kind != "etcd" else 3.2)  # past the ttl (etcd: whole seconds, min 2)
    assert b.acquire(timeout=2)
    with pytest.raises(LockNotOwned):
        a.extend()
    with pytest.raises(LockNotOwned) as raised:
        a.release()
    assert isinstance(raised.value, LockLost)
    assert a.lost.is_set()
    assert b.owned()
    b.release()


@kinds
def test_extend_keeps_the_hold_past_its_ttl(dlock_env):
    ttl = 0.4 if dlock_env.kind != "etcd" else 1
    name = unique_name()
    a, b = dlock_env.new(name, ttl), dlock_env.new(name, ttl)
    a.acquire()
    for _ in range(3):
        time.sleep(ttl / 2)
        a.extend()
    assert not b.acquire(blocking=False)
    assert a.owned()
    a.release()


@kinds
def test_auto_renew_keeps_the_lock_through_five_ttls(dlock_env):
    ttl = 0.3 if dlock_env.kind != "etcd" else 1
    name = unique_name()
    a = dlock_env.new(name, ttl, auto_renew=True)
    b = dlock_env.new(name, ttl)
    with a:
        deadline = time.monotonic() + 5 * ttl
        while time.monotonic() < deadline:
            assert not b.acquire(blocking=False)
            time.sleep(ttl / 4)
        assert a.owned() and not a.lost.is_set()
    assert not a.locked()


@kinds
def test_deleting_the_key_by_hand_marks_the_lock_lost(dlock_env):
    ttl = 0.3 if dlock_env.kind != "etcd" else 1
    name = unique_name()
    calls = []
    a = dlock_env.new(name, ttl, auto_renew=True, on_lost=calls.append)
    a.acquire()
    dlock_env.delete(name)
    assert a.lost.wait(ttl + 1)
    assert calls == [a]
    with pytest.raises(LockLost):
        a.owned()
    with pytest.raises(LockLost):
        a.extend()
    with pytest.raises(LockLost):
        a.release()
    assert calls == [a]  # called once
    assert a.acquire(timeout=1)  # a lost hold does not block the object forever
    a.release()


@kinds
def test_with_reports_a_lost_lock_at_exit(dlock_env):
    name = unique_name()
    lock = dlock_env.new(name, 5)
    with pytest.raises(LockLost):
        with lock:
            dlock_env.delete(name)
    with pytest.raises(ZeroDivisionError) as raised:  # the body's own error wins
        with lock:
            dlock_env.delete(name)
            1 / 0
    assert "releasing the lock failed" in str(getattr(raised.value, "__notes__", ["releasing the lock failed"]))


@kinds
def test_threads_count_exactly_under_the_lock(dlock_env):
    name = unique_name()
    threads, rounds = 4, (25 if dlock_env.kind == "etcd" else 50)
    locks = [dlock_env.new(name, 10) for _ in range(threads)]
    box = {"n": 0, "inside": 0, "overlap": 0}

    def body(index):
        lock = locks[index]
        for _ in range(rounds):
            with lock:
                box["inside"] += 1
                if box["inside"] != 1:
                    box["overlap"] += 1
                value = box["n"]
                time.sleep(0)
                box["n"] = value + 1
                box["inside"] -= 1

    run_threads(threads, body)
    assert box == {"n": threads * rounds, "inside": 0, "overlap": 0}


@kinds
def test_contended_lock_hands_over_quickly(dlock_env):
    name = unique_name()
    a, b = dlock_env.new(name, 10), dlock_env.new(name, 10)
    a.acquire()
    got = []

    def wait():
        b.acquire(timeout=5)
        got.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.35)  # the waiter is asleep by now, past its first poll
    released = time.monotonic()
    a.release()
    waiter.join()
    # woken by the release (Redlock has no wake-up: it retries within retry_delay, 0.1 s)
    assert got and got[0] - released < (0.3 if dlock_env.kind == "redlock" else 0.15)
    b.release()


@kinds
def test_bad_arguments_are_refused_with_their_names(dlock_env):
    name = unique_name()
    with pytest.raises(ValueError, match=r"ttl must be > 0 seconds, got -1"):
        dlock_env.new(name, -1)
    with pytest.raises(ValueError, match="ttl must be > 0"):
        dlock_env.new(name, 0)
    with pytest.raises(TypeError, match="ttl must be a number"):
        dlock_env.new(name, "5")
    with pytest.raises(ValueError, match="name must be a non-empty"):
        dlock_env.new("", 5)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        dlock_env.new(name, 5, timeout=-1)
    with pytest.raises(TypeError, match="auto_renew must be a bool"):
        dlock_env.new(name, 5, auto_renew=1)
    lock = dlock_env.new(name, 5)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        lock.acquire(timeout=-1)
    with pytest.raises(TypeError, match="blocking must be a bool"):
        lock.acquire(blocking="no")
    assert not lock.locked()
    lock.acquire()
    with pytest.raises(ValueError, match="ttl must be > 0 seconds"):
        lock.extend(-1)
    assert lock.owned()
    lock.release()


def test_memory_lock_needs_no_server():
    name = unique_name()
    a, b = MemoryLock(name, 0.2), MemoryLock(name, 0.2)
    assert a.acquire() and not b.acquire(blocking=False)
    assert b.acquire(timeout=1)  # a's ttl ran out
    assert b.token == a.token + 1
    b.release()
    with pytest.raises(LockLost):
        a.release()


@pytest.mark.skipif(not GIL_DISABLED, reason="needs threads running in parallel (PYTHON_GIL=0)")
def test_memory_lock_exact_count_without_the_gil():
    name = unique_name()
    locks = [MemoryLock(name, 10) for _ in range(8)]
    box = [0]

    def body(index):
        for _ in range(500):
            with locks[index]:
                box[0] += 1

    run_threads(8, body)
    assert box[0] == 4000


def test_memory_lock_loses_no_update_and_the_control_does():
    """MemoryLock lives in one process, so its lost-update test uses 4 threads x 200."""
    name = unique_name()

    def count(use_lock):
        locks = [MemoryLock(name, 10) for _ in range(4)]
        box = [0]

        def body(index):
            for _ in range(200):
                if use_lock:
                    locks[index].acquire()
                value = box[0]
                time.sleep(0.00005)
                box[0] = value + 1
                if use_lock:
                    locks[index].release()

        run_threads(4, body)
        return box[0]

    assert count(False) < 800, "the no-lock control lost no update: the test proves nothing"
    assert count(True) == 800
