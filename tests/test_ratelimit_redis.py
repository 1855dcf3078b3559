"""patterns.ratelimit.redis against a real redis-server: decisions, keys, TTLs, faults, processes."""

import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

redis = pytest.importorskip("redis")

from conftest import GIL_DISABLED, run_threads  # noqa: E402
from patterns.context import Canceled, background, with_cancel, with_timeout  # noqa: E402
from patterns.ratelimit.redis import (  # noqa: E402
    RedisFixedWindow,
    RedisReservation,
    RedisSlidingWindowCounter,
    RedisSlidingWindowLog,
    RedisTokenBucket,
    RedisUnavailable,
)

WINDOWS = [RedisSlidingWindowLog, RedisSlidingWindowCounter, RedisFixedWindow]
BIG = 1e6  # a window so long that no test crosses a boundary


@pytest.fixture
def client(redis_server):
    c = redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=5)
    yield c
    c.close()


def fresh(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def to_window_start(client, window):
    """Sleep until just after a boundary of the server's ``window`` grid, so that a fixed
    window's count checks do not straddle two windows on a slow machine."""
    sec, usec = client.time()
    now = sec + usec / 1e6
    time.sleep((int(now / window) + 1) * window - now + 0.005)


def evalsha_calls(client):
    stats = client.info("commandstats")
    return stats.get("cmdstat_evalsha", {}).get("calls", 0)


# -- token bucket: the in-process edge cases, on the server's clock ------------------------------


def test_bucket_starts_full_and_refuses_without_change(client):
    lim = RedisTokenBucket(client, fresh(), rate=0.01, burst=5)
    assert [lim.allow() for _ in range(6)] == [True] * 5 + [False]
    before = lim.tokens()
    assert not lim.allow(2) and not lim.allow()
    assert lim.tokens() == pytest.approx(before, abs=0.01)
    assert lim.allow(0)
    assert lim.rate == 0.01 and lim.burst == 5


def test_bucket_n_above_burst(client):
    lim = RedisTokenBucket(client, fresh(), rate=10, burst=3)
    assert not lim.allow(4)
    r = lim.reserve(4)
    assert not r.ok and r.delay() == float("inf")
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"n must be <= burst \(3\)"):
        lim.wait(4, timeout=5)
    assert time.monotonic() - started < 0.5
    assert lim.tokens() == pytest.approx(3)


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        (dict(rate=-1, burst=1), ValueError, r"rate must be >= 0 \(or INF\), got -1"),
        (dict(rate=float("nan"), burst=1), ValueError, r"rate must be >= 0 \(or INF\), got nan"),
        (dict(rate="1", burst=1), TypeError, "rate must be a number"),
        (dict(rate=1, burst=-1), ValueError, "burst must be >= 0, got -1"),
        (dict(rate=1, burst=1, local_batch=0), ValueError, "local_batch must be >= 1, got 0"),
    ],
)
def test_bucket_bad_arguments(client, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        RedisTokenBucket(client, "bad", **kwargs)


def test_bad_names_and_clients(client):
    for braces in ("a}b", "x{}", "{"):  # braces that are no Cluster hash tag
        with pytest.raises(ValueError, match="name must not contain '{' or '}' unless as a Redis Cluster hash tag"):
            RedisFixedWindow(client, braces, 1, 1)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        RedisFixedWindow(client, "", 1, 1)
    with pytest.raises(TypeError, match="name must be a str"):
        RedisFixedWindow(client, 5, 1, 1)
    with pytest.raises(TypeError, match="client must be a redis.Redis"):
        RedisFixedWindow("redis://x", "a", 1, 1)
    lim = RedisFixedWindow(client, fresh(), 2, 1)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        lim.allow(-1)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        lim.allow(1.0)


def test_bucket_refill_never_exceeds_burst(client):
    lim = RedisTokenBucket(client, fresh(), rate=1000, burst=5)
    assert lim.allow(5)
    time.sleep(0.05)
    assert lim.tokens() == 5
    assert lim.allow(5) and not lim.allow(5)


def test_bucket_reserve_and_cancel_go_rules(client):
    lim = RedisTokenBucket(client, fresh(), rate=10, burst=2)
    assert lim.reserve(2).delay() == 0
    r = lim.reserve(2)
    assert isinstance(r, RedisReservation) and r.ok and r.tokens == 2
    assert r.delay() == pytest.approx(0.2, abs=0.05)
    r.cancel()  # the last reservation: everything comes back
    r.cancel()  # idempotent
    assert lim.tokens() == pytest.approx(0, abs=0.2)
    r2 = lim.reserve(1)
    r3 = lim.reserve(1)
    r2.cancel()  # r3 came after it: nothing comes back
    assert r3.delay() == pytest.approx(0.2, abs=0.05)
    assert lim.tokens() == pytest.approx(-2, abs=0.2)


def test_bucket_wait_fails_at_once_without_consuming(client):
    lim = RedisTokenBucket(client, fresh(), rate=1, burst=1)
    assert lim.allow()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than the timeout"):
        lim.wait(timeout=0.3)
    with with_timeout(background(), 0.3) as ctx:
        with pytest.raises(TimeoutError):
            lim.wait(ctx=ctx)
    assert time.monotonic() - started < 0.25
    assert lim.tokens() == pytest.approx(0, abs=0.3)  # nothing consumed: not -1 or -2


def test_bucket_wait_sleeps_and_cancel_midway_gives_back(client):
    lim = RedisTokenBucket(client, fresh(), rate=20, burst=1)
    assert lim.allow()
    started = time.monotonic()
    assert lim.wait(timeout=1) is True
    assert 0.02 < time.monotonic() - started < 0.5
    slow = RedisTokenBucket(client, fresh(), rate=2, burst=1)
    assert slow.allow()
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.05, cancel)
    timer.start()
    try:
        with pytest.raises(Canceled):
            slow.wait(ctx=ctx)
    finally:
        timer.join()
    assert slow.tokens() > -0.5  # the reserved token came back (else about -0.8)


