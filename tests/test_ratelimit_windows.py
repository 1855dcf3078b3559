"""patterns.ratelimit window limiters: SlidingWindowLog (exact), SlidingWindowCounter, FixedWindow."""

import math
import random
import threading
import time

import pytest

from conftest import GIL_DISABLED, run_threads
from patterns.context import Canceled, background, with_cancel, with_timeout
from patterns.ratelimit import FixedWindow, SlidingWindowCounter, SlidingWindowLog

KINDS = [SlidingWindowLog, SlidingWindowCounter, FixedWindow]


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


# -- shared behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "limit, window, exc, message",
    [
        (-1, 1, ValueError, "limit must be >= 0, got -1"),
        (1.5, 1, TypeError, "limit must be an int, got float"),
        (True, 1, TypeError, "limit must be an int, got bool"),
        (1, 0, ValueError, "window must be a finite number of seconds > 0, got 0"),
        (1, -1, ValueError, "window must be a finite number of seconds > 0"),
        (1, float("nan"), ValueError, "window must be a finite"),
        (1, float("inf"), ValueError, "window must be a finite"),
        (1, "1", TypeError, "window must be a number of seconds, got str"),
    ],
)
def test_bad_construction(kind, limit, window, exc, message):
    with pytest.raises(exc, match=message):
        kind(limit, window)


@pytest.mark.parametrize("kind", KINDS)
def test_an_instance_whose_init_never_ran_admits_nothing_quietly(kind, capsys):
    # __new__ without __init__: limit 0, and no division by a zero window in the compiled
    # noexcept paths (that printed "Exception ignored ... ZeroDivisionError" on every call)
    lim = kind.__new__(kind)
    assert (lim.allow(), lim.remaining(), lim.retry_after(), lim.reset_after()) == (False, 0, math.inf, 0.0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", KINDS)
def test_bad_n_and_clock(kind):
    lim = kind(3, 1, clock=Clock())
    for method in ("allow", "wait", "retry_after"):
        with pytest.raises(ValueError, match="n must be >= 0, got -2"):
            getattr(lim, method)(-2)
        with pytest.raises(TypeError, match="n must be an int, got str"):
            getattr(lim, method)("1")
    assert lim.remaining() == 3
    with pytest.raises(TypeError, match="clock must be"):
        kind(1, 1, clock=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_limit_per_window_then_refused_without_change(kind):
    clock = Clock(1000.0)
    lim = kind(5, 1.0, clock=clock)
    assert lim.limit == 5 and lim.window == 1.0
    assert lim.remaining() == 5 and lim.reset_after() == 0
    assert [lim.allow() for _ in range(5)] == [True] * 5
    for _ in range(10):
        assert not lim.allow()
        assert not lim.allow(2)
    assert lim.remaining() == 0
    assert lim.allow(0)
    clock.now += 2.0  # two windows later everything is gone, whichever kind
    assert lim.remaining() == 5
    assert lim.allow(5)


@pytest.mark.parametrize("kind", KINDS)
def test_n_above_limit_fails(kind):
    lim = kind(3, 1, clock=Clock())
    assert not lim.allow(4)
    assert lim.retry_after(4) == math.inf
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"n must be <= limit \(3\)"):
        lim.wait(4, timeout=5)
    assert time.monotonic() - started < 0.5
    assert lim.remaining() == 3


@pytest.mark.parametrize("kind", KINDS)
def test_zero_limit_admits_nothing(kind):
    lim = kind(0, 1, clock=Clock())
    assert not lim.allow()
    assert lim.allow(0)
    assert lim.remaining() == 0 and lim.reset_after() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_sub_second_window_and_fractional_rate(kind):
    """3 per 0.25 s (12/s) and 1 per 2.5 s (0.4/s)."""
    clock = Clock(1000.0)
    lim = kind(3, 0.25, clock=clock)
    assert lim.allow(3) and not lim.allow()
    clock.now += 0.5
    assert lim.allow(3) and not lim.allow()
    slow = kind(1, 2.5, clock=clock)
    clock.now = 1002.5  # a window boundary of 2.5 s windows
    assert slow.allow() and not slow.allow()
    clock.now += 1.0
    assert not slow.allow()
    clock.now += 4.0
    assert slow.allow()


@pytest.mark.parametrize("kind", KINDS)
def test_clock_going_backwards_never_admits_more(kind):
    clock = Clock()
    lim = kind(10, 1.0, clock=clock)
    admitted = 0
    for i in range(100):
        clock.now = 1000.0 if i % 2 == 0 else 1000.1
        admitted += lim.allow()
    assert admitted == 10


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_and_reset_after(kind):
    clock = Clock(1000.0)
    lim = kind(2, 1.0, clock=clock)
    assert lim.retry_after() == 0
    assert lim.allow(2)
    wait = lim.retry_after()
    assert 0 < wait <= 2.0  # the counter waits for the previous window to fade
    assert 0 < lim.reset_after() <= 2.0
    clock.now += wait
    assert lim.allow()


@pytest.mark.parametrize("kind", KINDS)
def test_wait_fails_at_once_when_timeout_is_too_short(kind):
    clock = Clock(1000.0)
    lim = kind(1, 10.0, clock=clock)
    assert lim.allow()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than the timeout"):
        lim.wait(timeout=0.5)
    with with_timeout(background(), 0.5) as ctx:
        with pytest.raises(TimeoutError):
            lim.wait(ctx=ctx)
    assert time.monotonic() - started < 0.3
    assert lim.remaining() == 0
    clock.now += 20
    assert lim.remaining() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_wait_sleeps_until_there_is_room(kind):
    lim = kind(2, 0.1)
    assert lim.wait(2, timeout=1) is True
    started = time.monotonic()
    assert lim.wait(1, timeout=2) is True
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_wait_with_ctx_cancelled_before_and_during(kind):
    lim = kind(1, 1.0, clock=Clock())  # time stands still: no room ever comes
    assert lim.allow()
    ctx, cancel = with_cancel(background())
    cancel()
    with pytest.raises(Canceled):
        lim.wait(ctx=ctx)
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.05, cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Canceled):
            lim.wait(ctx=ctx)
    finally:
        timer.join()
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threads", [4, 8])
def test_threads_admit_exactly_the_limit(kind, threads):
    for _ in range(20 if GIL_DISABLED else 4):
        lim = kind(300, 1.0, clock=lambda: 1000.25)
        counts = [0] * threads

        def hammer(i):
            local = 0
            for _ in range(200):
                local += lim.allow()
            counts[i] = local

        run_threads(threads, hammer)
        assert sum(counts) == 300


