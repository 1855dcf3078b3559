"""Rate limiters vs their peers: ns per allowed call in process, round trips against Redis.

In process (one thread, one round = 1000 allowed calls, so a round's us reads as ns per call):
``TokenBucket.allow()`` vs a plain-Python GCRA bucket without a lock and with a
``threading.Lock``; the window limiters vs ``limits`` (MemoryStorage: fixed window, sliding
window counter, moving window) and ``pyrate-limiter``; each window limiter also "filled" (10 000
admissions already in the window) to show whether the cost grows with the fill.

Redis (loopback redis-server started here; one round = ROUND_TRIPS calls): every Redis limiter
vs an ``EVALSHA`` of ``return 1`` (the floor of one round trip) and vs ``limits``' Redis
strategies; ``RedisTokenBucket(local_batch=100)`` vs unbatched.

Four threads sharing one limiter: total calls/s of TokenBucket and SlidingWindowLog beside
the locked plain-Python bucket.

Peers that are not installed skip with the reason (``pip install --prefer-binary limits
pyrate-limiter``; both are in the ``bench`` extra).  Limits are huge so every call is allowed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from _timing import make_loop
from conftest import RESULTS, Result, _stats
from patterns.ratelimit import FixedWindow, SlidingWindowCounter, SlidingWindowLog, TokenBucket

GROUP_BUCKET = "ratelimit: token bucket allow (1 thread)"
GROUP_FIXED = "ratelimit: fixed window allow (1 thread)"
GROUP_COUNTER = "ratelimit: sliding window counter allow (1 thread)"
GROUP_LOG = "ratelimit: sliding window log / moving window allow (1 thread)"
GROUP_REDIS = "ratelimit: Redis, one decision per call (1 thread)"

HUGE = 10**9
FILL = 10_000
ROUND_TRIPS = 200
REDIS_ROUNDS = 60


# -- peers ---------------------------------------------------------------------------------------


class PlainBucket:
    """What one writes in Python: GCRA in two attributes, no lock (wrong under threads)."""

    __slots__ = ("_per", "_tau", "_tat", "_now")

    def __init__(self, rate, burst):
        self._per = 1.0 / rate
        self._tau = burst / rate
        self._tat = 0.0
        self._now = time.monotonic

    def allow(self):
        now = self._now()
        tat = self._tat if self._tat > now else now
        new = tat + self._per
        if new - now > self._tau:
            return False
        self._tat = new
        return True


class LockedBucket(PlainBucket):
    """The same bucket made thread-safe with a threading.Lock."""

    __slots__ = ("_lock",)

    def __init__(self, rate, burst):
        super().__init__(rate, burst)
        self._lock = threading.Lock()

    def allow(self):
        with self._lock:
            return PlainBucket.allow(self)


def limits_mod():
    return pytest.importorskip("limits", reason="limits is not installed (pip install --prefer-binary limits)")


def limits_hit(strategy_name, storage=None):
    limits = limits_mod()
    from limits import strategies

    storage = storage or limits.storage.MemoryStorage()
    item = limits.RateLimitItemPerHour(HUGE)
    strategy = getattr(strategies, strategy_name)(storage)
    return lambda: strategy.hit(item, "bench", strategy_name)  # one key per strategy


def pyrate_acquire():
    pyrate = pytest.importorskip(
        "pyrate_limiter", reason="pyrate-limiter is not installed (pip install --prefer-binary pyrate-limiter)"
    )
    limiter = pyrate.Limiter(pyrate.Rate(HUGE, pyrate.Duration.HOUR))
    return lambda: limiter.try_acquire("bench", blocking=False)


def filled(fn, n=FILL):
    for _ in range(n):
        fn()
    return fn


# -- in process ----------------------------------------------------------------------------------

IN_PROCESS = {
    # group, label, ours, key, make (returns a zero-argument allow)
    "tb.ours": (GROUP_BUCKET, "ftsync: TokenBucket.allow()", True, lambda: TokenBucket(1e12, HUGE).allow),
    "tb.plain": (GROUP_BUCKET, "plain Python GCRA bucket, no lock", False, lambda: PlainBucket(1e12, HUGE).allow),
    "tb.locked": (GROUP_BUCKET, "plain Python GCRA bucket + threading.Lock", False, lambda: LockedBucket(1e12, HUGE).allow),
    "tb.limits_fixed": (GROUP_BUCKET, "limits: FixedWindow hit (MemoryStorage)", False,
                        lambda: limits_hit("FixedWindowRateLimiter")),
    "tb.pyrate": (GROUP_BUCKET, "pyrate-limiter: Limiter.try_acquire (in memory)", False, pyrate_acquire),
    "fw.ours": (GROUP_FIXED, "ftsync: FixedWindow.allow()", True, lambda: FixedWindow(HUGE, 3600).allow),
    "fw.limits": (GROUP_FIXED, "limits: FixedWindow hit (MemoryStorage)", False,
                  lambda: limits_hit("FixedWindowRateLimiter")),
    "swc.ours": (GROUP_COUNTER, "ftsync: SlidingWindowCounter.allow()", True,
                 lambda: SlidingWindowCounter(HUGE, 3600).allow),
    "swc.limits": (GROUP_COUNTER, "limits: SlidingWindowCounter hit (MemoryStorage)", False,
                   lambda: limits_hit("SlidingWindowCounterRateLimiter")),
    "swl.ours": (GROUP_LOG, "ftsync: SlidingWindowLog.allow(), empty", True,
                 lambda: SlidingWindowLog(10_000_000, 3600).allow),
    "swl.ours.filled": (GROUP_LOG, f"ftsync: SlidingWindowLog.allow(), {FILL} in window", True,
                        lambda: filled(SlidingWindowLog(10_000_000, 3600).allow)),
    "swl.limits": (GROUP_LOG, "limits: MovingWindow hit (MemoryStorage), empty", False,
                   lambda: limits_hit("MovingWindowRateLimiter")),
    "swl.limits.filled": (GROUP_LOG, f"limits: MovingWindow hit (MemoryStorage), {FILL} in window", False,
                          lambda: filled(limits_hit("MovingWindowRateLimiter"))),
    "swl.pyrate": (GROUP_LOG, "pyrate-limiter: try_acquire (in-memory log), empty", False, pyrate_acquire),
    "swl.pyrate.filled": (GROUP_LOG, f"pyrate-limiter: try_acquire (in-memory log), {FILL} in window", False,
                          lambda: filled(pyrate_acquire())),
}


@pytest.mark.parametrize("key", IN_PROCESS)
def test_allow_single_thread(bench_calls, key):
    group, label, ours, make = IN_PROCESS[key]
    allow = make()
    assert allow() is True
    loop = make_loop("allow()", {"allow": allow})
    bench_calls(group, label, loop, key=f"rl.{key}", ours=ours)


# -- 4 threads on one limiter ---------------------------------------------------------------------

GROUP_THREADS = "ratelimit: 4 threads on one limiter, calls/s total"
THREADS = 4
CALLS = 50_000  # per thread
THREAD_ROUNDS = 5

SHARED = {
    "ftsync: TokenBucket.allow()": (True, lambda: TokenBucket(1e12, HUGE).allow),
    "plain Python GCRA bucket + threading.Lock": (False, lambda: LockedBucket(1e12, HUGE).allow),
    "ftsync: SlidingWindowLog.allow()": (True, lambda: SlidingWindowLog(10_000_000, 3600).allow),
}


def _hammer(allow):
    """Seconds for THREADS threads to make CALLS calls each, from a common start."""
    loop = make_loop("allow()", {"allow": allow}, calls=CALLS)
    start = threading.Barrier(THREADS + 1)

    def work():
        start.wait()
        loop()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began


@pytest.mark.parametrize("label", SHARED)
def test_allow_four_threads(benchmark, label):
    """Throughput when threads share one limiter (compare rows; on a GIL build they take turns)."""
    ours, make = SHARED[label]
    benchmark.group = GROUP_THREADS
    benchmark.name = label
    benchmark.pedantic(lambda: _hammer(make()), rounds=THREAD_ROUNDS, iterations=1)
    got = _stats(benchmark)
    if got is None:  # --benchmark-disable: ran once, nothing to report
        return
    best, median = (THREADS * CALLS / seconds for seconds in got)
    benchmark.extra_info.update(calls_per_s_best=round(best), calls_per_s_median=round(median))
    RESULTS[GROUP_THREADS, label] = Result(GROUP_THREADS, label, None, ours, "throughput",
                                           ops_best=best, ops_median=median)


# -- Redis ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("bench-redis"))
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - no server binary: skip, as a missing peer does
        pytest.skip(f"redis-server could not start: {exc}")
    yield server.url
    server.stop()


def _redis_limiter(key, client, url):
    from patterns.ratelimit import redis as rl

    if key == "evalsha1":  # raw EVALSHA, no wrapper: the honest floor
        sha = client.script_load("return 1")
        return lambda: client.evalsha(sha, 1, "ftsync:bench:{x}")
    if key == "tb.ours":
        return rl.RedisTokenBucket(client, "bench-tb", 1e9, HUGE).allow
    if key == "tb.ours.batch100":
        return rl.RedisTokenBucket(client, "bench-tb-b", 1e9, HUGE, local_batch=100).allow
    if key == "fw.ours":
        return rl.RedisFixedWindow(client, "bench-fw", HUGE, 3600).allow
    if key == "swc.ours":
        return rl.RedisSlidingWindowCounter(client, "bench-swc", HUGE, 3600).allow
    if key == "swl.ours":
        return rl.RedisSlidingWindowLog(client, "bench-swl", 100_000, 3600).allow
    limits = limits_mod()
    storage = limits.storage.storage_from_string(url)
    names = {"fw.limits": "FixedWindowRateLimiter", "swc.limits": "SlidingWindowCounterRateLimiter",
             "swl.limits": "MovingWindowRateLimiter"}
    return limits_hit(names[key], storage)


REDIS_ROWS = {
    "evalsha1": ("EVALSHA of `return 1` (one round trip, the floor)", False),
    "tb.ours": ("ftsync: RedisTokenBucket.allow()", True),
    "tb.ours.batch100": ("ftsync: RedisTokenBucket(local_batch=100).allow()", True),
    "fw.ours": ("ftsync: RedisFixedWindow.allow()", True),
    "fw.limits": ("limits: FixedWindow hit (Redis)", False),
    "swc.ours": ("ftsync: RedisSlidingWindowCounter.allow()", True),
    "swc.limits": ("limits: SlidingWindowCounter hit (Redis)", False),
    "swl.ours": ("ftsync: RedisSlidingWindowLog.allow()", True),
    "swl.limits": ("limits: MovingWindow hit (Redis)", False),
}


def test_redis_allow_interleaved(benchmark, redis_url):
    """Every Redis row in one test, rounds interleaved (row order rotating each round), best
    round per row: on a shared machine whose load drifts, rows timed minutes apart are not
    comparable, rows timed in alternation are."""
    import redis

    client = redis.Redis.from_url(redis_url)
    rows = {}
    for key, (label, ours) in REDIS_ROWS.items():
        try:
            rows[key] = make_loop("allow()", {"allow": _redis_limiter(key, client, redis_url)}, calls=ROUND_TRIPS)
        except pytest.skip.Exception:  # a missing peer drops its row only
            continue
        rows[key]()  # warm up (loads the script)
    times = {key: [] for key in rows}

    def measure():
        keys = list(rows)
        for r in range(REDIS_ROUNDS):
            for key in keys[r % len(keys):] + keys[: r % len(keys)]:
                t0 = time.perf_counter()
                rows[key]()
                times[key].append(time.perf_counter() - t0)

    benchmark.group = GROUP_REDIS
    benchmark.name = f"all Redis rows, {REDIS_ROUNDS} interleaved rounds of {ROUND_TRIPS} calls"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    client.close()
    for key, samples in times.items():
        label, ours = REDIS_ROWS[key]
        ns_min = min(samples) * 1e9 / ROUND_TRIPS
        ns_median = sorted(samples)[len(samples) // 2] * 1e9 / ROUND_TRIPS
        benchmark.extra_info[f"{key}: calls/s best"] = round(1e9 / ns_min)
        RESULTS[GROUP_REDIS, label] = Result(GROUP_REDIS, label, f"rl.redis.{key}", ours, "per_call", ns_min, ns_median)
