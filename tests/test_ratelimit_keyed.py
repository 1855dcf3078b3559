"""KeyedLimiter (bounded per-key limiters) and the rate_limited decorator / RateLimited."""

import asyncio
import threading
import time

import pytest

from conftest import GIL_DISABLED, run_threads
from patterns.ratelimit import (
    FixedWindow,
    KeyedLimiter,
    RateLimited,
    SlidingWindowLog,
    TokenBucket,
    rate_limited,
)


class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


# -- KeyedLimiter --------------------------------------------------------------------------------


def test_each_key_has_its_own_limiter():
    clock = Clock()
    keyed = KeyedLimiter(lambda: TokenBucket(1, 2, clock=clock))
    assert keyed.allow("a", 2) and not keyed.allow("a")
    assert keyed.allow("b") and keyed.allow("b") and not keyed.allow("b")
    assert keyed.retry_after("a") == pytest.approx(1.0)
    assert keyed.limiter("a") is keyed.limiter("a")
    assert len(keyed) == 2 and "a" in keyed and "c" not in keyed
    clock.now += 1
    assert keyed.allow("a")
    assert keyed.wait("c", 1, timeout=0) is True


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        (dict(factory=5), TypeError, "factory must be a zero-argument callable"),
        (dict(max_keys=0), ValueError, "max_keys must be >= 1, got 0"),
        (dict(max_keys=1.5), TypeError, "max_keys must be an int"),
        (dict(idle_timeout=0), ValueError, "idle_timeout must be > 0 or None"),
        (dict(idle_timeout="1"), TypeError, "idle_timeout must be a number"),
        (dict(clock=3), TypeError, "clock must be a zero-argument callable"),
    ],
)
def test_bad_arguments(kwargs, exc, message):
    kwargs.setdefault("factory", lambda: FixedWindow(1, 1))
    with pytest.raises(exc, match=message):
        KeyedLimiter(**kwargs)


def test_max_keys_bounds_memory_dropping_the_least_recently_used():
    clock = Clock()
    keyed = KeyedLimiter(lambda: FixedWindow(1, 10, clock=clock), max_keys=100, clock=clock)
    for i in range(1000):
        clock.now += 0.001
        keyed.allow(i)
        keyed.allow("hot")  # used all the time: never the least recently used
        assert len(keyed) <= 100
    assert "hot" in keyed and 999 in keyed and 0 not in keyed


def test_idle_keys_are_dropped():
    clock = Clock()
    keyed = KeyedLimiter(lambda: TokenBucket(1, 1, clock=clock), idle_timeout=10, clock=clock)
    for i in range(50):
        keyed.allow(i)
    clock.now += 4
    keyed.allow("busy")
    clock.now += 7  # the 50 are 11 s idle, "busy" 7 s
    keyed.allow("new")
    assert len(keyed) == 2 and "busy" in keyed and "new" in keyed


def test_threads_on_one_key_share_one_limiter():
    for _ in range(10 if GIL_DISABLED else 2):
        keyed = KeyedLimiter(lambda: TokenBucket(1000, 100, clock=lambda: 1.0), max_keys=100)
        small = KeyedLimiter(lambda: TokenBucket(1000, 100, clock=lambda: 1.0), max_keys=10)
        counts = [0] * 4

        def hammer(i):
            for j in range(100):
                counts[i] += keyed.allow("shared")
                keyed.allow(f"k{i}-{j % 5}")
                small.allow(f"k{i}-{j}")
                assert len(small) <= 10

        run_threads(4, hammer)
        assert sum(counts) == 100  # one limiter for the key, never two made by racing threads
        assert len(keyed) == 21


# -- rate_limited --------------------------------------------------------------------------------


def test_non_blocking_refusal_raises_rate_limited_with_retry_after():
    clock = Clock()
    calls = []

    @rate_limited(TokenBucket(2, 2, clock=clock), block=False)
    def work(x):
        calls.append(x)
        return x * 2

    assert work(1) == 2 and work(2) == 4
    with pytest.raises(RateLimited) as info:
        work(3)
    assert info.value.retry_after == pytest.approx(0.5)
    assert "retry after 0.500 s" in str(info.value)
    assert calls == [1, 2] and work.__name__ == "work"


def test_blocking_waits_then_runs():
    @rate_limited(TokenBucket(50, 1))
    def work():
        return "done"

    started = time.monotonic()
    assert [work() for _ in range(3)] == ["done"] * 3
    assert 0.02 < time.monotonic() - started < 1.0


def test_blocking_with_a_short_timeout_raises_rate_limited_at_once():
    @rate_limited(SlidingWindowLog(1, 30, clock=Clock()), timeout=0.1)
    def work():
        return 1

    assert work() == 1
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        work()
    assert time.monotonic() - started < 0.1
    assert info.value.retry_after == pytest.approx(30)


def test_keyed_decorator():
    clock = Clock()
    per_user = KeyedLimiter(lambda: FixedWindow(1, 60, clock=clock))

    @rate_limited(per_user, block=False, key=lambda user, *args: user)
    def handle(user, payload):
        return (user, payload)

    assert handle("ann", 1) == ("ann", 1)
    assert handle("bob", 2) == ("bob", 2)
    with pytest.raises(RateLimited):
        handle("ann", 3)


