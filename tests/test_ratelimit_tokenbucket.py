"""patterns.ratelimit.TokenBucket: Go's x/time/rate semantics, lock-free, with a manual clock."""

import math
import threading
import time

import pytest

from conftest import GIL_DISABLED, run_threads
from patterns.context import Canceled, background, with_cancel, with_timeout
from patterns.ratelimit import INF, Reservation, TokenBucket

D = 0.1  # Go's test unit: t1 = t0 + 100 ms


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def set(self, now):
        self.now = now


def at(clock, k):
    """Go's t_k: k * 100 ms after t0 = 1000.0."""
    clock.set(1000.0 + k * D)


def reserve_at(lim, clock, k, n, act, ok=True):
    """Go's runReserve: reserve n at t_k, expecting (time to act t_act, ok)."""
    at(clock, k)
    r = lim.reserve(n)
    assert r.ok is ok
    if ok:
        assert r.time_to_act == pytest.approx(1000.0 + act * D, abs=1e-9)
    return r


def cancel_at(r, clock, k):
    at(clock, k)
    r.cancel()


# -- construction and bad input ------------------------------------------------------------------


def test_starts_full():
    clock = Clock()
    lim = TokenBucket(10, 5, clock=clock)
    assert lim.tokens() == 5
    assert [lim.allow() for _ in range(6)] == [True] * 5 + [False]
    assert lim.rate == 10.0 and lim.burst == 5


@pytest.mark.parametrize(
    "rate, burst, exc, message",
    [
        (-1, 1, ValueError, "rate must be >= 0"),
        (float("nan"), 1, ValueError, "rate must be >= 0"),
        ("10", 1, TypeError, "rate must be a number"),
        (True, 1, TypeError, "rate must be a number"),
        (10, -1, ValueError, "burst must be >= 0, got -1"),
        (10, 1.5, TypeError, "burst must be an int"),
        (10, 2**60, ValueError, "burst must be <="),
    ],
)
def test_bad_construction(rate, burst, exc, message):
    with pytest.raises(exc, match=message):
        TokenBucket(rate, burst)


def test_bad_clock():
    with pytest.raises(TypeError, match="clock must be"):
        TokenBucket(1, 1, clock=5)
    with pytest.raises(TypeError, match="clock\\(\\) must return"):
        TokenBucket(1, 1, clock=lambda: "now")


@pytest.mark.parametrize("method", ["allow", "reserve", "wait"])
def test_bad_n_changes_nothing(method):
    clock = Clock()
    lim = TokenBucket(10, 3, clock=clock)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        getattr(lim, method)(-1)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        getattr(lim, method)(1.0)
    with pytest.raises(TypeError, match="n must be an int, got bool"):
        getattr(lim, method)(True)
    assert lim.tokens() == 3


def test_bad_set_rate_and_burst_change_nothing():
    clock = Clock()
    lim = TokenBucket(10, 3, clock=clock)
    lim.allow()
    with pytest.raises(ValueError, match="rate must be >= 0"):
        lim.set_rate(-0.5)
    with pytest.raises(ValueError, match="rate must be >= 0"):
        lim.set_rate(float("nan"))
    with pytest.raises(ValueError, match="burst must be >= 0, got -2"):
        lim.set_burst(-2)
    assert (lim.rate, lim.burst, lim.tokens()) == (10.0, 3, 2)


def test_bad_wait_arguments():
    lim = TokenBucket(10, 3, clock=Clock())
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        lim.wait(1, timeout=-1)
    with pytest.raises(TypeError, match="ctx must be a Context"):
        lim.wait(1, ctx="ctx")
    assert lim.tokens() == 3


# -- the edge cases of the issue -----------------------------------------------------------------


def test_allow_zero_is_true_even_when_empty():
    lim = TokenBucket(1, 2, clock=Clock())
    assert lim.allow(2)
    assert not lim.allow(1)
    assert lim.allow(0)
    assert lim.reserve(0).ok and lim.reserve(0).delay() == 0
    assert lim.wait(0) is True
    assert lim.tokens() == 0