# -- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WINDOWS)
def test_window_limit_then_refusal(client, kind):
    lim = kind(client, fresh(), 4, BIG)
    assert lim.remaining() == 4 and lim.reset_after() == 0 and lim.retry_after() == 0
    assert [lim.allow() for _ in range(5)] == [True] * 4 + [False]
    assert not lim.allow(2)
    assert lim.allow(0)
    assert lim.remaining() == 0
    assert lim.retry_after() > 1000 and lim.reset_after() > 1000
    assert not lim.allow(5) and lim.retry_after(5) == float("inf")
    with pytest.raises(ValueError, match=r"n must be <= limit \(4\)"):
        lim.wait(5)


@pytest.mark.parametrize("kind", WINDOWS)
def test_window_sub_second_and_wait(client, kind):
    lim = kind(client, fresh(), 2, 0.2)
    to_window_start(client, 0.2)
    assert lim.allow(2) and not lim.allow()
    started = time.monotonic()
    assert lim.wait(timeout=1) is True
    assert time.monotonic() - started < 0.6
    with pytest.raises(TimeoutError):
        _exhausted(kind, client).wait(timeout=0.05)


def _exhausted(kind, client):
    lim = kind(client, fresh(), 1, 100)
    assert lim.allow()
    return lim


@pytest.mark.parametrize("kind", WINDOWS)
def test_window_wait_cancelled(client, kind):
    lim = _exhausted(kind, client)
    ctx, cancel = with_cancel(background())
    timer = threading.Timer(0.05, cancel)
    timer.start()
    try:
        with pytest.raises(TimeoutError):
            lim.wait(timeout=1)  # needs ~100 s: fails at once
        with pytest.raises(Canceled):
            lim.wait(ctx=ctx)
    finally:
        timer.join()


def test_log_is_exact_over_a_sliding_window(client):
    lim = RedisSlidingWindowLog(client, fresh(), 3, 0.3)
    assert lim.allow(2)
    time.sleep(0.15)
    assert lim.allow() and not lim.allow()
    time.sleep(0.2)  # the first two left, the third is still inside
    assert lim.remaining() == 2
    assert lim.allow(2) and not lim.allow()


def test_counter_weights_previous_window(client):
    lim = RedisSlidingWindowCounter(client, fresh(), 10, 0.5)
    while not lim.allow(10):  # a fresh window may already hold some weight: wait for room
        time.sleep(0.05)
    assert not lim.allow()
    assert 0 < lim.retry_after() <= 1.0


