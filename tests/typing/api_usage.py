"""Typed use of the public API: `mypy --strict` must accept it (tests/test_typing.py runs it)."""

from __future__ import annotations

import concurrent.futures as cf

from atomics import AtomicBool, AtomicCounter, AtomicInt64
from patterns import (
    Channel,
    Future,
    Group,
    Pipeline,
    Semaphore,
    WeightedSemaphore,
    WorkerPool,
    background,
    fan_in,
    fan_out,
    with_cancel,
    with_timeout,
)
from patterns.ratelimit import TokenBucket


def square(x: int) -> int:
    return x * x


def counters() -> int:
    counter = AtomicInt64(0)
    counter.inc()
    swapped: bool = counter.compare_and_swap(1, 2)
    flag = AtomicBool(False)
    flag.store(swapped)
    striped = AtomicCounter()
    handle = striped.handle()
    handle.inc()
    return counter.load() + striped.value()


def pool_and_pipeline() -> list[int]:
    with WorkerPool(4) as pool:
        future: Future[int] = pool.submit(square, 3)
        value: int = future.result(timeout=1.0)
        as_std: cf.Future[int] = future
        streamed = list(pool.imap(square, range(10)))
    with Pipeline().stage(square, workers=2).run(range(5)) as run:
        piped = list(run)
    merged = fan_in(Channel(1), Channel(1))
    merged_closed: bool = merged.closed
    spread = sorted(fan_out(square, range(4), 2))
    return [value, as_std.result(), *streamed, *piped, *spread, int(merged_closed)]


def control() -> bool:
    ctx, cancel = with_cancel(background())
    with with_timeout(ctx, 1.0) as timed:
        sem = Semaphore(2)
        weighted = WeightedSemaphore(10)
        acquired: bool = sem.acquire(timeout=0.1, ctx=timed)
        sem.release()
        weighted.acquire(3)
        weighted.release(3)
        with Group(timed) as group:
            group.go(square, 2)
    cancel()
    bucket = TokenBucket(10.0, 5)
    return acquired and bucket.allow()
