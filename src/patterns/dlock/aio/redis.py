"""AsyncRedisLock: the asyncio twin of RedisLock (``redis.asyncio``), same keys and scripts."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, TypeVar

from .._errors import LockConnectionError
from .._redis_core import GIVE_UP, HELD, SCRIPTS, WAIT, Attempts
from .._redis_core import KeyLayout, check_client, no_answer, redis_errors, socket_timeout, timed_out
from ._base import AsyncDistributedLock

__all__ = ["AsyncRedisLock"]

T = TypeVar("T")


async def call(client: Any, awaitable: Awaitable[T], budget: float | None = None) -> T:
    """Await a redis.asyncio call; connection problems become LockConnectionError.  ``budget``:
    the most seconds to wait, redis-py's own retries included; past it the call is cancelled
    (not awaited: a cancelled connect may linger) and LockConnectionError raised."""
    try:
        if budget is None:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task}, timeout=max(0.001, budget))
        if not done:
            task.cancel()
            task.add_done_callback(_consume)
            raise no_answer(client, f" within {budget:.3g} s")
        return task.result()
    except redis_errors() as exc:
        raise no_answer(client, f": {exc}") from exc


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class AsyncRedisLock(AsyncDistributedLock):
    """RedisLock for asyncio: ``client`` is a ``redis.asyncio.Redis``; everything else as RedisLock."""

    def __init__(self, client: Any, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[..., object] | None = None, owns_client: bool = False) -> None:
        check_client(client, "redis.asyncio.Redis")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._client = client
        self._owns_client = owns_client
        self._layout = KeyLayout(name, client)
        self._scripts = {kind: client.register_script(source) for kind, source in SCRIPTS.items()}
        self._value: str | None = None

    @property
    def client(self) -> Any:
        """The redis.asyncio client the lock talks through."""
        return self._client

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        tries = Attempts(self._layout, self._ttl, deadline)
        grace = socket_timeout(self._client) or 1.0  # a timed acquire ends by timeout + one socket timeout

        def left() -> float | None:
            return None if deadline is None else deadline + grace - time.monotonic()

        step, arg = tries.first()
        while step != HELD:
            if step == GIVE_UP:
                return False
            if step == WAIT:
                reply = await call(self._client, self._client.blpop([self._layout.wake], timeout=arg), left())
                step, arg = tries.next(step, reply, time.monotonic())
                continue
            self._hold_sent = time.monotonic()
            try:
                reply = await self._script("acquire", arg, left())
            except LockConnectionError as exc:
                budget = left()
                if not timed_out(exc) and (budget is None or budget > 0.01):
                    await self._cleanup(tries.value, budget)  # the SET may have run and only the reply was lost
                raise
            step, arg = tries.next(step, reply, time.monotonic())
        self._value, self._token = tries.value, arg
        return True

    async def _script(self, kind: str, args: list[Any], budget: float | None = None) -> Any:
        script = self._scripts[kind](keys=self._layout.keys[kind], args=args)
        return await call(self._client, script, budget)

    async def _cleanup(self, value: str, budget: float | None = None) -> None:
        try:
            await self._script("release", KeyLayout.release_args(value), budget)
        except Exception:  # noqa: BLE001 - best effort; the ttl ends it anyway
            pass

    async def _release_impl(self) -> bool:
        value, self._value = self._value, None
        return bool(await self._script("release", KeyLayout.release_args(value)))

    async def _renew_impl(self, ttl: float, budget: float) -> bool:
        return bool(await self._script("extend", KeyLayout.extend_args(self._value, ttl), budget))

    async def _extend_impl(self, ttl: float) -> bool:
        return bool(await self._script("extend", KeyLayout.extend_args(self._value, ttl)))

    async def _owned_impl(self) -> bool:
        return bool(await self._script("owned", [self._value]))

    async def _locked_impl(self) -> bool:
        return bool(await self._script("locked", []))

    async def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._cleanup(value)

    async def _close_impl(self) -> None:
        if self._owns_client:
            close = getattr(self._client, "aclose", None) or self._client.close
            await close()