# -- keys, TTLs, scripts -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WINDOWS + [RedisTokenBucket])
def test_keys_have_a_hash_tag_and_a_ttl(client, kind):
    name = fresh("user:42")
    lim = kind(client, name, 5, 2.0) if kind is not RedisTokenBucket else kind(client, name, 1, 5)
    assert lim.allow(3)
    keys = client.keys(f"ftsync:rl:{{{name}}}*")
    assert [k.decode() for k in keys] == [lim.key]
    assert lim.key.startswith(f"ftsync:rl:{{{name}}}:")
    ttl = client.pttl(lim.key)
    assert 0 < ttl <= 5000


@pytest.mark.parametrize("kind", WINDOWS + [RedisTokenBucket])
def test_a_name_with_its_own_hash_tag_is_used_as_it_is(client, kind):
    # as for RedisLock: "user{42}" keeps the limiter in the slot of "42", beside other things
    # of that user, instead of wrapping the name in braces of ours
    name = fresh("user") + "{42}"
    lim = kind(client, name, 5, 2.0) if kind is not RedisTokenBucket else kind(client, name, 1, 5)
    assert lim.key.startswith(f"ftsync:rl:{name}:")
    assert lim.allow(3)
    assert [k.decode() for k in client.keys(f"ftsync:rl:{name}:*")] == [lim.key]


def test_one_evalsha_per_decision_and_noscript_recovers(client):
    limiters = [
        RedisTokenBucket(client, fresh(), 1000, 100),
        RedisSlidingWindowLog(client, fresh(), 100, 10),
        RedisSlidingWindowCounter(client, fresh(), 100, 10),
        RedisFixedWindow(client, fresh(), 100, 10),
    ]
    for lim in limiters:
        lim.allow()  # scripts loaded
    client.config_resetstat()
    for lim in limiters:
        for _ in range(25):
            lim.allow()
    stats = client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 100
    assert "cmdstat_eval" not in stats and "cmdstat_script|load" not in stats
    client.script_flush()
    for lim in limiters:  # NOSCRIPT: redis-py loads the script again and retries
        assert isinstance(lim.allow(), bool)


# -- Redis down ------------------------------------------------------------------------------------


def test_redis_down_raises_naming_the_server(redis_servers):
    (server,) = redis_servers(1)
    c = redis.Redis(host=server.host, port=server.port, socket_timeout=0.3, socket_connect_timeout=0.3, retry=None)
    limiters = [RedisTokenBucket(c, "down", 10, 10), RedisFixedWindow(c, "down", 10, 1),
                RedisSlidingWindowLog(c, "down", 10, 1), RedisSlidingWindowCounter(c, "down", 10, 1)]
    for lim in limiters:
        assert lim.allow()
    server.pause()
    try:
        with pytest.raises(RedisUnavailable, match=f"Redis at {server.host}:{server.port} did not answer"):
            limiters[0].allow()
    finally:
        server.resume()
    server.kill()
    for lim in limiters:
        with pytest.raises(RedisUnavailable, match=f"{server.host}:{server.port}.*nothing was allowed"):
            lim.allow()
    with pytest.raises(RedisUnavailable):
        limiters[0].wait(timeout=1)
    for call in (limiters[0].reserve, limiters[0].tokens, limiters[0].retry_after,
                 limiters[1].remaining, limiters[2].reset_after, limiters[3].retry_after):
        with pytest.raises(RedisUnavailable):
            call()
    batched = RedisTokenBucket(c, "down", 10, 10, local_batch=5)
    with pytest.raises(RedisUnavailable):
        batched.allow()  # nothing leased yet: it must ask, and cannot
    c.close()


def test_a_reply_cut_by_a_timeout_is_never_read_by_the_next_decision(redis_servers):
    """The direct wire drops a connection whose reply it gave up on: after the server wakes, the
    next decision reads its own reply, not the late one (which said 'allowed')."""
    (server,) = redis_servers(1)
    c = redis.Redis(host=server.host, port=server.port, socket_timeout=0.3, retry=None)
    lim = RedisFixedWindow(c, fresh(), 1, BIG)
    other = RedisFixedWindow(c, fresh(), 1, BIG)
    assert other.allow()  # this one is now full: its next answer is 0
    server.pause()
    try:
        with pytest.raises(RedisUnavailable):
            lim.allow()  # sent; the reply (1: allowed) arrives only after the timeout
    finally:
        server.resume()
    assert other.allow() is False
    assert lim.remaining() == 0  # the lost decision did count, on the server
    c.close()


