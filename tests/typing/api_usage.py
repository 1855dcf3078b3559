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
        with sem as entered:  # __enter__ returns the semaphore itself (stubs once said bool)
            same: Semaphore = entered
        with Group(timed) as group:
            group.go(square, 2)
    cancel()
    bucket = TokenBucket(10.0, 5)
    return acquired and bucket.allow() and same is sem


# -- every other public name, each used where its type shows (test_typing.py also checks that
#    no public name reaches a checker as Any, and that wrong argument types are rejected)

import asyncio  # noqa: E402

import atomics  # noqa: E402
from atomics import CounterHandle, MemoryOrder  # noqa: E402
from atomics.views import Int64ArrayView, Int64View  # noqa: E402
from patterns import (  # noqa: E402
    Canceled,
    ChannelClosed,
    CheckedLock,
    CheckedRLock,
    Context,
    ContextError,
    DeadlineExceeded,
    LockOrderChecker,
    LockOrderViolation,
    PipelineRun,
    PoolRun,
    PoolShutdownStatus,
    PoolStats,
    Recv,
    Selected,
    Send,
    Shutdown,
    ShutdownReport,
    SignalReceived,
    StepResult,
    after_func,
    cause,
    ordered,
    select,
    signal_context,
    with_cancel_cause,
    with_deadline,
    with_timeout_cause,
    with_value,
    without_cancel,
)
from patterns.context import Done  # noqa: E402
from patterns.dlock import (  # noqa: E402
    DistributedLock,
    EtcdLock,
    EtcdSession,
    FencedResource,
    LockConnectionError,
    LockError,
    LockLost,
    LockNotAcquired,
    LockNotOwned,
    MemoryLock,
    MemoryRegistry,
    QuorumNotReached,
    RedisLock,
    Redlock,
    StaleToken,
    lock_from_url,
)
from patterns.dlock.aio import (  # noqa: E402
    AsyncDistributedLock,
    AsyncEtcdLock,
    AsyncEtcdSession,
    AsyncMemoryLock,
    AsyncRedisLock,
    AsyncRedlock,
)
from patterns.dlock.aio import lock_from_url as async_lock_from_url  # noqa: E402
from patterns.lockorder import CallSite, LockOrderEdge, default_checker  # noqa: E402
from patterns.ratelimit import (  # noqa: E402
    INF,
    FixedWindow,
    KeyedLimiter,
    RateLimited,
    Reservation,
    SlidingWindowCounter,
    SlidingWindowLog,
    rate_limited,
)
from patterns.ratelimit.aio import (  # noqa: E402
    AsyncRedisFixedWindow,
    AsyncRedisReservation,
    AsyncRedisSlidingWindowCounter,
    AsyncRedisSlidingWindowLog,
    AsyncRedisTokenBucket,
)
from patterns.ratelimit.redis import (  # noqa: E402
    RedisFixedWindow,
    RedisReservation,
    RedisSlidingWindowCounter,
    RedisSlidingWindowLog,
    RedisTokenBucket,
    RedisUnavailable,
)

ERRORS: tuple[type[Exception], ...] = (
    Canceled, ChannelClosed, ContextError, DeadlineExceeded, LockOrderViolation, SignalReceived,
    LockConnectionError, LockError, LockLost, LockNotAcquired, LockNotOwned, QuorumNotReached,
    StaleToken, RateLimited, RedisUnavailable,
)
SYNC_LOCKS: tuple[type[DistributedLock], ...] = (EtcdLock, MemoryLock, RedisLock, Redlock)
ASYNC_LOCKS: tuple[type[AsyncDistributedLock], ...] = (AsyncEtcdLock, AsyncMemoryLock, AsyncRedisLock,
                                                       AsyncRedlock)
SESSIONS: tuple[type[object], ...] = (EtcdSession, AsyncEtcdSession, FencedResource, MemoryRegistry)
REDIS_LIMITERS: tuple[type[object], ...] = (
    RedisFixedWindow, RedisSlidingWindowCounter, RedisSlidingWindowLog, RedisTokenBucket, RedisReservation,
    AsyncRedisFixedWindow, AsyncRedisSlidingWindowCounter, AsyncRedisSlidingWindowLog, AsyncRedisTokenBucket,
    AsyncRedisReservation,
)
RESULTS: tuple[type[object], ...] = (PipelineRun, PoolRun, PoolShutdownStatus, PoolStats, ShutdownReport,
                                     StepResult, Done, CallSite, LockOrderEdge, Selected, CounterHandle)


def views_and_orders() -> int:
    cell = Int64View(bytearray(8))
    cell.store(5, order=MemoryOrder.RELEASE)
    cells = Int64ArrayView(bytearray(16))
    loaded: int = cell.load(order=MemoryOrder.ACQUIRE) + cells.load(1)
    version: str = atomics.__version__
    return loaded + len(version)


def locks() -> int | None:
    lock: DistributedLock = lock_from_url("memory://", "job", ttl=10.0)
    with lock:
        token: int | None = lock.token
    plain = MemoryLock("job", 10.0)
    held: bool = plain.acquire(timeout=0.1)
    plain.release()
    checker = LockOrderChecker()
    first, second = CheckedLock("a", checker=checker), CheckedRLock("b", checker=checker)
    with ordered(first, second, timeout=1.0):
        pass
    return token if held and default_checker is not checker else None


async def async_locks() -> bool:
    lock: AsyncDistributedLock = async_lock_from_url("memory://", "job", ttl=10.0)
    async with lock:
        await asyncio.sleep(0)
    other = AsyncMemoryLock("job", 10.0)
    got: bool = await other.acquire(timeout=0.1)
    await other.release()
    return got


def contexts() -> BaseException | None:
    ctx, cancel = with_cancel_cause(background())
    valued: Context = with_value(without_cancel(ctx), "key", 1)
    timed, stop = with_timeout_cause(valued, 1.0, TimeoutError("slow"))
    dated, stop_dated = with_deadline(timed, 1e12)
    stop_watching = after_func(dated, lambda: None)
    unwatched: bool = stop_watching()
    sig_ctx, stop_sig = signal_context(background())
    stop_sig()
    stop_dated()
    stop()
    cancel(ValueError("done"))
    return cause(ctx) if unwatched or sig_ctx is not None else None


def limiters_and_shutdown() -> float:
    window = FixedWindow(10, 1.0)
    log = SlidingWindowLog(10, 1.0)
    counter = SlidingWindowCounter(10, 1.0)
    keyed = KeyedLimiter(lambda: TokenBucket(INF, 1))
    reservation: Reservation = TokenBucket(10.0, 5).reserve()

    @rate_limited(window, block=False)
    def limited() -> int:
        return 1

    shutdown = Shutdown()
    report: ShutdownReport = shutdown.run(timeout=1.0)
    ch: Channel = Channel(1)
    chosen = select(Send(ch, 1), Recv(ch), timeout=0.1)
    return float(limited() + log.allow() + counter.allow() + keyed.limiter("k").allow()
                 + len(report.steps) + reservation.delay() + chosen.index)