def test_n_above_burst_fails():
    clock = Clock()
    lim = TokenBucket(10, 3, clock=clock)
    assert not lim.allow(4)
    r = lim.reserve(4)
    assert not r.ok and r.delay() == math.inf and r.tokens == 0
    r.cancel()  # no effect
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"n must be <= burst \(3\)"):
        lim.wait(4, timeout=10)
    assert time.monotonic() - started < 0.5
    assert lim.tokens() == 3
    assert lim.allow(3)


def test_inf_rate_allows_everything():
    lim = TokenBucket(INF, 0, clock=Clock())
    assert all(lim.allow(10**6) for _ in range(100))
    r = lim.reserve(10**9)
    assert r.ok and r.delay() == 0
    assert lim.wait(10**9) is True
    assert lim.tokens() == math.inf
    r.cancel()
    assert lim.tokens() == math.inf


def test_failed_allow_and_reserve_change_nothing():
    clock = Clock()
    lim = TokenBucket(10, 4, clock=clock)
    assert lim.allow(3)
    before = lim.tokens()
    for _ in range(10):
        assert not lim.allow(2)
        assert not lim.reserve(5).ok
    assert lim.tokens() == before
    clock.now += 0.1  # one more token: 2 now
    assert lim.allow(2)


def test_refill_never_exceeds_burst():
    clock = Clock()
    lim = TokenBucket(100, 5, clock=clock)
    assert lim.allow(5)
    clock.now += 3600
    assert lim.tokens() == 5
    assert lim.allow(5)
    assert not lim.allow(1)


def test_refill_is_proportional_to_time():
    clock = Clock()
    lim = TokenBucket(4, 8, clock=clock)
    assert lim.allow(8)
    clock.now += 0.5
    assert lim.tokens() == pytest.approx(2)
    assert lim.allow(2) and not lim.allow(1)
    clock.now += 0.25
    assert lim.allow(1) and not lim.allow(1)


def test_set_burst_down_clamps_tokens():
    clock = Clock()
    lim = TokenBucket(1, 10, clock=clock)
    lim.set_burst(3)
    assert lim.burst == 3 and lim.tokens() == 3
    assert lim.allow(3) and not lim.allow(1)
    lim.set_burst(6)  # up: the tokens stay (0), the capacity grows
    assert lim.tokens() == pytest.approx(0, abs=1e-9)
    clock.now += 6
    assert lim.tokens() == 6


def test_set_rate_keeps_tokens():
    clock = Clock()
    lim = TokenBucket(1, 4, clock=clock)
    assert lim.allow(4)
    clock.now += 1  # 1 token
    lim.set_rate(10)
    assert lim.tokens() == pytest.approx(1)
    clock.now += 0.2  # +2
    assert lim.tokens() == pytest.approx(3)
    lim.set_rate(0)  # no refill: 3 tokens forever
    clock.now += 100
    assert lim.tokens() == pytest.approx(3)
    assert lim.allow(3) and not lim.allow(1)
    lim.set_rate(INF)
    assert lim.allow(100)
    lim.set_rate(2)  # from INF: starts full
    assert lim.tokens() == 4


def test_zero_rate_is_the_burst_only():
    clock = Clock()
    lim = TokenBucket(0, 3, clock=clock)
    assert lim.allow(2) and lim.allow(1) and not lim.allow(1)
    clock.now += 10**6
    assert not lim.allow(1)
    with pytest.raises(TimeoutError, match="would need longer than the timeout"):
        lim.wait(1, timeout=0.2)  # the documented error when the timeout is too short
    with pytest.raises(ValueError, match="could never end: the rate is 0"):
        lim.wait(1)  # no timeout, no deadline: it would block forever
    assert lim.tokens() == 0
    r = lim.reserve(1)  # current Go: ok, but never time to act
    assert r.ok and r.delay() == math.inf and r.time_to_act == math.inf
    assert lim.tokens() == -1
    r.cancel()
    assert lim.tokens() == 0


