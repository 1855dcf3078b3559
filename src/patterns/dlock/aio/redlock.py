"""AsyncRedlock: the asyncio twin of Redlock.  Rounds go to every node at once as concurrent
coroutines (no executor), each bounded by ``node_timeout``.  No fencing token, as Redlock."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Callable, Sequence

from .._errors import QuorumNotReached
from .._validate import check_ttl
from ..redis import _redis_errors, describe_client
from ..redlock import _ACQUIRE, _EXTEND, _OWNED, _RELEASE, _pause_before_retry
from ._base import AsyncDistributedLock

__all__ = ["AsyncRedlock"]


class AsyncRedlock(AsyncDistributedLock):
    """Redlock for asyncio over ``redis.asyncio.Redis`` clients; see :class:`patterns.dlock.Redlock`."""

    _kind = "redlock"

    def __init__(
        self,
        clients: Sequence[Any],
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[..., object] | None = None,
        node_timeout: float | None = None,
        retry_delay: float = 0.1,
        unreachable_tries: int = 3,
        owns_clients: bool = False,
    ) -> None:
        clients = list(clients) if not isinstance(clients, (str, bytes)) else []
        if not clients:
            raise ValueError("clients must be a non-empty sequence of redis.asyncio.Redis, got none")
        for client in clients:
            if not hasattr(client, "register_script"):
                raise TypeError(f"clients must be redis.asyncio.Redis objects, got {type(client).__name__}")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._node_timeout = (
            min(0.2, max(0.05, self._ttl / 10)) if node_timeout is None
            else check_ttl(node_timeout, param="node_timeout")
        )
        self._retry_delay = check_ttl(retry_delay, param="retry_delay")
        if isinstance(unreachable_tries, bool) or not isinstance(unreachable_tries, int) or unreachable_tries < 1:
            raise ValueError(f"unreachable_tries must be an int >= 1, got {unreachable_tries!r}")
        self._unreachable_tries = unreachable_tries
        self._clients = clients
        self._owns_clients = owns_clients
        self._quorum = len(clients) // 2 + 1
        self._scripts = [
            {k: c.register_script(src) for k, src in
             (("acquire", _ACQUIRE), ("release", _RELEASE), ("extend", _EXTEND), ("owned", _OWNED))}
            for c in clients
        ]
        self._value: str | None = None
        self._valid_until = 0.0

    @property
    def quorum(self) -> int:
        """How many nodes must agree: N // 2 + 1."""
        return self._quorum

    def _drift(self, ttl: float) -> float:
        return ttl * 0.01 + 0.002

    async def _on_all(self, script: str, args: list[Any]) -> tuple[int, int, list[str]]:
        async def one(index: int) -> Any:
            return await asyncio.wait_for(
                self._scripts[index][script](keys=[self._name], args=args), self._node_timeout
            )

        results = await asyncio.gather(*(one(i) for i in range(len(self._clients))), return_exceptions=True)
        yes = answered = 0
        problems = []
        for client, result in zip(self._clients, results):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, asyncio.TimeoutError):
                    problems.append(f"{describe_client(client)}: no answer within {self._node_timeout:g} s")
                elif isinstance(result, _redis_errors()):
                    problems.append(f"{describe_client(client)}: {result}")
                else:
                    problems.append(f"{describe_client(client)}: {type(result).__name__}: {result}")
            else:
                answered += 1
                yes += bool(result)
        return yes, answered, problems

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        ttl_ms = max(1, int(round(self._ttl * 1000)))
        unreachable = 0
        while True:
            value = secrets.token_hex(16)
            started = time.monotonic()
            yes, answered, problems = await self._on_all("acquire", [value, ttl_ms])
            validity = self._ttl - (time.monotonic() - started) - self._drift(self._ttl)
            if yes >= self._quorum and validity > 0:
                self._value = value
                self._valid_until = started + self._ttl - self._drift(self._ttl)
                self._token = None
                return True
            await self._on_all("release", [value])  # no partial hold is left behind
            unreachable = unreachable + 1 if answered < self._quorum else 0
            pause = _pause_before_retry(self, answered, problems, unreachable, deadline)
            if pause is None:
                return False
            await asyncio.sleep(pause)

    async def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        yes, _, _ = await self._on_all("release", [value])
        return valid and yes >= self._quorum

    async def _extend_impl(self, ttl: float) -> bool:
        started = time.monotonic()
        yes, answered, problems = await self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))])
        if time.monotonic() >= self._valid_until:
            return False
        if yes >= self._quorum and ttl - (time.monotonic() - started) - self._drift(ttl) > 0:
            self._valid_until = started + ttl - self._drift(ttl)
            return True
        self._check_answered(answered, problems)
        return False

    def _check_answered(self, answered: int, problems: list[str]) -> None:
        if answered < self._quorum:
            raise QuorumNotReached(
                f"{self._name!r}: {answered} of {len(self._clients)} nodes answered, "
                f"{self._quorum} needed: " + "; ".join(problems)
            )

    async def _owned_impl(self) -> bool:
        if self._value is None or time.monotonic() >= self._valid_until:
            return False
        yes, answered, problems = await self._on_all("owned", [self._value])
        if yes < self._quorum and time.monotonic() < self._valid_until:
            self._check_answered(answered, problems)
        return yes >= self._quorum and time.monotonic() < self._valid_until

    async def _locked_impl(self) -> bool:
        async def exists(client: Any) -> int:
            return int(await asyncio.wait_for(client.exists(self._name), self._node_timeout))

        results = await asyncio.gather(*(exists(c) for c in self._clients), return_exceptions=True)
        return sum(r for r in results if isinstance(r, int)) >= self._quorum

    async def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._on_all("release", [value])

    async def _close_impl(self) -> None:
        if self._owns_clients:
            for client in self._clients:
                close = getattr(client, "aclose", None) or client.close
                await close()
