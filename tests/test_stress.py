"""Many-thread invariant stress: the promises that only break when threads really run at once.

Each test races the operations that end a blocking call (close, cancel, timeout, shutdown,
reset) against the calls themselves, many times, and then checks an exact invariant: values
delivered exactly once, permits never over capacity and none lost, every future finished,
timer entries and children all gone, limiters admitting exactly their budget, counter totals
exact.  Loop counts scale with FTSYNC_STRESS_SCALE (`make tsan` runs them scaled down under
ThreadSanitizer, where a data race is reported even when the invariant happens to hold).
Every test arms the watchdog: a hang dumps all stacks and fails instead of stalling CI.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections import Counter

import pytest

from atomics import AtomicCounter, AtomicInt64
from conftest import run_threads, stress_rounds
from patterns import (
    Canceled,
    Channel,
    ChannelClosed,
    ContextError,
    Recv,
    Semaphore,
    WeightedSemaphore,
    WorkerPool,
    after_func,
    background,
    select,
    with_cancel,
    with_timeout,
)
from patterns.context import _TIMER
from patterns.ratelimit import FixedWindow, SlidingWindowCounter, SlidingWindowLog, TokenBucket

THREADS = 8


# -- channels and select ---------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 1, 16])
def test_channel_delivers_exactly_once_racing_close_and_cancel(capacity, watchdog):
    """Producers send (some with a ctx that gets cancelled) while a closer closes mid-stream;
    consumers receive with recv_ok and timeouts, or with select.  Every value whose send
    returned is received exactly once; no value whose send failed is ever received."""
    watchdog(120)
    producers = consumers = THREADS // 2
    for _ in range(stress_rounds(30)):
        main, other = Channel(capacity), Channel(capacity)
        ctx, cancel = with_cancel(background())
        sent: list[list[int]] = [[] for _ in range(producers)]
        received: list[list[int]] = [[] for _ in range(consumers)]

        def produce(index: int) -> None:
            channel = main if index % 2 else other
            send_ctx = ctx if index % 4 == 1 else None
            for i in range(200):
                value = index * 1_000_000 + i
                try:
                    channel.send(value, ctx=send_ctx, timeout=10)
                except (ChannelClosed, Canceled):
                    return  # not sent, and neither will any later value be
                sent[index].append(value)

        def consume(index: int) -> None:
            open_channels = [main, other]
            while open_channels:
                if index % 2:
                    chosen = select(*(Recv(c) for c in open_channels), timeout=10)
                    if chosen.ok:
                        received[index].append(chosen.value)
                    else:  # that case's channel is closed and drained
                        del open_channels[chosen.index]
                    continue
                for channel in list(open_channels):
                    try:
                        value, ok = channel.recv_ok(timeout=0.0005)
                    except TimeoutError:
                        continue
                    if ok:
                        received[index].append(value)
                    else:
                        open_channels.remove(channel)

        def close_midway() -> None:
            time.sleep(random.uniform(0, 0.002))
            cancel()
            time.sleep(random.uniform(0, 0.002))
            main.close()
            other.close()

        closer = threading.Thread(target=close_midway)
        closer.start()
        run_threads(producers + consumers,
                    lambda i: produce(i) if i < producers else consume(i - producers))
        closer.join(10)
        assert not closer.is_alive()
        delivered = Counter(v for r in received for v in r)
        assert delivered == Counter(v for s in sent for v in s)
        assert max(delivered.values(), default=1) == 1


# -- semaphores ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Semaphore, WeightedSemaphore])
def test_semaphore_never_over_capacity_and_no_permit_lost(kind, watchdog):
    """Acquirers with short timeouts and cancelled contexts race releasers: the tokens in use
    never exceed the size, and afterwards exactly ``size`` tokens are free again."""
    watchdog(120)
    size = 5
    for _ in range(stress_rounds(20)):
        sem = kind(size)
        in_use = AtomicInt64()
        over = AtomicInt64()
        outcomes = AtomicCounter()
        contexts = [with_cancel(background()) for _ in range(4)]

        def work(index: int) -> None:
            rng = random.Random(index)
            for i in range(150):
                n = rng.randint(1, 3) if kind is WeightedSemaphore else 1
                ctx, _ = contexts[(index + i) % len(contexts)]
                try:
                    sem.acquire(n, timeout=rng.choice([0, 0.0005, 0.002]), ctx=ctx if i % 3 == 0 else None)
                except (TimeoutError, ContextError):
                    outcomes.inc()
                    continue
                if in_use.add(n) > size:
                    over.inc()
                in_use.sub(n)
                sem.release(n)

        def cancel_some() -> None:
            for _, cancel in contexts[:2]:
                time.sleep(0.001)
                cancel()

        canceller = threading.Thread(target=cancel_some)
        canceller.start()
        run_threads(THREADS, work)
        canceller.join(10)
        assert over.load() == 0
        assert in_use.load() == 0
        assert sem.try_acquire(size)  # no permit lost ...
        assert not sem.try_acquire(1)  # ... and none duplicated
        sem.release(size)


# -- worker pools ----------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["shutdown", "cancel_futures", "cancel"])
def test_pool_futures_all_end_when_shutdown_races_submit(ending, watchdog):
    """Submitters race shutdown (or cancel): every future they got ends done or cancelled,
    none is stuck, and the pool's threads are gone (the autouse leak check)."""
    watchdog(120)
    for _ in range(stress_rounds(15)):
        pool = WorkerPool(4)
        futures: list[list[concurrent.futures.Future]] = [[] for _ in range(THREADS)]
        refused = AtomicInt64()

        def submit(index: int) -> None:
            for i in range(100):
                try:
                    futures[index].append(pool.submit(pow, i, 2))
                except RuntimeError:  # after shutdown / cancel: refused before queueing
                    refused.inc()

        def end_pool() -> None:
            time.sleep(random.uniform(0, 0.002))
            if ending == "cancel":
                pool.cancel()
            pool.shutdown(wait=False, cancel_futures=ending == "cancel_futures")

        ender = threading.Thread(target=end_pool)
        ender.start()
        run_threads(THREADS, submit)
        ender.join(10)
        every = [f for fs in futures for f in fs]
        done, stuck = concurrent.futures.wait(every, timeout=20)
        assert not stuck
        for future in done:
            assert future.cancelled() or future.exception(0) is not None or future.result(0) is not None
        pool.shutdown(wait=True)
        assert len(every) + refused.load() == THREADS * 100