def test_tiny_rates_do_not_overflow():
    clock = Clock()
    lim = TokenBucket(1e-10, 2, clock=clock)
    assert lim.allow(2) and not lim.allow(1)
    r = lim.reserve(1)
    assert r.ok and r.delay() == pytest.approx(1e10, rel=1e-9)
    r.cancel()
    clock.now += 5e9
    assert lim.tokens() == pytest.approx(0.5)
    clock.now += 5e9
    assert lim.allow(1) and not lim.allow(1)
    clock.now += 1e30
    assert lim.tokens() == 2


def test_huge_rate():
    clock = Clock()
    lim = TokenBucket(1e12, 1000, clock=clock)
    assert lim.allow(1000) and not lim.allow(1)
    clock.now += 2e-9  # 1000 tokens back after 1 ns (the float clock has ~0.1 ps grain here)
    assert lim.allow(1000)


def test_clock_stepping_back_is_time_standing_still():
    """Issue 14: rate 10 stepped back 10 s once locked the bucket out (tokens() -99)."""
    clock = Clock(100.0)
    lim = TokenBucket(10, 5, clock=clock)
    assert lim.allow(3)
    clock.set(90.0)  # an NTP step back: nothing minted, nothing charged
    assert lim.tokens() == pytest.approx(2)
    assert lim.allow(2) and not lim.allow(1)
    clock.set(90.1)  # refill goes on from the new reading
    assert lim.tokens() == pytest.approx(1)
    assert lim.allow(1) and not lim.allow(1)
    clock.set(95.0)
    assert lim.tokens() == 5


def test_alternating_clock_admits_what_go_admits():
    """Two readings 100 ms apart, alternating: each step forward refills a token, as in Go,
    while the burst lasts; once the bucket is empty a refused call at the earlier reading
    does not move the bucket's time, so nothing more comes: 10 + 10."""
    clock = Clock(0.0)
    lim = TokenBucket(10, 10, clock=clock)
    admitted = 0
    for i in range(100):
        clock.set(100.0 if i % 2 == 0 else 100.1)
        admitted += lim.allow()
    assert admitted == 20


def test_clock_going_backwards_on_reserve():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 1, 2, 1)
    reserve_at(lim, clock, 0, 1, 1)  # Go's TestReserveJumpBack: t1
    reserve_at(lim, clock, 2, 2, 3)


# -- Go's reservation and cancel scenarios (as behaviour) ----------------------------------------


def test_simple_reserve():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    reserve_at(lim, clock, 0, 2, 2)
    reserve_at(lim, clock, 3, 2, 4)


def test_zero_burst_reserves_nothing():
    clock = Clock()
    lim = TokenBucket(10, 0, clock=clock)
    reserve_at(lim, clock, 0, 2, None, ok=False)
    reserve_at(lim, clock, 3, 2, None, ok=False)
    assert not lim.allow(1)
    assert lim.allow(0)


def test_mix_of_allow_and_reserve():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 3, None, ok=False)  # n > burst
    reserve_at(lim, clock, 0, 2, 0)
    at(clock, 1)
    assert not lim.allow(2)  # not enough tokens
    reserve_at(lim, clock, 1, 2, 2)
    at(clock, 1)
    assert not lim.allow(1)  # negative tokens
    at(clock, 3)
    assert lim.allow(1)


def test_cancel_invalid_reservation_has_no_effect():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 3, None, ok=False)
    cancel_at(r, clock, 0)
    reserve_at(lim, clock, 0, 2, 2)  # no extra tokens


def test_cancel_last_gives_all_back():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 2, 2)
    cancel_at(r, clock, 1)  # 2 tokens back
    reserve_at(lim, clock, 1, 2, 2)


def test_cancel_too_late_has_no_effect():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 2, 2)
    cancel_at(r, clock, 3)  # its time to act has passed
    reserve_at(lim, clock, 3, 2, 4)


def test_cancel_gives_nothing_when_later_reservations_claimed_it():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 1, 1)
    reserve_at(lim, clock, 0, 1, 2)
    cancel_at(r, clock, 0)  # 0 tokens back
    reserve_at(lim, clock, 0, 1, 3)