def test_a_restarted_server_is_reached_on_a_fresh_connection(redis_servers):
    (server,) = redis_servers(1)
    c = redis.Redis(host=server.host, port=server.port, socket_timeout=2)
    lim = RedisTokenBucket(c, fresh(), 1, 3)
    assert lim.allow()
    server.restart()  # the pooled connection is closed, the script cache empty
    assert [lim.allow() for _ in range(4)] == [True, True, True, False]
    c.close()


def test_a_timed_out_decision_is_sent_once_even_with_the_clients_retry_policy(redis_servers):
    """redis-py retries a timed-out command (3 times by default); a decision must not be, or
    a lost reply would count it several times."""
    (server,) = redis_servers(1)
    c = redis.Redis(host=server.host, port=server.port, socket_timeout=0.3)  # default retries
    lim = RedisFixedWindow(c, fresh(), 10, BIG)
    assert lim.allow()
    server.pause()
    try:
        with pytest.raises(RedisUnavailable):
            lim.allow()
    finally:
        server.resume()
    time.sleep(0.2)  # the frozen server runs what was sent to it
    assert lim.remaining() == 8  # counted once
    c.close()


def test_set_rate_and_set_burst_change_what_allow_sends(client):
    """allow(1) sends arguments packed once; they must follow the new rate and burst.  (The
    state converts at the first call made with them, so each change is followed by one call.)"""
    bucket = RedisTokenBucket(client, fresh(), 0.001, 2)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    bucket.set_rate(1000)
    bucket.allow()
    time.sleep(0.01)
    assert bucket.allow()  # at the old rate the next token is 1000 s away
    bucket.set_burst(50)
    bucket.allow()
    time.sleep(0.06)
    assert sum(bucket.allow() for _ in range(50)) >= 49  # a burst of 2 would give about 7


@pytest.mark.parametrize("how", ["decode_responses", "single_connection_client"])
def test_other_client_settings_give_the_same_decisions(redis_server, how):
    c = redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=5, **{how: True})
    try:
        bucket = RedisTokenBucket(c, fresh(), 1, 2)
        assert [bucket.allow() for _ in range(3)] == [True, True, False]
        res = bucket.reserve()
        assert res.ok and 0 < res.delay() <= 1
        res.cancel()
        assert bucket.tokens() == pytest.approx(0, abs=0.1)
        window = RedisSlidingWindowLog(c, fresh(), 2, BIG)
        assert [window.allow() for _ in range(3)] == [True, True, False]
        assert window.remaining() == 0 and window.retry_after() > 0
    finally:
        c.close()


# -- many clients: threads and processes ---------------------------------------------------------


@pytest.mark.parametrize("kind", WINDOWS + [RedisTokenBucket])
def test_threads_admit_exactly_the_limit(kind, redis_server):
    for _ in range(3 if GIL_DISABLED else 1):
        name = fresh()
        counts = [0] * 4

        def hammer(i):
            c = redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=5)
            lim = kind(c, name, 1e-6, 60) if kind is RedisTokenBucket else kind(c, name, 60, BIG)
            local = 0
            for _ in range(40):
                local += lim.allow()
            counts[i] = local
            c.close()

        run_threads(4, hammer)
        assert sum(counts) == 60


