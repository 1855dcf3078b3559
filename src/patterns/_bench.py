"""The comparisons behind ``ftsync bench``: ftsync against the stdlib and installed peers.

Each comparison runs every contender at each thread count, several rounds, and keeps the
best round (on a shared machine the best is the most repeatable figure).  A contender is a
function ``run(threads, work) -> (seconds, exact)`` that does ``work`` operations in total
(split across ``threads``) from a common start and says whether the result came out exact.
Peers that are not installed are left out and listed as such.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from atomics import AtomicCounter, AtomicInt64

from .channel import Channel
from .pool import WorkerPool
from .ratelimit import TokenBucket

__all__ = ["COMPARISONS", "Comparison", "Contender", "Row", "add_ratios", "run_comparisons"]

Runner = Callable[[int, int], "tuple[float, bool]"]


@dataclass(frozen=True)
class Contender:
    label: str
    ours: bool
    make: Callable[[], Runner]  # ImportError: the peer is not installed


@dataclass(frozen=True)
class Comparison:
    name: str
    unit: str  # what one operation is, for the table header
    work: int  # operations per round (quick runs use a tenth)
    baseline: str  # label the ratios are taken against
    contenders: tuple[Contender, ...]


@dataclass
class Row:
    comparison: str
    contender: str
    ours: bool
    threads: int
    per_second: float
    exact: bool
    ratio: float | None = None  # per_second / the baseline's at the same thread count
    rounds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _together(threads: int, body: Callable[[int], None]) -> float:
    """Seconds for ``threads`` threads running ``body(index)`` from a common start."""
    start = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        start.wait()
        body(index)

    # daemon: after Ctrl-C the command prints what it has and exits without waiting for them
    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - began


# -- counters: N threads increment one shared counter


def _counter(make: Callable[[], Any], bind: Callable[[Any], Callable[[], Any]],
             total: Callable[[Any], int]) -> Runner:
    def run(threads: int, work: int) -> tuple[float, bool]:
        shared = make()
        each = work // threads

        def body(_: int) -> None:
            inc = bind(shared)
            for _ in range(each):
                inc()

        seconds = _together(threads, body)
        return seconds, total(shared) == each * threads

    return run


class _LockedInt:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 0

    def inc(self) -> None:
        with self.lock:
            self.value += 1


def _ft_utils_counter() -> Runner:
    concurrency = importlib.import_module("ft_utils.concurrency")
    return _counter(lambda: concurrency.AtomicInt64(0), lambda c: c.incr, lambda c: c.get())


def _cereggii_counter() -> Runner:
    cereggii = importlib.import_module("cereggii")
    return _counter(lambda: cereggii.AtomicInt64(0), lambda c: c.increment_and_get, lambda c: c.get())


COUNTERS = Comparison(
    "counter increments", "increments", 400_000, "threading.Lock + int",
    (
        Contender("AtomicInt64.inc()", True, lambda: _counter(AtomicInt64, lambda c: c.inc, lambda c: c.load())),
        Contender("AtomicCounter handle.inc()", True,
                  lambda: _counter(AtomicCounter, lambda c: c.handle().inc, lambda c: c.value())),
        Contender("threading.Lock + int", False, lambda: _counter(_LockedInt, lambda c: c.inc, lambda c: c.value)),
        Contender("ft_utils AtomicInt64.incr()", False, _ft_utils_counter),
        Contender("cereggii AtomicInt64.increment_and_get()", False, _cereggii_counter),
    ),
)


# -- token bucket: N threads ask one limiter that always admits


class _PlainBucket:
    """A token bucket as people write it: floats behind a lock."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens = rate, burst, burst
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def allow(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def _limiter(make: Callable[[], Callable[[], bool]]) -> Runner:
    def run(threads: int, work: int) -> tuple[float, bool]:
        each = work // threads
        refused = [0] * threads
        allow = make()

        def body(index: int) -> None:
            for _ in range(each):
                if not allow():
                    refused[index] += 1

        seconds = _together(threads, body)
        return seconds, not any(refused)  # the limits are far above the load: all admitted

    return run


def _limits_fixed_window() -> Runner:
    limits = importlib.import_module("limits")  # ImportError now, while planning

    def make() -> Callable[[], bool]:
        limiter = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        item = limits.RateLimitItemPerSecond(10**9)
        return lambda: limiter.hit(item, "bench")

    return _limiter(make)


LIMITERS = Comparison(
    "token bucket allow()", "decisions", 200_000, "plain-Python bucket + Lock",
    (
        Contender("TokenBucket.allow()", True, lambda: _limiter(lambda: TokenBucket(1e12, 10**12).allow)),
        Contender("plain-Python bucket + Lock", False, lambda: _limiter(lambda: _PlainBucket(1e12, 1e12).allow)),
        Contender("limits FixedWindow (memory) hit()", False, _limits_fixed_window),
    ),
)


# -- worker pools: submit trivial tasks, then take every result


def _identity(x: int) -> int:
    return x


def _pool(make: Callable[[int], Any]) -> Runner:
    def run(threads: int, work: int) -> tuple[float, bool]:
        with make(threads) as executor:
            executor.submit(_identity, 0).result()  # start the threads outside the timing
            began = time.perf_counter()
            futures = [executor.submit(_identity, i) for i in range(work)]
            total = sum(f.result() for f in futures)
            seconds = time.perf_counter() - began
        return seconds, total == work * (work - 1) // 2

    return run


POOLS = Comparison(
    "worker pool submit+result (threads = workers)", "tasks", 40_000, "ThreadPoolExecutor",
    (
        Contender("WorkerPool", True, lambda: _pool(WorkerPool)),
        Contender("ThreadPoolExecutor", False, lambda: _pool(cf.ThreadPoolExecutor)),
    ),
)


# -- channels: one producer, N consumers, a buffer of 128

_STOP = object()


def _channel(make: Callable[[], Any], send_name: str, recv_name: str) -> Runner:
    def run(threads: int, work: int) -> tuple[float, bool]:
        box = make()
        send, recv = getattr(box, send_name), getattr(box, recv_name)
        counts = [0] * threads
        start = threading.Barrier(threads + 1)

        def consume(index: int) -> None:
            start.wait()
            n = 0
            while recv() is not _STOP:
                n += 1
            counts[index] = n

        consumers = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(threads)]
        for c in consumers:
            c.start()
        start.wait()
        began = time.perf_counter()
        for i in range(work):
            send(i)
        for _ in consumers:
            send(_STOP)
        for c in consumers:
            c.join()
        return time.perf_counter() - began, sum(counts) == work

    return run