def test_cancel_gives_back_the_unclaimed_part():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 2, 2)
    reserve_at(lim, clock, 0, 1, 3)
    cancel_at(r, clock, 2)  # 1 token back
    reserve_at(lim, clock, 2, 2, 4)


def test_cancel_multi():
    clock = Clock()
    lim = TokenBucket(10, 4, clock=clock)
    reserve_at(lim, clock, 0, 4, 0)
    ra = reserve_at(lim, clock, 0, 3, 3)
    reserve_at(lim, clock, 0, 1, 4)
    rc = reserve_at(lim, clock, 0, 1, 5)
    cancel_at(rc, clock, 1)  # 1 token back
    cancel_at(ra, clock, 1)  # 2 tokens back, as if C had never been reserved
    reserve_at(lim, clock, 1, 3, 5)


def test_cancel_is_idempotent():
    clock = Clock()
    lim = TokenBucket(10, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 2, 2)
    for _ in range(3):
        cancel_at(r, clock, 0)
    assert lim.tokens() == pytest.approx(0, abs=1e-9)  # back once, not three times


def test_reserve_after_set_rate():
    clock = Clock()
    lim = TokenBucket(5, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    r = reserve_at(lim, clock, 0, 2, 4)
    at(clock, 2)
    lim.set_rate(10)
    reserve_at(lim, clock, 2, 1, 4)
    cancel_at(r, clock, 2)  # as Go: both tokens back, counted at the rate r was made under
    reserve_at(lim, clock, 2, 1, 3)


def test_reserve_after_set_burst():
    clock = Clock()
    lim = TokenBucket(5, 2, clock=clock)
    reserve_at(lim, clock, 0, 2, 0)
    reserve_at(lim, clock, 0, 2, 4)
    at(clock, 3)
    lim.set_burst(4)  # -0.5 tokens at t3; at t0 (the clock stepped back) still -0.5
    reserve_at(lim, clock, 0, 4, 9)  # 4 more need 0.9 s from t0 (Go's TestReserveSetBurst)


def test_reservation_delay_and_repr():
    clock = Clock()
    lim = TokenBucket(2, 1, clock=clock)
    assert lim.reserve().delay() == 0
    r = lim.reserve()
    assert r.delay() == pytest.approx(0.5)
    clock.now += 0.2
    assert r.delay() == pytest.approx(0.3)
    assert "Reservation 1 tokens" in repr(r)
    assert isinstance(r, Reservation) and r.tokens == 1
    assert "TokenBucket rate=2.0/s burst=1" in repr(lim)


# -- wait ----------------------------------------------------------------------------------------


def test_wait_returns_at_once_when_tokens_are_there():
    lim = TokenBucket(10, 3, clock=Clock())
    assert lim.wait(2, timeout=0) is True
    with pytest.raises(TimeoutError):
        lim.wait(2, timeout=0)
    assert lim.tokens() == pytest.approx(1)


def test_wait_sleeps_for_the_delay():
    lim = TokenBucket(20, 1)
    assert lim.allow()
    started = time.monotonic()
    assert lim.wait(1, timeout=2) is True
    assert 0.03 < time.monotonic() - started < 1.0


def test_wait_fails_at_once_when_timeout_is_shorter_than_the_delay():
    clock = Clock()
    lim = TokenBucket(1, 2, clock=clock)
    assert lim.allow(2)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than the timeout"):
        lim.wait(1, timeout=0.5)  # needs 1 s
    assert time.monotonic() - started < 0.3
    assert lim.tokens() == pytest.approx(0, abs=1e-9)  # nothing consumed
    clock.now += 1
    assert lim.allow(1)


def test_wait_fails_at_once_when_ctx_deadline_is_before_the_delay():
    clock = Clock()
    lim = TokenBucket(1, 1, clock=clock)
    assert lim.allow()
    with with_timeout(background(), 0.5) as ctx:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            lim.wait(1, ctx=ctx)
        assert time.monotonic() - started < 0.3
    assert lim.tokens() == pytest.approx(0, abs=1e-9)


def test_wait_with_cancelled_ctx_raises_at_once():
    lim = TokenBucket(1, 1, clock=Clock())
    ctx, cancel = with_cancel(background())
    cancel()
    with pytest.raises(Canceled):
        lim.wait(1, ctx=ctx)
    assert lim.tokens() == 1


def test_cancelling_a_wait_midway_gives_the_tokens_back():
    clock = Clock()  # the bucket's time stands still; the sleep is real (0.5 s needed)
    lim = TokenBucket(2, 1, clock=clock)
    assert lim.allow()
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.05, cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Canceled):
            lim.wait(1, ctx=ctx)
    finally:
        timer.join()
    assert time.monotonic() - started < 0.45  # the full delay would be 0.5 s
    assert lim.tokens() == pytest.approx(0, abs=1e-9)  # not -1: the reservation was returned
    clock.now += 0.5
    assert lim.allow()


