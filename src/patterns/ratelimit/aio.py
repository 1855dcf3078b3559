"""asyncio twins of the Redis limiters, over ``redis.asyncio``: the same scripts and keys.

``AsyncRedisTokenBucket``, ``AsyncRedisSlidingWindowLog``, ``AsyncRedisSlidingWindowCounter``
and ``AsyncRedisFixedWindow`` take a ``redis.asyncio.Redis`` and have the methods of their
sync twins in :mod:`patterns.ratelimit.redis` as coroutines; a limiter of one name is the same
limiter from both (same key, same script).  ``wait`` sleeps with ``asyncio.sleep``; a ``ctx``
ending, or the task being cancelled, mid-wait gives a token bucket's reserved tokens back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._protocol import Cancel, Ops, Sleep, TokenBucketCore, WindowCore
from .redis import _UNAVAILABLE, RedisReservation, RedisUnavailable, _RedisLimiter

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


class _AsyncEval:
    """The asyncio driver: ``_eval`` awaits the script; ``_run`` drives a protocol operation."""

    async def _eval(self, *args: object) -> Any:
        try:
            try:
                return await self._client.evalsha(self._sha, 1, self._key, *args)
            except NoScriptError:
                await self._client.script_load(self._source)
                return await self._client.evalsha(self._sha, 1, self._key, *args)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    async def _run(self, ops: Ops) -> Any:
        try:
            request = next(ops)
            while True:
                try:
                    if type(request) is Sleep:
                        result: Any = await _sleep(request.seconds, request.ctx)
                    elif type(request) is Cancel:
                        result = None
                        try:  # best effort, and it must finish even when this task is cancelled
                            await asyncio.shield(self._eval(*request.args))
                        except (RedisUnavailable, asyncio.CancelledError):
                            pass
                    else:
                        result = await self._eval(*request)
                except BaseException as exc:  # noqa: BLE001 - thrown into the operation
                    request = ops.throw(exc)
                else:
                    request = ops.send(result)
        except StopIteration as stop:
            return stop.value


class AsyncRedisReservation(RedisReservation):
    """A RedisReservation whose ``cancel`` is a coroutine."""

    __slots__ = ()

    async def cancel(self) -> None:  # type: ignore[override]
        """Give back the tokens no later reservation has claimed (see RedisReservation.cancel)."""
        args = self._cancel_args()
        if args is not None:
            await self._bucket._eval(*args)


class AsyncRedisTokenBucket(_AsyncEval, TokenBucketCore, _RedisLimiter):
    """:class:`patterns.ratelimit.redis.RedisTokenBucket` for asyncio."""

    _kind = "tb"
    _source = _lua.TOKEN_BUCKET
    _reservation_type = AsyncRedisReservation

    def __init__(self, client: Any, name: str, rate: float, burst: int, *,
                 local_batch: int | None = None) -> None:
        self._setup(rate, burst, local_batch)
        _RedisLimiter.__init__(self, client, name)
        self._lease_lock = asyncio.Lock()

    async def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now (one Redis round trip); True if taken."""
        if self._batch is None:
            return await self._run(self._allow_ops(n))
        async with self._lease_lock:
            return await self._run(self._allow_ops(n))

    async def reserve(self, n: int = 1) -> AsyncRedisReservation:
        """Reserve ``n`` tokens; the reservation says how long to wait (see RedisTokenBucket.reserve)."""
        return await self._run(self._reserve_ops(n))

    async def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Wait (with asyncio.sleep) until ``n`` can be taken; TimeoutError / ctx.err() as the sync twin."""
        return await self._run(self._wait_ops(n, timeout, ctx))

    async def tokens(self) -> float:
        """Tokens available now, on the server's clock."""
        return await self._run(self._tokens_ops())

    async def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now)."""
        return await self._run(self._retry_after_ops(n))


class _AsyncWindow(_AsyncEval, WindowCore, _RedisLimiter):
    def __init__(self, client: Any, name: str, limit: int, window: float) -> None:
        self._setup(limit, window)
        _RedisLimiter.__init__(self, client, name)

    async def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now (one Redis round trip); True if taken."""
        return await self._run(self._allow_ops(n))

    async def remaining(self) -> int:
        return await self._run(self._remaining_ops())

    async def reset_after(self) -> float:
        return await self._run(self._reset_after_ops())

    async def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now)."""
        return await self._run(self._retry_after_ops(n))

    async def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Wait (with asyncio.sleep) until ``n`` can be taken; TimeoutError / ctx.err() as the sync twin."""
        return await self._run(self._wait_ops(n, timeout, ctx))


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
