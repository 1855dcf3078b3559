"""``rate_limited``: put a limiter in front of a function, sync or async.

::

    @rate_limited(TokenBucket(5, 10))                       # blocks until a token is there
    def fetch(url): ...

    @rate_limited(per_user, block=False, key=lambda user, *a, **k: user)
    async def handle(user, request): ...                     # raises RateLimited at once

- ``block=True``: wait for the limiter (``timeout`` seconds at most: past it, or when the
  wait can be seen to need longer, ``RateLimited`` is raised without taking anything).
  Async functions wait with ``asyncio.sleep``, never blocking the event loop; a cancelled
  task gives a TokenBucket's reserved tokens back.
- ``block=False``: a refusal raises ``RateLimited`` at once, carrying ``retry_after``.
- ``key``: for a :class:`KeyedLimiter`, a callable computing the key from the call's
  arguments.

The limiter may be any of :mod:`patterns.ratelimit`'s limiters (in process or Redis) or a
KeyedLimiter; Redis limiters used from async functions block the loop for one round trip
(use :mod:`patterns.ratelimit.aio` there).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
from typing import Any, Callable, TypeVar

from .._validate import check_timeout
from .keyed import KeyedLimiter

__all__ = ["RateLimited", "rate_limited"]

F = TypeVar("F", bound=Callable[..., Any])


class RateLimited(Exception):
    """A call refused by its rate limiter; ``retry_after`` says when it could pass (seconds)."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message or f"rate limited: retry after {retry_after:.3f} s")

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from both arguments (the default would pass the message as ``retry_after``)
        return (type(self), (self.retry_after, str(self)))


def _refused(lim: Any, n: int) -> RateLimited:
    return RateLimited(lim.retry_after(n))


def _acquire(lim: Any, n: int, block: bool, timeout: float | None) -> None:
    if lim.allow(n):
        return
    if not block:
        raise _refused(lim, n)
    try:
        lim.wait(n, timeout)
    except TimeoutError as exc:
        raise RateLimited(lim.retry_after(n), f"rate limited: no room within {timeout} s") from exc


async def _acquire_async(lim: Any, n: int, block: bool, timeout: float | None) -> None:
    if inspect.iscoroutinefunction(lim.allow):  # an asyncio limiter (patterns.ratelimit.aio)
        if await lim.allow(n):
            return
        if not block:
            raise RateLimited(await lim.retry_after(n))
        try:
            await lim.wait(n, timeout)
        except TimeoutError as exc:
            raise RateLimited(await lim.retry_after(n), f"rate limited: no room within {timeout} s") from exc
        return
    if lim.allow(n):
        return
    if not block:
        raise _refused(lim, n)
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    reserve = getattr(lim, "reserve", None)
    if reserve is not None:
        res = reserve(n)
        if not res.ok:
            raise ValueError(f"n must be <= burst ({lim.burst}) to ever be granted, got {n}")
        delay = res.delay()
        if delay > deadline - time.monotonic():
            res.cancel()
            raise RateLimited(delay, f"rate limited: no room within {timeout} s")
        try:
            await asyncio.sleep(delay)
        except BaseException:
            res.cancel()
            raise
        return
    while True:
        delay = lim.retry_after(n)
        if delay == math.inf:
            raise ValueError(f"n={n} can never be admitted by {lim!r}")
        if delay > deadline - time.monotonic():
            raise RateLimited(delay, f"rate limited: no room within {timeout} s")
        await asyncio.sleep(delay)
        if lim.allow(n):
            return


def rate_limited(limiter: Any, *, block: bool = True, timeout: float | None = None,
                 key: Callable[..., Any] | None = None, n: int = 1) -> Callable[[F], F]:
    """Decorate a function (sync or ``async def``) so each call first passes ``limiter``."""
    if not all(callable(getattr(limiter, name, None)) for name in ("allow", "retry_after")):
        raise TypeError(f"limiter must be a rate limiter (allow, retry_after), got {type(limiter).__name__}")
    timeout = check_timeout(timeout)
    keyed = isinstance(limiter, KeyedLimiter)
    if keyed and key is None:
        raise TypeError("a KeyedLimiter needs key=, a callable taking the call's arguments")
    if key is not None and not keyed:
        raise TypeError(f"key= needs a KeyedLimiter, got {type(limiter).__name__}")
    if key is not None and not callable(key):
        raise TypeError(f"key must be callable, got {type(key).__name__}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if keyed:  # the key's limiter pinned while the call waits for it
                    async with limiter.hold(key(*args, **kwargs)) as lim:
                        await _acquire_async(lim, n, block, timeout)
                else:
                    await _acquire_async(limiter, n, block, timeout)
                return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if keyed:
                with limiter.hold(key(*args, **kwargs)) as lim:
                    _acquire(lim, n, block, timeout)
            else:
                _acquire(limiter, n, block, timeout)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