CHANNELS = Comparison(
    "channel, 1 producer (threads = consumers)", "items", 100_000, "queue.Queue(128)",
    (
        Contender("Channel(128)", True, lambda: _channel(lambda: Channel(128), "send", "recv")),
        Contender("queue.Queue(128)", False, lambda: _channel(lambda: queue.Queue(128), "put", "get")),
    ),
)

COMPARISONS = {"counters": COUNTERS, "limiters": LIMITERS, "pools": POOLS, "channels": CHANNELS}


def run_comparisons(names: list[str], thread_counts: list[int], *, rounds: int, quick: bool,
                    progress: Callable[[str], None] = lambda line: None,
                    rows: list[Row] | None = None, missing: list[str] | None = None,
                    ) -> tuple[list[Row], list[str]]:
    """Run the named comparisons at every thread count; the rows, and the peers left out.

    Each row is appended to ``rows`` (a new list by default) as soon as it is measured, so a
    caller that passes its own lists keeps what was measured (and which peers were left out)
    when a later step fails or is interrupted; ``add_ratios(rows)`` then fills in the ratios.
    """
    rows = [] if rows is None else rows
    missing = [] if missing is None else missing
    plan: list[tuple[Comparison, Contender, Runner]] = []
    for name in names:
        comparison = COMPARISONS[name]
        for contender in comparison.contenders:
            try:
                plan.append((comparison, contender, contender.make()))
            except ImportError as exc:
                missing.append(f"{contender.label} ({exc.name or exc} not installed)")
    steps = len(plan) * len(thread_counts)
    step = 0
    for comparison, contender, runner in plan:
        work = max(comparison.work // (10 if quick else 1), 1000)
        for threads in thread_counts:
            step += 1
            progress(f"[{step}/{steps}] {comparison.name}: {contender.label}, {threads} thread(s)")
            times, exact = [], True
            for _ in range(rounds):
                seconds, ok = runner(threads, work)
                times.append(seconds)
                exact = exact and ok
            rows.append(Row(comparison.name, contender.label, contender.ours, threads,
                            work / min(times), exact, rounds=[round(t, 6) for t in times]))
    add_ratios(rows)
    return rows, missing


def add_ratios(rows: list[Row]) -> None:
    """Set each row's ratio to its comparison's baseline at the same thread count, if measured."""
    for row in rows:
        base = next((r for r in rows if r.comparison == row.comparison and r.threads == row.threads
                     and r.contender == COMPARISONS_BY_NAME[row.comparison].baseline), None)
        if base is not None and base.per_second > 0:
            row.ratio = row.per_second / base.per_second


COMPARISONS_BY_NAME = {c.name: c for c in COMPARISONS.values()}
