"""patterns.lockorder: ordered() takes lock sets without deadlock; checked locks report inversions.

The seed's TransferMoney bug throughout: naive transfers lock "from" then "to", so two opposite
transfers can deadlock.  The checker must report that order even when the transfers run one after
the other in a single thread, where nothing can deadlock; transfers through ordered() never report
and, under 8 threads, conserve the total exactly.
"""

import gc
import pickle
import random
import re
import threading
import time

import pytest

from conftest import run_threads
from patterns import lockorder
from patterns.lockorder import (
    CallSite,
    CheckedLock,
    CheckedRLock,
    LockOrderChecker,
    LockOrderEdge,
    LockOrderViolation,
    default_checker,
    ordered,
)


THREADS = 8
TRANSFERS_PER_THREAD = 10_000
ACCOUNTS = 10
ROUNDS = 3


@pytest.fixture
def checker():
    """A checker of the test's own, so recorded orders never leak between tests."""
    return LockOrderChecker()


# --- The seed: TransferMoney ---------------------------------------------------------------


class Account:
    def __init__(self, name, balance, checker):
        self.name = name
        self.balance = balance
        self.lock = CheckedLock(name, checker=checker)


def naive_transfer(source, target, amount):
    with source.lock:
        with target.lock:  # naive_transfer.__code__.co_firstlineno + 2
            source.balance -= amount
            target.balance += amount


def naive_refund(source, target, amount):
    with target.lock:
        with source.lock:  # naive_refund.__code__.co_firstlineno + 2
            target.balance -= amount
            source.balance += amount


def ordered_transfer(source, target, amount):
    with ordered(source.lock, target.lock):
        if source.balance < amount:
            return False
        source.balance -= amount
        target.balance += amount
        assert source.balance >= 0
        return True


def site_of(function, offset=2):
    return f"test_lockorder.py:{function.__code__.co_firstlineno + offset} in {function.__name__}()"


def accounts(checker, count, balance=100):
    return [Account(f"account-{i}", balance, checker) for i in range(1, count + 1)]


def test_opposite_naive_transfers_in_one_thread_are_reported(checker):
    a, b = accounts(checker, 2)
    naive_transfer(a, b, 10)  # records: account-2 taken while holding account-1
    with pytest.raises(LockOrderViolation) as caught:
        naive_transfer(b, a, 5)  # no deadlock can happen here: one thread, run sequentially
    error = caught.value
    assert (error.lock, error.held) == ("account-1", "account-2")
    assert str(error.site) == str(error.recorded_site) == site_of(naive_transfer)
    assert "'account-1'" in str(error) and "'account-2'" in str(error)
    # Raised before account-1 was taken: no money moved, nothing left held.
    assert (a.balance, b.balance) == (90, 110)
    assert checker.held_locks() == ()
    assert not a.lock.locked() and not b.lock.locked()


def test_violation_names_both_locks_and_both_call_sites(checker):
    a, b = accounts(checker, 2)
    naive_transfer(a, b, 10)
    with pytest.raises(LockOrderViolation) as caught:
        naive_refund(a, b, 10)  # locks account-2, then account-1
    error = caught.value
    assert str(error) == (
        f"lock order inversion: 'account-1' taken while holding 'account-2' at {site_of(naive_refund)}, "
        f"but 'account-2' was taken while holding 'account-1' at {site_of(naive_transfer)}"
    )
    assert error.site == CallSite(__file__, naive_refund.__code__.co_firstlineno + 2, "naive_refund")
    assert error.recorded_site.function == "naive_transfer"
    assert error.chain == (LockOrderEdge("account-1", "account-2", error.recorded_site),)
    assert isinstance(error, RuntimeError)