# -- threads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [4, 8])
def test_threads_admit_exactly_the_burst(threads):
    """With time standing still, exactly ``burst`` single tokens pass, however they race."""
    for _ in range(30 if GIL_DISABLED else 5):
        lim = TokenBucket(1000, 500, clock=lambda: 5.0)
        counts = [0] * threads

        def hammer(i):
            local = 0
            for _ in range(400):
                local += lim.allow()
            counts[i] = local

        run_threads(threads, hammer)
        assert sum(counts) == 500


STEP_BACK_ROUNDS = 20  # rounds of the backward-step race below (scale here)


def test_threads_racing_backward_steps_admit_exactly_the_burst():
    """16 threads: half read a clock that steps back on every read (each of their decisions
    takes the locked path that moves the skew), half a frozen later reading (the lock-free
    path).  The rate is so small that no refill reaches a token, so however the two paths
    race, exactly ``burst`` tokens pass: a lost update on either path would show as more."""
    threads, burst = 16, 300
    for _ in range(STEP_BACK_ROUNDS):
        lock = threading.Lock()
        readings = [2000.0]

        def stepping_back():
            with lock:
                readings[0] -= 0.001
                return readings[0]

        clocks = {"back": stepping_back, "frozen": lambda: 2000.0}
        which = threading.local()
        which.kind = "frozen"
        lim = TokenBucket(1e-9, burst, clock=lambda: clocks[which.kind]())
        counts = [0] * threads

        def hammer(i):
            which.kind = "back" if i % 2 else "frozen"
            local = 0
            for _ in range(60):
                local += lim.allow()
            counts[i] = local

        run_threads(threads, hammer)
        assert sum(counts) == burst
        assert lim.tokens() == pytest.approx(0, abs=1e-6)


def test_threads_with_reserve_and_cancel_stay_consistent():
    """Reservations made by racing threads form one schedule (distinct times to act, the bucket
    being empty); cancelled latest first, at a standstill, each gives all its tokens back."""
    for _ in range(10 if GIL_DISABLED else 3):
        clock = Clock()
        lim = TokenBucket(100, 50, clock=clock)
        assert lim.allow(50)
        taken = []
        lock = threading.Lock()

        def grab(i):
            mine = [lim.reserve(1 + (i + j) % 3) for j in range(50)]
            assert all(r.ok for r in mine)
            with lock:
                taken.extend(mine)

        run_threads(4, grab)
        total = sum(r.tokens for r in taken)
        assert lim.tokens() == pytest.approx(-total)
        acts = sorted(r.time_to_act for r in taken)
        assert len(set(acts)) == len(acts)  # one schedule: nobody shares a slot
        for r in sorted(taken, key=lambda r: r.time_to_act, reverse=True):
            r.cancel()
        assert lim.tokens() == pytest.approx(0, abs=1e-6)