def test_decorator_bad_arguments():
    with pytest.raises(TypeError, match="limiter must be a rate limiter"):
        rate_limited(object())
    with pytest.raises(TypeError, match="a KeyedLimiter needs key="):
        rate_limited(KeyedLimiter(lambda: FixedWindow(1, 1)))
    with pytest.raises(TypeError, match="key= needs a KeyedLimiter"):
        rate_limited(FixedWindow(1, 1), key=lambda: 1)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        rate_limited(FixedWindow(1, 1), timeout=-1)


def test_async_functions_wait_without_blocking_the_loop():
    lim = TokenBucket(20, 1)

    @rate_limited(lim)
    async def work(i):
        return i

    async def main():
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.005)

        t = asyncio.ensure_future(ticker())
        results = await asyncio.gather(*(work(i) for i in range(4)))
        stop = True
        await t
        return results, ticks

    started = time.monotonic()
    results, ticks = asyncio.run(main())
    assert results == [0, 1, 2, 3]
    assert time.monotonic() - started >= 0.1  # 3 tokens at 20/s after the first
    assert ticks >= 5  # the loop kept running while the calls waited


def test_async_non_blocking_and_cancel_gives_tokens_back():
    clock = Clock()
    lim = TokenBucket(1, 1, clock=clock)

    @rate_limited(lim)
    async def slow():
        return 1

    @rate_limited(lim, block=False)
    async def fast():
        return 2

    async def main():
        assert await fast() == 2
        with pytest.raises(RateLimited):
            await fast()
        task = asyncio.ensure_future(slow())  # needs 1 s (the clock stands still: forever)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert lim.tokens() == pytest.approx(0, abs=1e-9)  # the cancelled call's token came back


def test_async_window_limiter_waits():
    lim = FixedWindow(1, 0.05)

    @rate_limited(lim, timeout=2)
    async def work():
        return 1

    async def main():
        return [await work() for _ in range(3)]

    assert asyncio.run(main()) == [1, 1, 1]


def test_a_held_key_is_never_dropped_and_a_dropped_one_is_looked_up_again():
    clock = Clock()
    keyed = KeyedLimiter(lambda: TokenBucket(1, 1, clock=clock), idle_timeout=10, clock=clock)
    with keyed.hold("a") as held:
        assert held.allow() and not held.allow()
        clock.now += 100  # idle by the clock, but in use: the sweep must keep it
        keyed.allow("b")  # the first call past the sweep time sweeps
        assert "a" in keyed and keyed.limiter("a") is held
    clock.now += 100
    keyed.allow("b")  # sweeps: "a" is idle and no longer held
    assert "a" not in keyed
    assert keyed.limiter("a") is not held


def test_max_keys_eviction_skips_a_held_key():
    clock = Clock()
    keyed = KeyedLimiter(lambda: TokenBucket(1, 1, clock=clock), max_keys=10, clock=clock)
    with keyed.hold("oldest") as held:
        for k in range(30):
            clock.now += 1
            keyed.allow(k)
        assert keyed.limiter("oldest") is held
    assert len(keyed) <= 10


async def _held_async(keyed):
    async with keyed.hold("x") as lim:
        return lim.allow()


def test_hold_works_with_async_with():
    keyed = KeyedLimiter(lambda: TokenBucket(1, 1, clock=Clock()))
    assert asyncio.run(_held_async(keyed)) is True
    assert not keyed.allow("x")


# -- race 5 of issue 12: a swept key admits no more than its budget -------------------------------

SWEEP_ROUNDS = 500  # rounds of the sweep race below (scale here; about 7 s on 2 busy cores)
SWEEP_THREADS = 16
SWEEP_KEYS = 64
SWEEP_BURST = 2


def test_keys_swept_under_load_never_admit_more_than_their_burst():
    """Each round: every key idle past idle_timeout, then 16 threads at one frozen instant,
    each going over 64 keys (in its own order) twice.  A key's bucket is full either way (the
    old one or a fresh one), so exactly ``burst`` calls per key must pass.  Before the fix a
    thread holding an entry the sweep was dropping kept admitting from the old bucket while
    the others got a fresh, full one."""
    clock = Clock(0.0)
    keyed = KeyedLimiter(lambda: TokenBucket(1, SWEEP_BURST, clock=clock), idle_timeout=10, clock=clock)
    keys = [f"key-{k}" for k in range(SWEEP_KEYS)]
    counts = [[0] * SWEEP_KEYS for _ in range(SWEEP_THREADS)]
    bad = []
    rounds = []

    def next_round():
        per_key = [sum(c[k] for c in counts) for k in range(SWEEP_KEYS)]
        if rounds:
            bad.extend(n for n in per_key if n != SWEEP_BURST)
        rounds.append(per_key)
        for c in counts:
            c[:] = [0] * SWEEP_KEYS
        clock.now += 100.0  # every entry is idle now: the first call of the round sweeps

    barrier = threading.Barrier(SWEEP_THREADS, action=next_round)

    def body(index):
        order = list(range(SWEEP_KEYS))
        order = order[index * 4:] + order[:index * 4]
        mine = counts[index]
        for _ in range(SWEEP_ROUNDS):
            barrier.wait()
            for _ in range(SWEEP_BURST):
                for k in order:
                    mine[k] += keyed.allow(keys[k])
        barrier.wait()

    run_threads(SWEEP_THREADS, body)
    assert len(rounds) == SWEEP_ROUNDS + 1
    assert not bad, f"{len(bad)} key-rounds admitted {sorted(set(bad))}, not {SWEEP_BURST}"