def test_three_lock_cycle_is_reported(checker):
    a, b, c = accounts(checker, 3)
    naive_transfer(a, b, 1)
    naive_transfer(b, c, 1)
    with pytest.raises(LockOrderViolation) as caught:
        naive_transfer(c, a, 1)  # closes account-1 -> account-2 -> account-3 -> account-1
    error = caught.value
    assert (error.lock, error.held) == ("account-1", "account-3")
    assert [(edge.held, edge.taken) for edge in error.chain] == [
        ("account-1", "account-2"),
        ("account-2", "account-3"),
    ]
    message = str(error)
    assert "the opposite order 'account-1' -> 'account-2' -> 'account-3' was recorded" in message
    assert message.count(site_of(naive_transfer)) == 3
    assert (a.balance, b.balance, c.balance) == (99, 100, 101)


def test_transfers_through_ordered_are_never_reported(checker):
    a, b, c = accounts(checker, 3)
    for source, target in [(a, b), (b, a), (b, c), (c, b), (c, a), (a, c)] * 3:
        assert ordered_transfer(source, target, 7)
    assert sum(x.balance for x in (a, b, c)) == 300
    # Every recorded order follows the global one, so the graph cannot hold a cycle.
    rank = {x.name: id(x.lock) for x in (a, b, c)}
    assert checker.edges()
    assert all(rank[edge.held] < rank[edge.taken] for edge in checker.edges())


def test_concurrent_naive_transfers_report_instead_of_deadlocking(checker):
    a, b = accounts(checker, 2, balance=10**9)

    def transfer_with_timeout(source, target):
        assert source.lock.acquire(timeout=5)  # bounded only so that a bug cannot hang the suite
        try:
            assert target.lock.acquire(timeout=5)
            target.lock.release()
        finally:
            source.lock.release()

    def work(index):
        for _ in range(2000):
            transfer_with_timeout(*((a, b) if index == 0 else (b, a)))

    # Whichever order is recorded first, the other one is refused before it can block.
    with pytest.raises(LockOrderViolation):
        run_threads(2, work)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_random_transfers_through_ordered_conserve_the_total(checker, round_):
    bank = accounts(checker, ACCOUNTS, balance=1000)
    total = sum(account.balance for account in bank)
    done = [0] * THREADS

    def work(index):
        rng = random.Random(round_ * 1000 + index)
        for _ in range(TRANSFERS_PER_THREAD):
            source, target = rng.sample(bank, 2)
            done[index] += ordered_transfer(source, target, rng.randint(1, 100))

    run_threads(THREADS, work)
    assert sum(account.balance for account in bank) == total
    assert all(account.balance >= 0 for account in bank)
    assert sum(done) > THREADS * TRANSFERS_PER_THREAD // 2  # most transfers had the funds


# --- ordered() ---------------------------------------------------------------------------


class RecordingLock:
    """A lock that logs its acquires and releases into a shared list."""

    def __init__(self, name, log):
        self.name, self.log, self.inner = name, log, threading.Lock()

    def acquire(self, blocking=True, timeout=-1):
        acquired = self.inner.acquire(blocking, timeout)
        if acquired:
            self.log.append(("acquire", self.name))
        return acquired

    def release(self):
        self.log.append(("release", self.name))
        self.inner.release()

    def __repr__(self):
        return f"<RecordingLock {self.name}>"


def test_ordered_takes_one_order_whatever_the_argument_order():
    log = []
    locks = [RecordingLock(name, log) for name in "abcd"]
    by_id = [lock.name for lock in sorted(locks, key=id)]
    for permutation in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        log.clear()
        with ordered(*(locks[i] for i in permutation)):
            assert log == [("acquire", name) for name in by_id]
        assert log[4:] == [("release", name) for name in reversed(by_id)]


def test_ordered_same_lock_twice_is_acquired_once():
    log = []
    lock = RecordingLock("a", log)
    plain = threading.Lock()
    with ordered(lock, lock, plain, plain, lock, timeout=1):  # a second acquire would time out
        assert plain.locked()
    assert log == [("acquire", "a"), ("release", "a")]
    assert not plain.locked()


def test_ordered_without_locks_does_nothing():
    with ordered():
        pass
    with ordered(timeout=0):
        pass