@pytest.mark.parametrize("kind", KINDS)
def test_threads_with_a_moving_clock_stay_within_the_bound(kind):
    """Threads move a shared clock forward: admitted per window never exceeds the kind's bound."""
    clock_lock = threading.Lock()
    ticks = [0]

    def clock():
        with clock_lock:
            ticks[0] += 1
            return 1000.0 + ticks[0] * 0.001  # 1 ms per reading: 4 windows over the test

    lim = kind(50, 1.0, clock=clock)
    stamps = []
    lock = threading.Lock()

    def hammer(i):
        for _ in range(1000):
            if lim.allow():
                with lock:
                    stamps.append(ticks[0])

    run_threads(4, hammer)
    assert 150 <= len(stamps) <= 300  # 4 s of clock, 50 per second (plus a boundary's worth)


# -- SlidingWindowLog: exact ---------------------------------------------------------------------


def test_log_matches_the_exact_model():
    """Every decision equals the brute-force one: count admissions in (now - window, now]."""
    rng = random.Random(5)
    for limit, window in [(1, 0.5), (3, 1.0), (7, 0.3), (20, 2.0)]:
        clock = Clock(50.0)
        lim = SlidingWindowLog(limit, window, clock=clock)
        admitted = []
        for _ in range(1500):
            clock.now += rng.choice([0.0, 0.001, 0.01, 0.05, 0.2])
            n = rng.choice([0, 1, 1, 1, 2, 3])
            inside = sum(1 for t in admitted if t > clock.now - window)
            expect = n == 0 or inside + n <= limit
            assert lim.remaining() == limit - inside
            assert lim.allow(n) is expect
            if expect:
                admitted.extend([clock.now] * n)


