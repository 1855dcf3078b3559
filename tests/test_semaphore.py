"""patterns.Semaphore and patterns.WeightedSemaphore: golang.org/x/sync/semaphore semantics.

Shared contract tests run on both classes; FIFO tests that depend on newcomers queueing behind
waiters run on WeightedSemaphore.  Stress tests check exact invariants (never more tokens held
than the size, every acquisition counted, every token back at the end) over several rounds.
"""

import random
import sys
import threading
import time

import pytest

from atomics import AtomicInt64
from conftest import run_threads
from patterns import (
    Canceled,
    Context,
    DeadlineExceeded,
    Semaphore,
    WeightedSemaphore,
    background,
    with_cancel,
    with_timeout,
)
from patterns import semaphore as public


@pytest.fixture(params=[Semaphore, WeightedSemaphore], ids=["Semaphore", "WeightedSemaphore"])
def kind(request):
    return request.param


@pytest.fixture
def busy_switching():
    """On a GIL build, switch threads every 10 us so that the stress tests really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def wait_until(predicate, timeout=5.0):
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.001)


def start(fn, *args):
    t = threading.Thread(target=fn, args=args)
    t.start()
    return t


def test_public_module():
    assert public.Semaphore is Semaphore and public.WeightedSemaphore is WeightedSemaphore


def test_acquire_release_and_snapshot(kind):
    sem = kind(3)
    assert sem.size == 3 and sem.available == 3 and sem.waiting == 0
    assert sem.acquire() is True
    assert sem.acquire(2) is True
    assert sem.available == 0
    sem.release(2)
    sem.release()
    assert sem.available == 3
    assert "3/3 free" in repr(sem) and kind.__name__ in repr(sem)


def test_with_acquires_one(kind):
    sem = kind(2)
    with sem as entered:
        assert entered is sem and sem.available == 1
    assert sem.available == 2
    with pytest.raises(KeyError):
        with sem:
            raise KeyError("x")
    assert sem.available == 2


def test_try_acquire(kind):
    sem = kind(2)
    assert sem.try_acquire(2) is True
    assert sem.try_acquire() is False
    sem.release()
    assert sem.try_acquire() is True
    assert sem.try_acquire(3) is False  # more than the size: never
    sem.release(2)


def test_zero_succeeds_at_once(kind):
    sem = kind(1)
    sem.acquire()
    assert sem.acquire(0) is True and sem.try_acquire(0) is True
    assert sem.acquire(0, timeout=0) is True
    sem.release(0)
    assert sem.available == 0
    sem.release()


@pytest.mark.parametrize("bad, error, words", [(1.0, TypeError, "n must be an int, got float"),
                                               (True, TypeError, "n must be an int, got bool"),
                                               ("1", TypeError, "n must be an int, got str"),
                                               (-1, ValueError, "n must be >= 0, got -1")])
def test_bad_n_changes_nothing(kind, bad, error, words):
    sem = kind(2)
    sem.acquire()
    for call in (sem.acquire, sem.try_acquire, sem.release):
        with pytest.raises(error, match=words):
            call(bad)
    assert sem.available == 1 and sem.waiting == 0
    sem.release()


def test_an_instance_whose_init_never_ran_is_empty_not_a_crash(kind):
    # __new__ without __init__ (copy, pickle and subclass code paths do this): size 0, every
    # call answers as for an empty semaphore instead of touching a missing wait queue.
    sem = kind.__new__(kind)
    assert (sem.size, sem.available, sem.waiting) == (0, 0, 0)
    with pytest.raises(TimeoutError):
        sem.acquire(timeout=0)
    assert not sem.try_acquire()
    with pytest.raises(ValueError, match="released more than held"):
        sem.release()


def test_bad_size():
    with pytest.raises(TypeError, match="value must be an int, got float"):
        Semaphore(1.5)
    with pytest.raises(ValueError, match="value must be >= 0, got -1"):
        Semaphore(-1)
    with pytest.raises(TypeError, match="size must be an int, got NoneType"):
        WeightedSemaphore(None)
    with pytest.raises(ValueError, match="size must be >= 0, got -2"):
        WeightedSemaphore(-2)
    with pytest.raises(ValueError, match="size must be <= 2"):
        WeightedSemaphore(2**63)
    assert Semaphore().size == 1 and WeightedSemaphore(0).size == 0


def test_bad_timeout_and_ctx_change_nothing(kind):
    sem = kind(1)
    with pytest.raises(TypeError, match="timeout"):
        sem.acquire(timeout="1")
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        sem.acquire(timeout=-1)
    with pytest.raises(TypeError, match="ctx must be a Context"):
        sem.acquire(ctx=object())
    with pytest.raises(TypeError):
        sem.acquire(1, 1.0)  # timeout is keyword-only
    assert sem.available == 1


def test_release_more_than_held_changes_nothing(kind):
    sem = kind(3)
    with pytest.raises(ValueError, match="released more than held"):
        sem.release()
    sem.acquire(2)
    with pytest.raises(ValueError, match="released more than held"):
        sem.release(3)
    with pytest.raises(ValueError, match="released more than held"):
        sem.release(2**70)
    assert sem.available == 1
    sem.release(2)
    assert sem.available == 3


def test_timeout(kind):
    sem = kind(1)
    sem.acquire()
    with pytest.raises(TimeoutError, match="timed out"):
        sem.acquire(timeout=0)
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out after 0.05"):
        sem.acquire(timeout=0.05)
    assert time.monotonic() - began >= 0.04
    assert sem.available == 0 and sem.waiting == 0
    sem.release()
    assert sem.acquire(timeout=0) is True
    sem.release()


def test_cancel_wakes_a_waiter(kind):
    sem = kind(1)
    sem.acquire()
    ctx, cancel = with_cancel(background())
    got = []

    def waiter():
        try:
            sem.acquire(ctx=ctx)
        except Canceled as exc:
            got.append(exc)

    t = start(waiter)
    wait_until(lambda: sem.waiting == 1)
    cancel()
    t.join(5)
    assert len(got) == 1 and sem.waiting == 0 and sem.available == 0
    sem.release()
    assert sem.available == 1


def test_cancelled_ctx_wins_even_when_tokens_are_free(kind):
    sem = kind(1)
    ctx, cancel = with_cancel(background())
    cancel()
    with pytest.raises(Canceled):
        sem.acquire(ctx=ctx)
    assert sem.available == 1


def test_deadline(kind):
    sem = kind(1)
    sem.acquire()
    with with_timeout(background(), 0.05) as ctx:
        with pytest.raises(DeadlineExceeded):
            sem.acquire(ctx=ctx)
    assert sem.waiting == 0
    sem.release()


def test_more_than_size(kind):
    sem = kind(2)
    with pytest.raises(ValueError, match="n must be <= size \\(2\\) unless a timeout or ctx is given, got 3"):
        sem.acquire(3)
    with pytest.raises(ValueError, match="could never be acquired"):
        sem.acquire(3, ctx=background())  # a ctx that is never cancelled ends nothing
    with pytest.raises(TimeoutError):
        sem.acquire(3, timeout=0.02)
    ctx, cancel = with_cancel(background())
    errors = []

    def doomed():
        try:
            sem.acquire(3, ctx=ctx)
        except Canceled as exc:
            errors.append(exc)

    t = start(doomed)
    time.sleep(0.02)
    assert sem.acquire(2, timeout=1) is True  # the doomed one blocks nobody (as in Go)
    sem.release(2)
    cancel()
    t.join(5)
    assert len(errors) == 1 and sem.available == 2 and sem.waiting == 0


def test_new_acquire_queues_behind_waiters_even_when_tokens_are_free():
    sem = WeightedSemaphore(10)
    sem.acquire(8)
    order = []
    big = start(lambda: (sem.acquire(5), order.append("big"), sem.release(5)))
    wait_until(lambda: sem.waiting == 1)
    assert sem.available == 2
    assert sem.try_acquire(1) is False
    with pytest.raises(TimeoutError):
        sem.acquire(1, timeout=0.05)  # 2 free, but "big" is first
    small = start(lambda: (sem.acquire(6), order.append("small")))  # fits only once "big" is done
    wait_until(lambda: sem.waiting == 2)
    sem.release(8)
    big.join(5)
    small.join(5)
    assert order == ["big", "small"]
    assert sem.available == 4
    sem.release(6)


def test_large_request_is_not_starved():
    sem = WeightedSemaphore(4)
    stop = threading.Event()
    small_rounds = AtomicInt64()

    def small():
        while not stop.is_set():
            try:
                sem.acquire(1, timeout=0.5)
            except TimeoutError:
                continue
            small_rounds.inc()
            sem.release(1)

    smalls = [start(small) for _ in range(3)]
    wait_until(lambda: small_rounds.load() > 100)
    began = time.monotonic()
    sem.acquire(4, timeout=5)  # would starve without FIFO: the small ones always hold some
    waited = time.monotonic() - began
    stop.set()
    sem.release(4)
    for t in smalls:
        t.join(5)
    assert waited < 2 and sem.available == 4


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_head_that_gives_up_wakes_the_next(how):
    sem = WeightedSemaphore(4)
    sem.acquire(3)
    ctx, cancel = with_cancel(background())
    outcome = []

    def head():
        try:
            if how == "cancel":
                sem.acquire(4, ctx=ctx)
            else:
                sem.acquire(4, timeout=0.2)
        except (Canceled, TimeoutError) as exc:
            outcome.append(type(exc).__name__)

    def second():
        sem.acquire(1, timeout=5)
        outcome.append("second")

    t1 = start(head)
    wait_until(lambda: sem.waiting == 1)
    t2 = start(second)
    wait_until(lambda: sem.waiting == 2)
    time.sleep(0.02)
    assert outcome == []  # 1 free, but the second queues behind the head
    if how == "cancel":
        cancel()
    t1.join(5)
    t2.join(5)
    # the second was blocked (above) until the head gave up, then woken by it
    assert sorted(outcome) == sorted(["Canceled" if how == "cancel" else "TimeoutError", "second"])
    assert sem.available == 0 and sem.waiting == 0
    sem.release(4)


class _SilentCanceler:
    """A canceler whose cancellation wakes nobody: lets the grant win against a done ctx."""

    _err = None

    def _add_waker(self, token, wake):
        return True

    def _remove_waker(self, token):
        return True

    def _fresh_err(self):
        return Canceled()


def test_granted_after_cancel_gives_the_tokens_back(kind):
    canceler = _SilentCanceler()
    ctx = Context(None, canceler)
    sem = kind(2)
    sem.acquire(2)
    outcome = []

    def waiter():
        try:
            sem.acquire(2, ctx=ctx)
            outcome.append("acquired")
        except Canceled:
            outcome.append("canceled")

    t = start(waiter)
    wait_until(lambda: sem.waiting == 1)
    canceler._err = Canceled()  # cancelled, but the waker has not run yet
    sem.release(2)  # the grant wins the claim
    t.join(5)
    assert outcome == ["canceled"] and sem.available == 2 and sem.waiting == 0


def test_cancel_racing_grant_is_exactly_once(kind, busy_switching):
    """Either the grant or the cancel wins; tokens are never lost or duplicated."""
    sem = kind(1)
    wins = {"acquired": 0, "canceled": 0}
    for _ in range(150):
        sem.acquire()
        ctx, cancel = with_cancel(background())
        got = []

        def waiter():
            try:
                sem.acquire(ctx=ctx)
                got.append("acquired")
            except Canceled:
                got.append("canceled")

        t = start(waiter)
        wait_until(lambda: sem.waiting == 1)
        run_threads(2, lambda i: cancel() if i == 0 else sem.release())
        t.join(5)
        wins[got[0]] += 1
        if got[0] == "acquired":
            sem.release()
        assert sem.available == 1 and sem.waiting == 0
    assert sum(wins.values()) == 150


def test_waiters_are_served_in_fifo_order(kind):
    for _ in range(3):
        sem = kind(1)
        sem.acquire()
        order = []

        def waiter(i):
            sem.acquire()
            order.append(i)
            sem.release()

        threads = []
        for i in range(8):
            threads.append(start(waiter, i))
            wait_until(lambda: sem.waiting == i + 1)
        sem.release()
        for t in threads:
            t.join(5)
        assert order == list(range(8)) and sem.available == 1


@pytest.mark.parametrize("size", [1, 3])
def test_stress_never_more_than_size_held(kind, size, busy_switching):
    threads, per_thread = 8, 1500
    for round_ in range(3):
        sem = kind(size)
        held, high, acquisitions = AtomicInt64(), AtomicInt64(), AtomicInt64()

        def body(index):
            rng = random.Random(index * 1000 + round_)
            for _ in range(per_thread):
                n = rng.randint(1, size)
                mode = rng.random()
                if mode < 0.1:
                    if not sem.try_acquire(n):
                        continue
                elif mode < 0.2:
                    try:
                        sem.acquire(n, timeout=0.0005)
                    except TimeoutError:
                        continue
                else:
                    sem.acquire(n)
                high.fetch_max(held.add(n))
                acquisitions.inc()
                if held.load() > size:
                    raise AssertionError(f"{held.load()} tokens held, size {size}")
                held.sub(n)
                sem.release(n)

        run_threads(threads, body)
        assert high.load() <= size and held.load() == 0
        assert sem.available == size and sem.waiting == 0
        assert acquisitions.load() > threads * per_thread // 2


def test_stress_with_cancels_keeps_every_token(kind, busy_switching):
    sem = kind(4)
    held, high, done = AtomicInt64(), AtomicInt64(), AtomicInt64()
    ctx, cancel = with_cancel(background())

    def body(index):
        if index == 0:
            time.sleep(0.05)
            cancel()
            return
        rng = random.Random(index)
        while True:
            n = rng.randint(1, 4)
            try:
                sem.acquire(n, ctx=ctx)
            except Canceled:
                return
            high.fetch_max(held.add(n))
            held.sub(n)
            done.inc()
            sem.release(n)

    run_threads(7, body)
    assert high.load() <= 4 and sem.available == 4 and sem.waiting == 0 and done.load() > 0


@pytest.mark.parametrize("kind", [Semaphore, WeightedSemaphore])
def test_timeout_beyond_timeout_max_waits_instead_of_overflowing(kind):
    """acquire(timeout=1e10) (beyond threading.TIMEOUT_MAX) was an OverflowError."""
    sem = kind(1)
    sem.acquire()
    releaser = threading.Timer(0.05, sem.release)
    releaser.start()
    assert sem.acquire(timeout=threading.TIMEOUT_MAX * 2) is True
    releaser.join()
    sem.release()
