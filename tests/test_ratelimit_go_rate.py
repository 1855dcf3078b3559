"""TokenBucket against Go's golang.org/x/time/rate test vectors (rate/rate_test.go, golang/time
head), on an injected clock and an injected sleep.

Only the vectors come from Go: the times, counts and expected outcomes of each table.  Go's
``t_k`` is ``t0 + k * 100 ms``; ``AllowN(t, n)`` / ``reserveN(t, n)`` / ``CancelAt(t)`` /
``SetLimitAt(t, r)`` become "set the clock to t, call the method".  Go's ``reserveN(t, n,
maxFutureReserve)`` with a finite maximum becomes ``wait(n, timeout=max)``, which reserves
with that bound (and then sleeps on the fake clock).  Go's waits advance a fake timer; here the
bucket's ``sleep=`` advances the fake clock, firing the test's timers on the way.
"""

import math
import threading

import pytest

from conftest import run_threads
from patterns.context import background, with_cancel, with_timeout
from patterns.ratelimit import INF, TokenBucket, every

T0 = 1000.0
D = 0.1  # Go's d


class FakeTime:
    """A clock that moves only when told to; ``sleep`` moves it, stopping at due timers."""

    def __init__(self, now=T0):
        self.now = now
        self.timers = []  # (when, callback)
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def at(self, k):
        """Go's t_k."""
        self.now = T0 + k * D

    def after(self, seconds, callback):
        self.timers.append((self.now + seconds, callback))

    def advance(self, seconds):
        self.now += seconds
        self._fire()

    def _fire(self):
        due = [t for t in self.timers if t[0] <= self.now + 1e-12]
        self.timers = [t for t in self.timers if t[0] > self.now + 1e-12]
        for _, callback in sorted(due, key=lambda t: t[0]):
            callback()

    def sleep(self, seconds):
        """Sleep ``seconds`` of fake time, or until the first timer due before then."""
        target = self.now + seconds
        pending = [t[0] for t in self.timers if t[0] < target]
        self.now = min(pending) if pending else target
        self._fire()


def bucket(rate, burst, clock):
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def d_since(t):
    """Go's dSince: a time as the nearest multiple of d after t0."""
    return math.floor((t - T0) / D + 0.5)


def run_allows(lim, clock, steps):
    """Go's run: at t_k, tokens() must be ``toks``, then allow(n) must answer ``ok``."""
    for i, (k, toks, n, ok) in enumerate(steps):
        clock.at(k)
        assert lim.tokens() == pytest.approx(toks, abs=1e-9), f"step {i}: tokens at t{k}"
        assert lim.allow(n) is ok, f"step {i}: allow({n}) at t{k}"


def reserve(lim, clock, k, n, act, ok=True):
    """Go's runReserve: reserve(n) at t_k gives (time to act t_act, ok)."""
    clock.at(k)
    r = lim.reserve(n)
    assert r.ok is ok, f"reserve({n}) at t{k}"
    if ok:
        assert d_since(r.time_to_act) == act, f"reserve({n}) at t{k}: acts at t{d_since(r.time_to_act)}"
    return r


def reserve_max(lim, clock, k, n, act, ok, max_wait):
    """Go's runReserveMax: a reservation bounded by ``max_wait`` (here: wait's timeout)."""
    clock.at(k)
    before = lim.tokens()
    if ok:
        assert lim.wait(n, timeout=max_wait) is True
        assert d_since(clock.now) == act, f"wait({n}) at t{k} ended at t{d_since(clock.now)}"
    else:
        with pytest.raises(TimeoutError):
            lim.wait(n, timeout=max_wait)
        assert clock.now == T0 + k * D and lim.tokens() == before  # nothing slept, nothing taken


def cancel_at(r, clock, k):
    clock.at(k)
    r.cancel()


def wait_ok(got_d, want_d):
    """Go's waitDelayOk: at least the wanted multiples of d, at most 150 % of it rounded up."""
    return want_d <= got_d <= (want_d * 3 + 1) // 2


def run_wait(lim, clock, n, delay, succeeds, ctx=None):
    """Go's runWait: wait(n) succeeds or fails after ``delay`` multiples of d of fake time."""
    start = clock.now
    if succeeds:
        assert lim.wait(n, ctx=ctx) is True
    else:
        with pytest.raises((ValueError, TimeoutError, Exception)):
            lim.wait(n, ctx=ctx)
    got = math.floor((clock.now - start) / D + 0.5)
    assert wait_ok(got, delay), f"wait({n}) took {got} d, want {delay}"


# -- TestLimit, TestEvery ----------------------------------------------------------------------