def test_ordered_takes_any_kind_of_lock(checker):
    locks = [threading.Lock(), threading.RLock(), threading.Semaphore(1), CheckedLock(checker=checker)]
    with ordered(*locks):
        assert not locks[0].acquire(False) and not locks[2].acquire(False) and locks[3].locked()
    assert locks[0].acquire(False) and locks[2].acquire(False) and not locks[3].locked()
    rlock = threading.RLock()
    with rlock, ordered(rlock, threading.Lock()):  # already held re-entrant lock: fine
        pass


def test_exception_inside_ordered_releases_everything():
    locks = [threading.Lock() for _ in range(5)]
    with pytest.raises(KeyError, match="boom"):
        with ordered(*locks):
            raise KeyError("boom")
    assert not any(lock.locked() for lock in locks)


def test_failure_while_acquiring_releases_what_was_taken(checker):
    first, second = sorted([CheckedLock("p", checker=checker), CheckedLock("q", checker=checker)], key=id)
    with second, first:  # records: first taken while holding second
        pass
    with pytest.raises(LockOrderViolation):
        with ordered(first, second):  # takes first, then second: the inverse order
            pass  # pragma: no cover
    assert not first.locked() and not second.locked()
    assert checker.held_locks() == ()


def test_a_failing_release_still_releases_the_others():
    log = []

    class BrokenRelease(RecordingLock):
        def release(self):
            super().release()
            raise OSError("release failed")

    locks = [BrokenRelease("broken", log), RecordingLock("x", log), RecordingLock("y", log)]
    with pytest.raises(OSError, match="release failed"):
        with ordered(*locks):
            pass
    assert sorted(name for action, name in log if action == "release") == ["broken", "x", "y"]
    assert not any(lock.inner.locked() for lock in locks)


def hold_in_thread(*locks):
    """Hold ``locks`` in another thread until the returned stop() is called."""
    held, stop = threading.Event(), threading.Event()

    def holder():
        for lock in locks:
            lock.acquire()
        held.set()
        stop.wait()
        for lock in reversed(locks):
            lock.release()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()

    def release():
        stop.set()
        thread.join()

    return release


def test_ordered_timeout_releases_what_it_took_and_says_how_far_it_got():
    locks = [threading.Lock() for _ in range(3)]
    busy = locks[1]
    position = sorted(locks, key=id).index(busy)  # locks acquired before the busy one
    release = hold_in_thread(busy)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            with ordered(*locks, timeout=0.2):
                pass  # pragma: no cover
        elapsed = time.monotonic() - started
        assert 0.15 <= elapsed < 2
        assert f"with {position} of 3 locks acquired" in str(caught.value)
        assert "timed out after 0.2 s" in str(caught.value)
        assert not any(lock.locked() for lock in locks if lock is not busy)
        assert busy.locked()  # still the other thread's
    finally:
        release()
    assert not any(lock.locked() for lock in locks)


def test_ordered_timeout_is_one_deadline_for_all_locks():
    locks = [threading.Lock() for _ in range(4)]
    release = hold_in_thread(*locks)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="with 0 of 4 locks acquired"):
            with ordered(*locks, timeout=0.3):
                pass  # pragma: no cover
        assert time.monotonic() - started < 0.9  # not 0.3 s per lock
    finally:
        release()


def test_ordered_timeout_zero_tries_each_lock_once():
    free, busy = threading.Lock(), threading.Lock()
    with ordered(free, timeout=0):
        assert free.locked()
    release = hold_in_thread(busy)
    try:
        with pytest.raises(TimeoutError, match="of 2 locks acquired"):
            with ordered(free, busy, timeout=0):
                pass  # pragma: no cover
        assert not free.locked()
    finally:
        release()


def test_ordered_with_timeout_succeeds_when_locks_free_up_in_time():
    lock = threading.Lock()
    release = hold_in_thread(lock)
    timer = threading.Timer(0.05, release)
    timer.start()
    with ordered(lock, threading.Lock(), timeout=10):
        assert lock.locked()
    timer.join()


def test_one_ordered_object_serves_many_threads():
    counter = [0]
    both = ordered(threading.Lock(), threading.Lock())

    def work(index):
        for _ in range(2000):
            with both:
                counter[0] += 1

    run_threads(4, work)
    assert counter[0] == 8000