def test_processes_admit_exactly_the_limit(redis_server):
    name = fresh("proc")
    code = textwrap.dedent(f"""
        import redis, sys
        from patterns.ratelimit.redis import RedisSlidingWindowLog, RedisTokenBucket
        c = redis.Redis(host={redis_server.host!r}, port={redis_server.port}, socket_timeout=5)
        log = RedisSlidingWindowLog(c, {name!r}, 70, {BIG})
        tb = RedisTokenBucket(c, {name!r} + "-tb", 1e-6, 70, local_batch=5)
        print(sum(log.allow() for _ in range(50)), sum(tb.allow() for _ in range(50)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    totals = [0, 0]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        a, b = map(int, out.split())
        totals[0] += a
        totals[1] += b
    assert totals == [70, 70]


# -- local_batch ---------------------------------------------------------------------------------


def test_local_batch_saves_round_trips(client):
    lim = RedisTokenBucket(client, fresh(), 1e-6, 100, local_batch=10)
    assert lim.local_batch == 10
    before = evalsha_calls(client)
    assert sum(lim.allow() for _ in range(100)) == 100
    assert evalsha_calls(client) - before == 10
    assert not lim.allow()  # the bucket is empty: one more round trip says no


def test_local_batch_over_admission_is_bounded_by_k_per_client(client):
    """Leased tokens spent later can exceed the exact bound by at most k - 1 per client."""
    name, k = fresh(), 8
    rate, burst = 200.0, 10
    clients = [RedisTokenBucket(client, name, rate, burst, local_batch=k) for _ in range(3)]
    start = time.monotonic()
    admitted = 0
    while time.monotonic() - start < 0.5:
        for lim in clients:
            admitted += lim.allow()
    elapsed = time.monotonic() - start
    assert admitted <= burst + rate * elapsed + 1 + len(clients) * (k - 1)
    assert admitted >= 0.8 * (burst + rate * 0.5)


def test_bucket_retry_after(client):
    lim = RedisTokenBucket(client, fresh(), rate=4, burst=2)
    assert lim.retry_after() == 0
    assert lim.allow(2)
    assert lim.retry_after() == pytest.approx(0.25, abs=0.05)
    assert lim.retry_after(3) == float("inf")


def test_bucket_chain_of_cancels_restores_exactly(client):
    lim = RedisTokenBucket(client, fresh(), rate=1, burst=5)
    assert lim.allow(5)
    chain = [lim.reserve(1 + i % 3) for i in range(60)]
    for r in reversed(chain):
        r.cancel()
    assert lim.tokens() == pytest.approx(0, abs=0.2)


def test_bucket_tiny_rate_does_not_overflow(client):
    lim = RedisTokenBucket(client, fresh(), rate=1e-10, burst=2)
    assert lim.allow(2) and not lim.allow()
    r = lim.reserve(1)
    assert r.ok and r.delay() == pytest.approx(1e10, rel=1e-6)
    assert 2.9e13 < client.pttl(lim.key) <= 3e13  # 3 tokens of 1e10 s each ahead, in ms
    r.cancel()
    assert lim.tokens() == pytest.approx(0, abs=1e-6)


def test_local_batch_threads_share_one_lease_exactly(client):
    for _ in range(3 if GIL_DISABLED else 1):
        lim = RedisTokenBucket(client, fresh(), 1e-6, 60, local_batch=7)
        counts = [0] * 4

        def hammer(i):
            counts[i] = sum(lim.allow() for _ in range(30))

        run_threads(4, hammer)
        assert sum(counts) == 60


def test_bucket_set_rate_and_burst_keep_tokens_across_clients(client):
    name = fresh()
    a = RedisTokenBucket(client, name, rate=0.001, burst=10)
    b = RedisTokenBucket(client, name, rate=0.001, burst=10)
    assert a.allow(6)
    a.set_rate(0.002)
    assert a.rate == 0.002
    assert a.tokens() == pytest.approx(4, abs=0.01)  # converted, tokens kept
    assert b.tokens() == pytest.approx(4, abs=0.01)  # b (old rate) converts back: still 4
    a.set_burst(3)
    assert a.burst == 3 and a.tokens() == pytest.approx(3, abs=0.01)  # clamped
    assert a.allow(3) and not a.allow()
    assert not b.allow()  # b's view: 0 tokens, whatever the parameters
    with pytest.raises(ValueError, match="rate must be >= 0"):
        a.set_rate(-0.5)
    with pytest.raises(ValueError, match="burst must be >= 0, got -1"):
        a.set_burst(-1)
    assert (a.rate, a.burst) == (0.002, 3)


def test_bucket_reservation_made_before_set_rate_gives_back_at_its_own_rate(client):
    lim = RedisTokenBucket(client, fresh(), rate=1, burst=2)
    assert lim.allow(2)
    r = lim.reserve(1)
    lim.set_rate(2)
    assert lim.tokens() == pytest.approx(-1, abs=0.1)
    r.cancel()  # Go's TestReserveSetLimitCancel: nothing reserved after it, so all of it
    assert lim.tokens() == pytest.approx(0, abs=0.1)


# -- rate 0 and INF, as in process ----------------------------------------------------------------


def test_bucket_rate_zero_is_the_burst_only(client):
    lim = RedisTokenBucket(client, fresh(), rate=0, burst=3)
    assert lim.allow(2) and lim.allow(1) and not lim.allow(1)
    assert client.ttl(lim.key) == -1  # nothing refills it: kept without expiry
    assert lim.tokens() == 0 and lim.retry_after(1) == float("inf")
    with pytest.raises(TimeoutError, match="would need longer than the timeout"):
        lim.wait(1, timeout=0.2)
    with pytest.raises(ValueError, match="could never end: the rate is 0"):
        lim.wait(1)
    assert lim.tokens() == 0  # the refused waits took nothing
    r = lim.reserve(1)  # current Go: ok, never time to act
    assert r.ok and r.delay() == float("inf")
    assert lim.tokens() == -1
    r.cancel()
    assert lim.tokens() == 0
    lim.set_rate(1000)
    assert lim.tokens() == pytest.approx(0, abs=0.01)  # converted (by this call), 0 kept
    time.sleep(0.01)
    assert lim.allow(3)  # refilled at the new rate


def test_bucket_rate_inf_allows_everything_without_state(client):
    lim = RedisTokenBucket(client, fresh(), rate=float("inf"), burst=0)
    calls = evalsha_calls(client)
    assert lim.allow(10**6) and lim.wait(5) is True
    r = lim.reserve(7)
    assert r.ok and r.delay() == 0 and r.tokens == 7
    r.cancel()
    assert lim.tokens() == float("inf") and lim.retry_after(3) == 0
    assert evalsha_calls(client) == calls and not client.exists(lim.key)


# -- the script's clock stepped back (a failover, an NTP step), through the test hook ------------


class SteppedBucket(RedisTokenBucket):
    """RedisTokenBucket whose script reads its time from the key ``<key>:now`` (us)."""

    from patterns.ratelimit import _lua

    _source = _lua.with_test_clock(_lua.TOKEN_BUCKET)

    def at(self, seconds):
        self._client.set(self.key + ":now", repr(seconds * 1e6))


def test_server_clock_stepping_back_is_time_standing_still(client):
    lim = SteppedBucket(client, fresh(), rate=10, burst=5)
    lim.at(1000.0)
    assert lim.allow(3)
    lim.at(990.0)  # 10 s back: before the fix tokens() was -99 and every call refused 10 s
    assert lim.tokens() == pytest.approx(2)
    assert lim.allow(2) and not lim.allow(1)
    lim.at(990.1)  # refill goes on from the new reading
    assert lim.tokens() == pytest.approx(1)
    assert lim.allow(1) and not lim.allow(1)
    lim.at(995.0)
    assert lim.tokens() == pytest.approx(5)


def test_server_clock_go_reserve_jump_back_cancel(client):
    """Go's TestReserveJumpBackCancel on the server's (stepped) clock."""
    lim = SteppedBucket(client, fresh(), rate=10, burst=2)

    def reserve_at(k, n, act):
        lim.at(1000.0 + k * 0.1)
        r = lim.reserve(n)
        assert r.ok and r._due == pytest.approx((act - k) * 0.1, abs=1e-6)
        return r

    reserve_at(1, 2, 1)
    r = reserve_at(1, 2, 3)
    reserve_at(1, 1, 4)
    lim.at(1000.0)  # cancel at t0: one token back
    r.cancel()
    reserve_at(1, 2, 4)


def test_server_clock_go_reserve_set_limit_cancel(client):
    """Go's TestReserveSetLimitCancel: a cancel after set_rate counts at its own rate."""
    lim = SteppedBucket(client, fresh(), rate=5, burst=2)
    lim.at(1000.0)
    assert lim.reserve(2)._due == 0
    r = lim.reserve(2)
    assert r._due == pytest.approx(0.4)
    lim.at(1000.2)
    lim.set_rate(10)
    r.cancel()  # 2 tokens back
    assert lim.reserve(2)._due == pytest.approx(0.1)  # t3


def test_server_clock_stepping_back_keeps_windows_still(client):
    """The window scripts already treat an earlier time as the latest one seen."""
    from patterns.ratelimit import _lua

    class SteppedWindow(RedisSlidingWindowLog):
        _source = _lua.with_test_clock(_lua.SLIDING_WINDOW_LOG)

    lim = SteppedWindow(client, fresh(), 2, 10)
    client.set(lim.key + ":now", repr(1000e6))
    assert lim.allow(2) and not lim.allow()
    client.set(lim.key + ":now", repr(980e6))  # 20 s back: the window must not reopen
    assert not lim.allow()
    client.set(lim.key + ":now", repr(1010.5e6))
    assert lim.allow(2)
