"""AsyncRedlock: the asyncio driver of Redlock's protocol (``patterns.dlock._redlock_core``, shared
with the threaded Redlock, so both decide alike).  A round runs one coroutine per node at once;
it stops waiting as soon as the core says the outcome is settled, and at the latest after
``node_timeout``, cancelling what is still pending (redis-py drops a connection whose command was
cancelled, so a late reply is never read by a later command; its retry policy runs inside the
same budget).  No fencing token, as Redlock."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Callable, Sequence

from .. import _redlock_core as core
from .._validate import check_ttl
from ..redis import _redis_errors, describe_client
from ..redlock import check_distinct
from ._base import AsyncDistributedLock

__all__ = ["AsyncRedlock"]


class AsyncRedlock(AsyncDistributedLock):
    """Redlock for asyncio over ``redis.asyncio.Redis`` clients; see :class:`patterns.dlock.Redlock`."""

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
        check_distinct(clients)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._node_timeout = (
            core.default_node_timeout(self._ttl) if node_timeout is None
            else check_ttl(node_timeout, param="node_timeout")
        )
        self._retry_delay = check_ttl(retry_delay, param="retry_delay")
        if isinstance(unreachable_tries, bool) or not isinstance(unreachable_tries, int) or unreachable_tries < 1:
            raise ValueError(f"unreachable_tries must be an int >= 1, got {unreachable_tries!r}")
        self._unreachable_tries = unreachable_tries
        self._clients = clients
        self._owns_clients = owns_clients
        self._quorum = core.quorum_of(len(clients))
        self._own = [_without_retry(c) for c in clients]  # one attempt per node per round
        self._scripts = [{k: c.register_script(src) for k, src in core.SCRIPTS.items()} for c in self._own]
        self._suspects: set[int] = set()
        self._stragglers: dict[int, asyncio.Future[Any]] = {}  # a silent node's call, still running
        self._value: str | None = None
        self._valid_until = 0.0

    @property
    def quorum(self) -> int:
        """How many nodes must agree: N // 2 + 1."""
        return self._quorum

    @property
    def node_timeout(self) -> float:
        """The most one round waits for the nodes, connecting included."""
        return self._node_timeout

    @property
    def validity(self) -> float:
        """Seconds the current hold is still valid for (0 when not held)."""
        return max(0.0, self._valid_until - time.monotonic()) if self._value is not None else 0.0

    async def _on_all(self, script: str, args: list[Any], *, budget: float | None = None,
                      only: list[int] | None = None) -> core.Tally:
        return await self._round(lambda i: self._scripts[i][script](keys=[self._name], args=args),
                                 budget=budget, only=only)

    async def _round(self, make: Callable[[int], Any], *, budget: float | None = None,
                     only: list[int] | None = None) -> core.Tally:
        budget = self._node_timeout if budget is None else max(0.001, min(self._node_timeout, budget))
        deadline = time.monotonic() + budget
        count = len(self._clients)
        targets = list(range(count)) if only is None else list(only)
        answers: list[str | None] = [None if i in targets else core.NO for i in range(count)]
        problems = [""] * count
        suspects = self._suspects & set(targets)
        order = [i for i in targets if i not in suspects] + sorted(suspects)
        tasks = {}
        for i in order:
            straggler = self._stragglers.get(i)
            if straggler is not None and not straggler.done():  # do not pile calls on a silent node
                answers[i], problems[i] = core.SILENT, "its previous call is still running"
                continue
            tasks[asyncio.ensure_future(make(i))] = i
        failures = _redis_errors() + (OSError,)
        try:
            pending = set(tasks)
            while pending and not core.may_stop(answers, suspects, self._quorum):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                done, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = tasks[task]
                    exc = task.exception()
                    if exc is None:
                        answers[index] = core.YES if task.result() else core.NO
                    elif isinstance(exc, failures):
                        answers[index], problems[index] = core.SILENT, str(exc) or type(exc).__name__
                    else:  # an error reply: it answered
                        answers[index] = core.NO
        finally:
            for task, index in tasks.items():
                if not task.done():  # cancelled, not awaited: a cancelled connect may linger
                    task.cancel()
                    task.add_done_callback(_consume)
                    self._stragglers[index] = task
                else:
                    _consume(task)
        tally = core.Tally(count)
        silent = f"no answer within {budget:g} s"
        for index in range(count):
            answer = answers[index] or core.SILENT
            tally.answers.append(answer)
            if index in targets:
                if answer == core.SILENT:
                    self._suspects.add(index)
                else:
                    self._suspects.discard(index)
            if answer == core.SILENT:
                tally.problems.append(f"{describe_client(self._clients[index])}: {problems[index] or silent}")
        return tally

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        ttl_ms = max(1, int(round(self._ttl * 1000)))
        unreachable = 0
        while True:
            value = secrets.token_hex(16)
            started = time.monotonic()
            self._hold_sent = started
            tally = await self._on_all("acquire", [value, ttl_ms],
                                       budget=core.round_budget(self._node_timeout, deadline, started))
            if tally.agreed and core.validity_left(self._ttl, started, time.monotonic()) > 0:
                self._value = value
                self._valid_until = started + self._ttl - core.drift(self._ttl)
                self._token = None
                return True
            yes = tally.said_yes()
            if yes:  # no partial hold is left behind (a silent node's late SET expires with the ttl)
                await self._on_all("release", [value], only=yes,
                                   budget=core.round_budget(self._node_timeout, deadline, time.monotonic()))
            unreachable = unreachable + 1 if tally.answered < self._quorum else 0
            pause = core.pause_before_retry(tally, self._name, self._retry_delay, unreachable,
                                            self._unreachable_tries, deadline)
            if pause is None:
                return False
            await asyncio.sleep(pause)

    async def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        tally = await self._on_all("release", [value])
        if not tally.agreed:
            tally.check_answered(self._name)
        return valid and tally.agreed

    async def _extend_impl(self, ttl: float) -> bool:
        started = time.monotonic()
        tally = await self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))])
        if time.monotonic() >= self._valid_until:  # it had expired before the quorum renewed it
            return False
        if tally.agreed and core.validity_left(ttl, started, time.monotonic()) > 0:
            self._valid_until = started + ttl - core.drift(ttl)
            return True
        tally.check_answered(self._name)
        return False

    async def _owned_impl(self) -> bool:
        if self._value is None or time.monotonic() >= self._valid_until:
            return False
        tally = await self._on_all("owned", [self._value])
        if not tally.agreed and time.monotonic() < self._valid_until:
            tally.check_answered(self._name)
        return tally.agreed and time.monotonic() < self._valid_until

    async def _locked_impl(self) -> bool:
        return (await self._round(lambda i: self._own[i].exists(self._name))).agreed

    async def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._on_all("release", [value])

    async def _close_impl(self) -> None:
        stragglers = [task for task in self._stragglers.values() if not task.done()]
        if stragglers:
            await asyncio.wait(stragglers, timeout=self._node_timeout)
        for own in self._own:
            await own.aclose()
        if self._owns_clients:
            for client in self._clients:
                close = getattr(client, "aclose", None) or client.close
                await close()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _without_retry(client: Any) -> Any:
    """A client on the same node with the same settings, whose calls are one attempt each."""
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    own_pool = aredis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    return aredis.Redis(connection_pool=own_pool, retry=Retry(NoBackoff(), 0))