def test_ordered_refuses_bad_arguments_before_acquiring_anything():
    import asyncio

    lock = threading.Lock()
    must_be_a_lock = r"^ordered\(\) argument 2 must be a lock with acquire\(\) and release\(\), got str$"
    with pytest.raises(TypeError, match=must_be_a_lock):
        ordered(lock, "lock")
    separate = r"argument 1 .* got list; pass the locks as separate arguments: ordered\(\*locks\)"
    with pytest.raises(TypeError, match=separate):
        ordered([lock])
    with pytest.raises(TypeError, match=r"argument 2 is an asyncio lock \(Lock\); ordered\(\) takes thread locks"):
        ordered(lock, asyncio.Lock())
    with pytest.raises(ValueError, match=r"^timeout must be >= 0 or None, got -1$"):
        ordered(lock, timeout=-1)
    with pytest.raises(ValueError, match=r"got nan"):
        ordered(lock, timeout=float("nan"))
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, got str$"):
        ordered(lock, timeout="1")
    assert not lock.locked()


def test_ordered_repr():
    lock = CheckedLock("account-1", checker=LockOrderChecker())
    assert repr(ordered(lock, timeout=2)) == "ordered(<CheckedLock 'account-1' unlocked>, timeout=2.0)"


# --- CheckedLock and CheckedRLock --------------------------------------------------------


@pytest.fixture(params=[CheckedLock, CheckedRLock])
def checked_type(request):
    return request.param


def test_checked_locks_have_the_threading_api(checker, checked_type):
    lock = checked_type("l", checker=checker)
    assert lock.acquire() is True
    assert checker.held_locks() == (lock,)
    lock.release()
    assert checker.held_locks() == ()
    with lock as entered:
        assert entered is True
        if hasattr(lock, "locked"):
            assert lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(ValueError, match="can't specify a timeout for a non-blocking call"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="timeout value must be a non-negative number"):
        lock.acquire(timeout=-2)
    assert checker.held_locks() == ()


def test_checked_lock_busy_elsewhere_fails_try_and_timed_acquires(checker, checked_type):
    lock = checked_type("l", checker=checker)
    release = hold_in_thread(lock)
    try:
        assert lock.acquire(False) is False
        started = time.monotonic()
        assert lock.acquire(timeout=0.05) is False
        assert time.monotonic() - started >= 0.04
        assert checker.held_locks() == ()
    finally:
        release()
    assert lock.acquire(timeout=1)
    lock.release()


def test_checked_lock_may_be_released_by_another_thread(checker):
    lock, other = CheckedLock("signal", checker=checker), CheckedLock("other", checker=checker)
    lock.acquire()
    releaser = threading.Thread(target=lock.release)
    releaser.start()
    releaser.join()
    assert not lock.locked()
    assert checker.held_locks() == ()  # no stale entry: later acquires record nothing from it
    with other:
        pass
    assert checker.edges() == []


def test_default_names_carry_the_creation_site(checker):
    line = test_default_names_carry_the_creation_site.__code__.co_firstlineno + 2
    unnamed, unnamed_r = CheckedLock(checker=checker), CheckedRLock(checker=checker)
    assert re.fullmatch(rf"CheckedLock@test_lockorder\.py:{line}#\d+", unnamed.name)
    assert re.fullmatch(rf"CheckedRLock@test_lockorder\.py:{line}#\d+", unnamed_r.name)
    assert CheckedLock(checker=checker).name != CheckedLock(checker=checker).name
    assert CheckedLock("mine", checker=checker).name == "mine"


def test_checked_lock_arguments_are_checked():
    with pytest.raises(TypeError, match="^name must be a str or None, got int$"):
        CheckedLock(1)
    with pytest.raises(TypeError, match="^checker must be a LockOrderChecker or None, got dict$"):
        CheckedRLock(checker={})
    assert CheckedLock().checker is default_checker
    assert isinstance(lockorder.default_checker, LockOrderChecker)


