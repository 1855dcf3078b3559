"""AsyncRedisLock: the asyncio twin of RedisLock (``redis.asyncio``), same keys and scripts."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Awaitable, Callable, TypeVar

from .._errors import LockConnectionError
from ..redis import _timeout_error
from ..redis import _ACQUIRE, _EXTEND, _HANDOFF_MS, _LOCKED, _OWNED, _RELEASE, _WAKE_TTL_MS, _ms, _redis_errors
from ..redis import _lay_out, _socket_timeout, describe_client, wait_after_refusal
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
            raise LockConnectionError(f"{describe_client(client)} did not answer within {budget:.3g} s")
        return task.result()
    except _redis_errors() as exc:
        raise LockConnectionError(f"{describe_client(client)} did not answer: {exc}") from exc


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class AsyncRedisLock(AsyncDistributedLock):
    """RedisLock for asyncio: ``client`` is a ``redis.asyncio.Redis``; everything else as RedisLock."""

    def __init__(
        self,
        client: Any,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[..., object] | None = None,
        owns_client: bool = False,
    ) -> None:
        if not hasattr(client, "register_script"):
            raise TypeError(f"client must be a redis.asyncio.Redis, got {type(client).__name__}")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._client = client
        self._owns_client = owns_client
        _lay_out(self, name, client)
        self._acquire_script = client.register_script(_ACQUIRE)
        self._release_script = client.register_script(_RELEASE)
        self._extend_script = client.register_script(_EXTEND)
        self._owned_script = client.register_script(_OWNED)
        self._locked_script = client.register_script(_LOCKED)
        self._value: str | None = None

    @property
    def client(self) -> Any:
        """The redis.asyncio client the lock talks through."""
        return self._client

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        ttl_ms = _ms(self._ttl)
        heir = ""
        grace = _socket_timeout(self._client) or 1.0
        while True:
            value = secrets.token_hex(16)
            self._hold_sent = now = time.monotonic()
            budget = None if deadline is None else deadline + grace - now  # timeout + one socket timeout
            try:
                args = [value, ttl_ms, heir, self._waiting_ms]
                got, number = await call(self._client, self._acquire_script(keys=self._acquire_keys, args=args), budget)
            except LockConnectionError as exc:
                if exc.__cause__ is None or not isinstance(exc.__cause__, _timeout_error()):
                    left = None if deadline is None else deadline + grace - time.monotonic()
                    if left is None or left > 0.01:  # the SET may have run and only the reply was lost
                        await self._cleanup(value, left)
                raise
            if got:
                self._value = value
                self._token = int(number)
                return True
            wait = wait_after_refusal(number, self._poll_max, deadline, time.monotonic())
            if wait is None:
                return False
            heir = ""
            if wait >= 0.001:
                woken = await call(self._client, self._client.blpop([self._wake_key], timeout=round(wait, 3)),
                                   None if deadline is None else deadline + grace - time.monotonic())
                if woken:
                    heir = woken[1]

    async def _cleanup(self, value: str, budget: float | None = None) -> None:
        try:
            await call(self._client, self._release_script(keys=self._release_keys, args=[value, _WAKE_TTL_MS, _HANDOFF_MS]),
                       budget)
        except Exception:  # noqa: BLE001 - best effort; the ttl ends it anyway
            pass

    async def _release_impl(self) -> bool:
        value, self._value = self._value, None
        script = self._release_script(keys=self._release_keys, args=[value, _WAKE_TTL_MS, _HANDOFF_MS])
        return bool(await call(self._client, script))

    async def _renew_impl(self, ttl: float, budget: float) -> bool:
        script = self._extend_script(keys=self._keys[:1], args=[self._value, _ms(ttl)])
        return bool(await call(self._client, script, budget))

    async def _extend_impl(self, ttl: float) -> bool:
        script = self._extend_script(keys=self._keys[:1], args=[self._value, _ms(ttl)])
        return bool(await call(self._client, script))

    async def _owned_impl(self) -> bool:
        return bool(await call(self._client, self._owned_script(keys=self._keys[:1], args=[self._value])))

    async def _locked_impl(self) -> bool:
        return bool(await call(self._client, self._locked_script(keys=[self._name])))

    async def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._cleanup(value)

    async def _close_impl(self) -> None:
        if self._owns_client:
            close = getattr(self._client, "aclose", None) or self._client.close
            await close()