def test_set_rate_racing_allow_never_breaks_the_bucket():
    lim = TokenBucket(1000, 100, clock=lambda: 7.0)
    stop = threading.Event()
    admitted = [0] * 4

    def flip():
        rates = [10, 1000, 0, 5]
        i = 0
        while not stop.is_set():
            lim.set_rate(rates[i % 4])
            i += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:

        def hammer(i):
            for _ in range(3000):
                admitted[i] += lim.allow()

        run_threads(4, hammer)
    finally:
        stop.set()
        flipper.join()
    # time stands still: set_rate keeps the token count, so the burst is all there ever was
    assert sum(admitted) <= 100
    assert lim.tokens() == pytest.approx(100 - sum(admitted), abs=1e-6)


def test_accuracy_four_threads_five_seconds():
    """Over 5 s at rate r, burst b: admitted <= b + r*t + 1 and >= 0.99 of that."""
    # burst = 0.5 s of tokens: a scheduler stall of the threads (2 shared cores) shorter than
    # that loses nothing, so the lower bound measures the limiter, not the machine's load
    rate, burst, seconds = 2000.0, 1000, 5.0
    lim = TokenBucket(rate, burst)
    start = time.monotonic()
    deadline = start + seconds
    counts = [0] * 4

    def hammer(i):
        local = 0
        while time.monotonic() < deadline:
            for _ in range(50):
                local += lim.allow()
        counts[i] = local

    run_threads(4, hammer)
    elapsed = time.monotonic() - start
    admitted = sum(counts)
    assert admitted <= burst + rate * elapsed + 1
    assert admitted >= 0.99 * (burst + rate * seconds)


def test_retry_after():
    clock = Clock()
    lim = TokenBucket(4, 2, clock=clock)
    assert lim.retry_after() == 0 and lim.retry_after(0) == 0
    assert lim.allow(2)
    assert lim.retry_after() == pytest.approx(0.25)
    assert lim.retry_after(2) == pytest.approx(0.5)
    assert lim.retry_after(3) == math.inf
    clock.now += 0.25
    assert lim.retry_after() == 0 and lim.allow()
    assert TokenBucket(INF, 0).retry_after(10) == 0
    empty = TokenBucket(0, 1, clock=clock)
    assert empty.allow() and empty.retry_after() == math.inf


def test_a_long_chain_of_cancels_restores_exactly():
    """Go's restore formula doubles float rounding at every link; cancelling the latest
    reservation restores the state from before it exactly."""
    clock = Clock()
    lim = TokenBucket(100, 50, clock=clock)
    assert lim.allow(50)
    chain = [lim.reserve(1 + i % 3) for i in range(300)]
    for r in reversed(chain):
        r.cancel()
    assert lim.tokens() == pytest.approx(0, abs=1e-9)
    assert not lim.allow()
    clock.now += 0.01
    assert lim.allow() and not lim.allow()


# -- wait: the injected sleep; delays beyond what the platform can wait in one call --------------


def test_sleep_must_be_callable():
    with pytest.raises(TypeError, match="sleep must be a callable taking seconds, or None, got int"):
        TokenBucket(1, 1, sleep=5)


def test_wait_sleeps_with_the_injected_sleep_on_the_injected_clock():
    clock = Clock()
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.now += min(seconds, 0.25)  # a sleep may come back early: wait sleeps again

    lim = TokenBucket(1, 1, clock=clock, sleep=sleep)
    assert lim.allow()
    assert lim.wait(1) is True
    assert clock.now == pytest.approx(1001.0)
    assert slept == pytest.approx([1.0, 0.75, 0.5, 0.25])


@pytest.mark.parametrize("rate", [1e-10, 1e-300])
def test_wait_on_a_delay_beyond_timeout_max_sleeps_in_slices(rate):
    """Race 7 of issue 12: a delay past threading.TIMEOUT_MAX raised OverflowError."""
    lim = TokenBucket(rate, 1)
    assert lim.allow()
    assert 1 / rate > threading.TIMEOUT_MAX
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.3, cancel)
    timer.start()
    try:
        with pytest.raises(Canceled):
            lim.wait(1, ctx=ctx)
    finally:
        timer.cancel()
    assert lim.tokens() == pytest.approx(0, abs=1e-6)  # the reserved token came back