def test_violation_is_raised_before_blocking(checker):
    a, b = CheckedLock("a", checker=checker), CheckedLock("b", checker=checker)
    with b, a:
        pass
    release = hold_in_thread(b)  # another thread holds b, as in a real deadlock
    try:
        started = time.monotonic()
        with a:
            with pytest.raises(LockOrderViolation):
                b.acquire()  # would wait for b; reported at once instead
        assert time.monotonic() - started < 1
        assert b.locked()  # still the other thread's: the failed acquire took nothing
    finally:
        release()


def test_timed_acquires_are_checked_and_try_acquires_are_not(checker):
    a, b, c = (CheckedLock(name, checker=checker) for name in "abc")
    with a, b:
        pass
    with b:
        with pytest.raises(LockOrderViolation):
            a.acquire(timeout=1)
        assert a.acquire(False)  # a try-lock cannot deadlock: neither checked nor recorded
        with c:  # ...but the lock counts as held afterwards
            pass
        a.release()
    assert {(e.held, e.taken) for e in checker.edges()} == {("a", "b"), ("b", "c"), ("a", "c")}


def test_locks_released_out_of_order(checker):
    a, b, c = (CheckedLock(name, checker=checker) for name in "abc")
    a.acquire()
    b.acquire()
    a.release()  # hand-over-hand
    assert checker.held_locks() == (b,)
    c.acquire()
    c.release()
    b.release()
    assert {(e.held, e.taken) for e in checker.edges()} == {("a", "b"), ("b", "c")}


def test_reacquiring_a_held_rlock_records_nothing(checker):
    r, x = CheckedRLock("r", checker=checker), CheckedLock("x", checker=checker)
    with r:
        with x:
            with r:  # already held: not an order
                with r:
                    assert checker.held_locks() == (r, x)
        assert checker.held_locks() == (r,)
    assert checker.held_locks() == ()
    assert [(e.held, e.taken) for e in checker.edges()] == [("r", "x")]
    with x:  # a first acquire of r under x is an order, and it inverts r -> x
        with pytest.raises(LockOrderViolation, match="'r' taken while holding 'x'"):
            r.acquire()


def test_rlock_counts_and_refuses_release_by_another_thread(checker):
    r = CheckedRLock("r", checker=checker)
    r.acquire()
    r.acquire()
    r.release()
    errors = []

    def other():
        errors.append(r.acquire(False))
        try:
            r.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert errors[0] is False and isinstance(errors[1], RuntimeError)
    assert "locked by thread" in repr(r)
    r.release()
    assert repr(r) == "<CheckedRLock 'r' unlocked>"
    assert checker.held_locks() == ()


def test_checked_rlock_works_under_a_condition(checker):
    lock, other = CheckedRLock("cond", checker=checker), CheckedLock("other", checker=checker)
    condition = threading.Condition(lock)
    ready = []

    def producer():
        with condition:
            ready.append(1)
            condition.notify()

    with condition:
        with condition:  # re-entered: wait() must release both levels
            thread = threading.Thread(target=producer)
            thread.start()
            assert condition.wait_for(lambda: ready, timeout=5)
            assert checker.held_locks() == (lock,)
            with other:
                pass
    thread.join()
    assert checker.held_locks() == ()
    with pytest.raises(RuntimeError):
        condition.notify()  # not owned


def test_inversion_through_rlocks_and_mixed_kinds(checker):
    r, x = CheckedRLock("r", checker=checker), CheckedLock("x", checker=checker)
    with x, r:
        pass
    with r:
        with pytest.raises(LockOrderViolation, match="'x' taken while holding 'r'"):
            x.acquire()


# --- The checker itself ------------------------------------------------------------------


def test_edges_reset_and_repr(checker):
    a, b = CheckedLock("a", checker=checker), CheckedLock("b", checker=checker)
    with a:
        with b:
            line = test_edges_reset_and_repr.__code__.co_firstlineno + 3
    [edge] = checker.edges()
    assert edge == LockOrderEdge("a", "b", CallSite(__file__, line, "test_edges_reset_and_repr"))
    site = f"test_lockorder.py:{line} in test_edges_reset_and_repr()"
    assert str(edge) == f"'b' taken while holding 'a' at {site}"
    assert repr(checker) == "<LockOrderChecker with 1 recorded orders>"
    checker.reset()
    assert checker.edges() == []
    with b, a:  # the old order is forgotten: no violation
        pass