def test_limit():
    assert 10 != INF and math.isinf(INF)


@pytest.mark.parametrize(
    ("interval", "rate"),
    [
        (0, INF),
        (-1e-9, INF),
        (1e-9, 1e9),
        (1e-6, 1e6),
        (1e-3, 1e3),
        (10e-3, 100),
        (100e-3, 10),
        (1, 1),
        (2, 0.5),
        (2.5, 0.4),
        (4, 0.25),
        (10, 0.1),
        ((2**63 - 1) / 1e9, 1e9 / (2**63 - 1)),
    ],
)
def test_every(interval, rate):
    got = every(interval)
    if rate == INF:
        assert got == INF
    else:
        assert abs(got / rate - 1.0) < 1e-9  # Go's closeEnough


def test_every_takes_a_timedelta_and_checks_its_argument():
    import datetime

    assert every(datetime.timedelta(milliseconds=250)) == pytest.approx(4.0)
    with pytest.raises(TypeError, match="interval must be a number of seconds or a timedelta, got str"):
        every("1s")
    with pytest.raises(ValueError, match="interval must be a number of seconds"):
        every(float("nan"))


# -- the allow tables --------------------------------------------------------------------------


def test_limiter_burst_1():
    clock = FakeTime()
    run_allows(bucket(10, 1, clock), clock, [
        (0, 1, 1, True), (0, 0, 1, False), (0, 0, 1, False),
        (1, 1, 1, True), (1, 0, 1, False), (1, 0, 1, False),
        (2, 1, 2, False), (2, 1, 1, True), (2, 0, 1, False),
    ])


def test_limiter_burst_3():
    clock = FakeTime()
    run_allows(bucket(10, 3, clock), clock, [
        (0, 3, 2, True), (0, 1, 2, False), (0, 1, 1, True), (0, 0, 1, False),
        (1, 1, 4, False), (2, 2, 1, True), (3, 2, 1, True), (4, 2, 1, True),
        (4, 1, 1, True), (4, 0, 1, False), (4, 0, 1, False), (9, 3, 3, True),
        (9, 0, 0, True),
    ])


def test_limiter_jump_backwards():
    clock = FakeTime()
    clock.at(1)  # the bucket's life starts at t1
    run_allows(bucket(10, 3, clock), clock, [
        (1, 3, 1, True), (0, 2, 1, True), (0, 1, 1, True), (0, 0, 1, False),
        (0, 0, 1, False), (1, 1, 1, True), (1, 0, 1, False), (1, 0, 1, False),
        (2, 1, 1, True), (2, 0, 1, False), (2, 0, 1, False),
    ])


def test_limiter_no_truncation_errors():
    assert TokenBucket(0.7692307692307693, 1).allow()


def test_simultaneous_requests():
    lim = TokenBucket(1, 5, clock=lambda: 1.0)  # Go: "very slow replenishing"; here frozen
    admitted = []
    run_threads(15, lambda i: admitted.append(lim.allow()))
    assert admitted.count(True) == 5


def test_long_running_qps():
    clock = FakeTime()
    limit, burst = 100, 100
    lim = bucket(limit, burst, clock)
    start = clock.now
    end = start + 5.0
    ok = 0
    while clock.now < end:
        ok += lim.allow()
        clock.advance(0.002)
    ideal = burst + limit * (clock.now - start)
    assert ok <= int(ideal + 1)
    assert ok >= int(0.999 * ideal)


# -- reservations ------------------------------------------------------------------------------


def test_simple_reserve():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    reserve(lim, clock, 0, 2, 2)
    reserve(lim, clock, 3, 2, 4)


def test_mix():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 3, None, ok=False)  # n above the burst
    reserve(lim, clock, 0, 2, 0)
    run_allows(lim, clock, [(1, 1, 2, False)])
    reserve(lim, clock, 1, 2, 2)
    run_allows(lim, clock, [(1, -1, 1, False)])
    run_allows(lim, clock, [(3, 1, 1, True)])


def test_cancel_invalid():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 3, None, ok=False)
    cancel_at(r, clock, 0)
    reserve(lim, clock, 0, 2, 2)


def test_cancel_last():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 2, 2)
    cancel_at(r, clock, 1)
    reserve(lim, clock, 1, 2, 2)


def test_cancel_too_late():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 2, 2)
    cancel_at(r, clock, 3)
    reserve(lim, clock, 3, 2, 4)


def test_cancel_0_tokens():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 1, 1)
    reserve(lim, clock, 0, 1, 2)
    cancel_at(r, clock, 0)
    reserve(lim, clock, 0, 1, 3)