def test_log_reset_after_is_when_the_newest_leaves():
    clock = Clock(10.0)
    lim = SlidingWindowLog(3, 1.0, clock=clock)
    lim.allow()
    clock.now = 10.4
    lim.allow(2)
    assert lim.retry_after() == pytest.approx(0.6)  # the oldest leaves at 11.0
    assert lim.retry_after(3) == pytest.approx(1.0)  # all three gone at 11.4
    assert lim.reset_after() == pytest.approx(1.0)
    clock.now = 11.0
    assert lim.remaining() == 1
    assert lim.allow() and not lim.allow()


def test_log_limit_is_bounded():
    with pytest.raises(ValueError, match="limit must be <= 10000000"):
        SlidingWindowLog(10**8, 1)


# -- SlidingWindowCounter: the weighted estimate -------------------------------------------------


def test_counter_weights_the_previous_window():
    clock = Clock(100.0)  # a window boundary
    lim = SlidingWindowCounter(10, 1.0, clock=clock)
    assert lim.allow(10) and not lim.allow()
    clock.now = 101.5  # halfway through the next window: previous counts 10 * 0.5 = 5
    assert lim.remaining() == 5
    assert lim.allow(5) and not lim.allow()
    clock.now = 101.75  # previous 10 * 0.25 = 2.5, current 5: 7.5 used
    assert lim.remaining() == 2
    assert lim.allow(2) and not lim.allow()
    clock.now = 103.0  # two windows on: all forgotten
    assert lim.remaining() == 10


def test_counter_matches_the_model():
    rng = random.Random(9)
    limit, window = 8, 0.5
    clock = Clock(20.0)
    lim = SlidingWindowCounter(limit, window, clock=clock)
    idx, cur, prev = None, 0, 0
    for _ in range(2000):
        clock.now += rng.choice([0.0, 0.01, 0.05, 0.125, 0.3])
        n = rng.choice([1, 1, 2, 3])
        i = math.floor(clock.now / window)
        if idx is None or i > idx:
            prev = cur if idx is not None and i == idx + 1 else 0
            cur, idx = 0, i
        est = prev * (1 - (clock.now - i * window) / window) + cur
        expect = est + n <= limit + 1e-9
        assert lim.allow(n) is expect
        if expect:
            cur += n


# -- FixedWindow ---------------------------------------------------------------------------------


def test_fixed_window_boundaries():
    clock = Clock(100.9)
    lim = FixedWindow(5, 1.0, clock=clock)
    assert lim.allow(5) and not lim.allow()
    assert lim.reset_after() == pytest.approx(0.1)
    clock.now = 101.0  # a new window: 5 more right away (the known fixed-window burst)
    assert lim.allow(5) and not lim.allow()
    assert lim.retry_after() == pytest.approx(1.0)


# -- wait: injected sleep, delays beyond threading.TIMEOUT_MAX ----------------------------------


def test_window_wait_sleeps_with_the_injected_sleep():
    now = [5.0]

    def clock():
        return now[0]

    def sleep(seconds):
        now[0] += seconds

    lim = FixedWindow(1, 10, clock=clock, sleep=sleep)
    assert lim.allow()
    assert lim.wait(1) is True
    assert now[0] == pytest.approx(10.0)  # the next fixed window
    with pytest.raises(TypeError, match="sleep must be a callable"):
        FixedWindow(1, 10, sleep="no")


def test_window_wait_on_a_delay_beyond_timeout_max_sleeps_in_slices():
    """Race 7 of issue 12: a delay past threading.TIMEOUT_MAX raised OverflowError."""
    lim = SlidingWindowLog(1, 1e12)
    assert lim.allow()
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.3, cancel)
    timer.start()
    try:
        with pytest.raises(Canceled):
            lim.wait(1, ctx=ctx)
    finally:
        timer.cancel()
