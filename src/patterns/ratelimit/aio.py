"""asyncio twins of the Redis limiters, over ``redis.asyncio``: the same scripts and keys.

``AsyncRedisTokenBucket``, ``AsyncRedisSlidingWindowLog``, ``AsyncRedisSlidingWindowCounter``
and ``AsyncRedisFixedWindow`` take a ``redis.asyncio.Redis`` and have the methods of their
sync twins in :mod:`patterns.ratelimit.redis` as coroutines; a limiter of one name is the same
limiter from both (same key, same script).  ``wait`` sleeps with ``asyncio.sleep``; a ``ctx``
ending, or the task being cancelled, mid-wait gives a token bucket's reserved tokens back.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from .._channel_base import check_wait
from .redis import (
    _UNAVAILABLE,
    _US,
    RedisReservation,
    RedisUnavailable,
    _TokenBucketParams,
    _WindowParams,
    check_n,
    wait_budget,
)

from redis.exceptions import NoScriptError  # after .redis, which names the missing extra  # noqa: E402
from . import _lua

__all__ = [
    "AsyncRedisFixedWindow",
    "AsyncRedisReservation",
    "AsyncRedisSlidingWindowCounter",
    "AsyncRedisSlidingWindowLog",
    "AsyncRedisTokenBucket",
    "RedisUnavailable",
]


class _AsyncEval:
    async def _eval(self, *args: object) -> Any:
        try:
            try:
                return await self._client.evalsha(self._sha, 1, self._key, *args)
            except NoScriptError:
                await self._client.script_load(self._source)
                return await self._client.evalsha(self._sha, 1, self._key, *args)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc


async def _sleep(delay: float, ctx: Any) -> bool:
    """Sleep ``delay`` seconds; True if ``ctx`` ended first."""
    if delay <= 0:
        return False
    if ctx is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(ctx.wait_async(), delay)
    except asyncio.TimeoutError:
        return False
    return True


class AsyncRedisReservation(RedisReservation):
    """A RedisReservation whose ``cancel`` is a coroutine."""

    __slots__ = ()

    async def cancel(self) -> None:  # type: ignore[override]
        """Give back the tokens no later reservation has claimed (see RedisReservation.cancel)."""
        args = self._cancel_args()
        if args is not None:
            await self._bucket._eval(*args)


class AsyncRedisTokenBucket(_AsyncEval, _TokenBucketParams):
    """:class:`patterns.ratelimit.redis.RedisTokenBucket` for asyncio."""

    def __init__(self, client: Any, name: str, rate: float, burst: int, *,
                 local_batch: int | None = None) -> None:
        self._setup(rate, burst, local_batch)
        super().__init__(client, name)
        self._lease_lock = asyncio.Lock()

    def _reservation(self, reply: list, n: int) -> AsyncRedisReservation:
        if int(reply[0]) != 1:
            return AsyncRedisReservation(self, False, n, -1.0, None, "0")
        return AsyncRedisReservation(self, True, n, float(reply[1]), reply[2], reply[4], reply[5], int(reply[6]))

    async def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now (one Redis round trip); True if taken."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            return False
        if self._batch is None:
            return await self._eval(b"allow", *self._rb, n, 0) == 1
        async with self._lease_lock:
            if self._leased >= n:
                self._leased -= n
                return True
            reply = await self._eval("lease", *self._rb, n, 0, max(self._batch, n))
            if int(reply[0]) != 1:
                return False
            self._leased += int(reply[3]) - n
            return True

    async def reserve(self, n: int = 1) -> AsyncRedisReservation:
        """Reserve ``n`` tokens; the reservation says how long to wait (see RedisTokenBucket.reserve)."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return AsyncRedisReservation(self, True, n, 0.0, None, "0")
        if n > self._burst:
            return AsyncRedisReservation(self, False, n, -1.0, None, "0")
        return self._reservation(await self._eval("take", *self._rb, n, -1), n)

    async def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Wait (with asyncio.sleep) until ``n`` can be taken; TimeoutError / ctx.err() as the sync twin."""
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            self._too_big(n)
        budget = wait_budget(timeout, ctx)
        res = self._reservation(await self._eval("take", *self._rb, n, self._max_wait(budget)), n)
        if not res.ok:
            raise self._refused_wait(n, budget)
        try:
            if await _sleep(res.delay(), ctx):
                await res.cancel()
                raise ctx.err()
        except BaseException:
            try:
                await asyncio.shield(res.cancel())
            except (RedisUnavailable, asyncio.CancelledError):
                pass
            raise
        return True

    async def tokens(self) -> float:
        """Tokens available now, on the server's clock."""
        if self._unlimited:
            return math.inf
        return float((await self._eval("peek", *self._rb, 0, 0))[2])

    async def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now)."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return 0.0
        if n > self._burst:
            return math.inf
        return self._retry_after(n, await self.tokens())


class _AsyncWindow(_AsyncEval, _WindowParams):
    def __init__(self, client: Any, name: str, limit: int, window: float) -> None:
        self._setup(limit, window)
        super().__init__(client, name)

    async def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now (one Redis round trip); True if taken."""
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            return False
        return await self._eval(b"allow", *self._lw, n) == 1

    async def remaining(self) -> int:
        return self._remaining(self._limit, await self._eval("peek", self._limit, self._win_us, 0))

    async def reset_after(self) -> float:
        return float((await self._eval("peek", self._limit, self._win_us, 0))[3]) / _US

    async def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now)."""
        n = check_n(n)
        if n == 0:
            return 0.0
        if n > self._limit:
            return math.inf
        return float((await self._eval("peek", self._limit, self._win_us, n))[1]) / _US

    async def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Wait (with asyncio.sleep) until ``n`` can be taken; TimeoutError / ctx.err() as the sync twin."""
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            self._too_big(n)
        budget = wait_budget(timeout, ctx)
        start = time.monotonic()
        while True:
            reply = await self._eval("take", self._limit, self._win_us, n)
            if int(reply[0]) == 1:
                return True
            delay = float(reply[1]) / _US
            if delay > budget - (time.monotonic() - start):
                raise TimeoutError(
                    f"wait({n}) would need {delay:.6f} s, longer than the timeout or the "
                    "context's deadline allows"
                )
            if await _sleep(delay, ctx):
                raise ctx.err()


class AsyncRedisSlidingWindowLog(_AsyncWindow):
    """:class:`patterns.ratelimit.redis.RedisSlidingWindowLog` for asyncio."""

    _kind = "swl"
    _source = _lua.SLIDING_WINDOW_LOG


class AsyncRedisSlidingWindowCounter(_AsyncWindow):
    """:class:`patterns.ratelimit.redis.RedisSlidingWindowCounter` for asyncio."""

    _kind = "swc"
    _source = _lua.SLIDING_WINDOW_COUNTER


class AsyncRedisFixedWindow(_AsyncWindow):
    """:class:`patterns.ratelimit.redis.RedisFixedWindow` for asyncio."""

    _kind = "fw"
    _source = _lua.FIXED_WINDOW