def test_cancel_1_token():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 2, 2)
    reserve(lim, clock, 0, 1, 3)
    cancel_at(r, clock, 2)
    reserve(lim, clock, 2, 2, 4)


def test_cancel_multi():
    clock = FakeTime()
    lim = bucket(10, 4, clock)
    reserve(lim, clock, 0, 4, 0)
    ra = reserve(lim, clock, 0, 3, 3)
    reserve(lim, clock, 0, 1, 4)
    rc = reserve(lim, clock, 0, 1, 5)
    cancel_at(rc, clock, 1)
    cancel_at(ra, clock, 1)
    reserve(lim, clock, 1, 3, 5)


def test_reserve_jump_back():
    clock = FakeTime()
    clock.at(1)
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 1, 2, 1)
    reserve(lim, clock, 0, 1, 1)
    reserve(lim, clock, 2, 2, 3)
    reserve(lim, clock, 0, 3, None, ok=False)  # above the burst: nothing changes
    reserve(lim, clock, 2, 1, 4)
    reserve_max(lim, clock, 0, 2, None, False, D)  # beyond the maximum: nothing changes
    reserve(lim, clock, 2, 1, 5)


def test_reserve_jump_back_cancel():
    clock = FakeTime()
    clock.at(1)
    lim = bucket(10, 2, clock)
    reserve(lim, clock, 1, 2, 1)
    r = reserve(lim, clock, 1, 2, 3)
    reserve(lim, clock, 1, 1, 4)
    cancel_at(r, clock, 0)
    reserve(lim, clock, 1, 2, 4)


def test_reserve_set_limit():
    clock = FakeTime()
    lim = bucket(5, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    reserve(lim, clock, 0, 2, 4)
    clock.at(2)
    lim.set_rate(10)
    reserve(lim, clock, 2, 1, 4)


def test_reserve_set_burst():
    clock = FakeTime()
    lim = bucket(5, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    reserve(lim, clock, 0, 2, 4)
    clock.at(3)
    lim.set_burst(4)
    reserve(lim, clock, 0, 4, 9)


def test_reserve_set_limit_cancel():
    clock = FakeTime()
    lim = bucket(5, 2, clock)
    reserve(lim, clock, 0, 2, 0)
    r = reserve(lim, clock, 0, 2, 4)
    clock.at(2)
    lim.set_rate(10)
    cancel_at(r, clock, 2)
    reserve(lim, clock, 2, 2, 3)


def test_reserve_max():
    clock = FakeTime()
    lim = bucket(10, 2, clock)
    reserve_max(lim, clock, 0, 2, 0, True, D)
    reserve_max(lim, clock, 0, 1, 1, True, D)
    reserve_max(lim, clock, 0, 1, None, False, D)


# -- waits -------------------------------------------------------------------------------------


def test_wait_simple():
    clock = FakeTime()
    lim = bucket(10, 3, clock)
    ctx, cancel = with_cancel(background())
    cancel()
    run_wait(lim, clock, 1, 0, False, ctx)
    run_wait(lim, clock, 4, 0, False)
    run_wait(lim, clock, 2, 0, True)
    run_wait(lim, clock, 3, 2, True)


def test_wait_cancel():
    clock = FakeTime()
    lim = bucket(10, 3, clock)
    ctx, cancel = with_cancel(background())
    run_wait(lim, clock, 2, 0, True, ctx)
    clock.after(D, cancel)
    run_wait(lim, clock, 3, 1, False, ctx)
    assert lim.tokens() == pytest.approx(2)  # the 3 came back
    run_wait(lim, clock, 2, 0, True)


def test_wait_timeout():
    clock = FakeTime()
    lim = bucket(10, 3, clock)
    with with_timeout(background(), D) as ctx:
        run_wait(lim, clock, 2, 0, True, ctx)
        run_wait(lim, clock, 3, 0, False, ctx)


def test_wait_inf():
    clock = FakeTime()
    run_wait(bucket(INF, 0, clock), clock, 3, 0, True)


# -- zero and tiny rates -----------------------------------------------------------------------


def test_zero_limit():
    lim = TokenBucket(0, 1)
    assert lim.allow()
    assert not lim.allow()


def test_set_after_zero_limit():
    clock = FakeTime()
    lim = bucket(0, 1, clock)
    assert lim.allow()
    assert not lim.allow()
    lim.set_rate(10)
    run_wait(lim, clock, 1, 1, True)


def test_tiny_limit():
    lim = TokenBucket(1e-10, 1)
    assert lim.allow()
    assert not lim.allow()