def test_checkers_are_independent(checker):
    other = LockOrderChecker()
    a, b = CheckedLock("a", checker=checker), CheckedLock("b", checker=other)
    with a, b:
        pass
    assert checker.edges() == other.edges() == []  # orders are kept per checker


def test_edges_of_collected_locks_are_forgotten(checker):
    keep = CheckedLock("keep", checker=checker)
    for _ in range(100):
        temporary = CheckedLock("temporary", checker=checker)
        with keep, temporary:
            pass
        del temporary
    gc.collect()
    assert checker.edges() == []
    assert checker._after == {} and checker._before == {}
    assert list(checker._watched) == [keep._serial]  # only the live lock is still watched


def test_known_orders_take_the_fast_path(checker, monkeypatch):
    a, b, c = (CheckedLock(name, checker=checker) for name in "abc")
    with a, b, c:
        pass
    calls = []
    monkeypatch.setattr(lockorder, "_call_site", lambda: calls.append(1))
    checker._guard = None  # any use of the graph's lock would now fail
    for _ in range(100):
        with a, b, c:
            pass
    assert calls == []


def test_update_reentered_from_garbage_collection_does_not_deadlock(checker, monkeypatch):
    a, b, x, y = (CheckedLock(name, checker=checker) for name in "abxy")
    forget = checker._forget_collected

    def forget_and_run_a_finalizer():  # as a __del__ taking checked locks might, mid-update
        with x, y:
            pass
        forget()

    monkeypatch.setattr(checker, "_forget_collected", forget_and_run_a_finalizer)
    with a, b:
        pass
    assert {(e.held, e.taken) for e in checker.edges()} == {("a", "b")}


def test_violation_pickles():
    site = CallSite("/x/bank.py", 3, "transfer")
    error = LockOrderViolation("a", "b", site, (LockOrderEdge("a", "b", site),))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.lock, copy.held, copy.site, copy.chain) == (error.lock, error.held, error.site, error.chain)
    assert str(copy) == str(error)
    assert str(site) == "bank.py:3 in transfer()"
    assert str(CallSite("m.py", 1, "<module>")) == "m.py:1 in <module>"


def test_random_acquisition_orders_match_a_reference_graph(checker):
    """Random nested acquisitions: a violation exactly when the new order would close a cycle."""
    rng = random.Random(7)
    locks = [CheckedLock(f"l{i}", checker=checker) for i in range(6)]
    graph = {i: set() for i in range(6)}

    def reaches(start, goal):
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])
        return False

    violations = 0
    for _ in range(300):
        sequence = rng.sample(range(6), rng.randint(2, 4))
        taken = []
        try:
            for index in sequence:
                expect_violation = any(reaches(index, held) for held in taken)
                try:
                    locks[index].acquire()
                except LockOrderViolation:
                    assert expect_violation
                    violations += 1
                    break
                assert not expect_violation
                for held in taken:
                    graph[held].add(index)
                taken.append(index)
        finally:
            for index in reversed(taken):
                locks[index].release()
        assert checker.held_locks() == ()
    assert violations > 0
    assert {(e.held, e.taken) for e in checker.edges()} == {
        (f"l{a}", f"l{b}") for a, targets in graph.items() for b in targets
    }


def test_many_threads_recording_orders_concurrently(checker):
    """Threads racing to record orders consistent with one global order never see a violation."""
    locks = [CheckedLock(f"l{i}", checker=checker) for i in range(12)]

    def work(index):
        rng = random.Random(index)
        for _ in range(500):
            chosen = sorted(rng.sample(range(12), 3))
            for i in chosen:
                locks[i].acquire()
            for i in reversed(chosen):
                locks[i].release()

    run_threads(THREADS, work)
    assert all(int(e.held[1:]) < int(e.taken[1:]) for e in checker.edges())