def test_pool_imap_and_run_racing_cancel_end_with_the_ctx_error(watchdog):
    """imap and run consumers racing pool.cancel() end normally or with the pool's
    cancellation error, never another error and never a hang."""
    watchdog(120)
    for _ in range(stress_rounds(20)):
        pool = WorkerPool(4)
        errors: list[BaseException] = []

        def consume(index: int) -> None:
            try:
                if index % 2:
                    for _ in pool.imap(abs, range(500), window=4, ordered=index % 4 == 1):
                        pass
                else:
                    for _ in pool.run(abs, range(500)):
                        pass
            except ContextError:
                pass
            except BaseException as exc:  # noqa: BLE001 - the assertion below names it
                errors.append(exc)

        def cancel() -> None:
            time.sleep(random.uniform(0, 0.003))
            pool.cancel()

        canceller = threading.Thread(target=cancel)
        canceller.start()
        run_threads(4, consume)
        canceller.join(10)
        pool.shutdown(wait=True)
        assert errors == []


# -- contexts --------------------------------------------------------------------------------


def test_cancel_racing_child_creation_leaves_no_child_and_no_timer_entry(watchdog):
    """Children (with and without deadlines) made while their parent is cancelled: all end
    cancelled, the parent keeps no child, and no deadline-timer entry is left behind."""
    watchdog(120)
    for _ in range(stress_rounds(100)):
        parent, cancel = with_cancel(background())
        children: list[list] = [[] for _ in range(THREADS)]

        def make(index: int) -> None:
            for i in range(20):
                if i % 2:
                    children[index].append(with_timeout(parent, 3600)[0])
                else:
                    children[index].append(with_cancel(parent)[0])
                if index == 0 and i == 10:
                    cancel()

        run_threads(THREADS, make)
        assert all(child.err() is not None for kids in children for child in kids)
        assert parent._canceler._child_count() == 0
        assert _TIMER.pending() == 0


def test_after_func_runs_exactly_once_or_is_stopped(watchdog):
    """after_func registrations racing their ctx's cancel and their own stop(): each fn runs
    exactly once, unless its stop() returned True, and then never."""
    watchdog(120)
    for _ in range(stress_rounds(40)):
        ctx, cancel = with_cancel(background())
        runs = AtomicCounter()
        stopped = AtomicInt64()
        registered = 40 * THREADS

        def register(index: int) -> None:
            for i in range(40):
                stop = after_func(ctx, runs.inc)
                if index == 0 and i == 20:
                    cancel()
                if i % 2 and stop():
                    stopped.inc()

        run_threads(THREADS, register)
        deadline = time.monotonic() + 10
        while runs.value() + stopped.load() < registered and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)  # a run beyond the count would land here
        assert runs.value() + stopped.load() == registered


# -- limiters --------------------------------------------------------------------------------


class _FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("make", [
    lambda clock: TokenBucket(0.001, 64, clock=clock),
    lambda clock: SlidingWindowLog(64, 10.0, clock=clock),
    lambda clock: SlidingWindowCounter(64, 10.0, clock=clock),
    lambda clock: FixedWindow(64, 10.0, clock=clock),
], ids=["TokenBucket", "SlidingWindowLog", "SlidingWindowCounter", "FixedWindow"])
def test_limiter_admits_exactly_its_budget_under_16_threads(make, watchdog):
    """With the clock frozen nothing refills: 16 threads together get exactly the budget."""
    watchdog(60)
    for _ in range(stress_rounds(50)):
        limiter = make(_FrozenClock())
        admitted = AtomicInt64()

        def hammer(index: int) -> None:
            for _ in range(20):
                if limiter.allow():
                    admitted.inc()

        run_threads(16, hammer)
        assert admitted.load() == 64


# -- counters --------------------------------------------------------------------------------


def test_counter_is_exact_with_handles_made_and_dropped_during_reset(watchdog):
    """Threads make a handle, count on it and drop it, again and again, while another thread
    resets: what the resets returned plus what is left is exactly what was counted."""
    watchdog(60)
    for _ in range(stress_rounds(10)):
        counter = AtomicCounter()
        taken = AtomicInt64()
        running = threading.Event()
        running.set()

        def count(index: int) -> None:
            for _ in range(300):
                handle = counter.handle()
                for _ in range(10):
                    handle.inc()
                counter.add(2)
                del handle

        def reset() -> None:
            while running.is_set():
                taken.add(counter.reset())

        resetter = threading.Thread(target=reset)
        resetter.start()
        try:
            run_threads(THREADS, count)
        finally:
            running.clear()
            resetter.join(10)
        assert taken.load() + counter.value() == THREADS * 300 * 12
