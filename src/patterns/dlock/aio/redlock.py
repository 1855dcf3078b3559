"""AsyncRedlock: the asyncio driver of Redlock's protocol (``patterns.dlock._redlock_core``, shared
with the threaded Redlock, so both decide alike).  A round runs one coroutine per node at once;
it stops waiting as soon as the core says the outcome is settled, and at the latest after
``node_timeout``, cancelling what is still pending (redis-py drops a connection whose command was
cancelled, so a late reply is never read by a later command; its retry policy runs inside the
same budget).  No fencing token, as Redlock."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Sequence

from .. import _redlock_core as core
from .._redis_core import describe_client, is_cluster, redis_errors as _redis_errors
from ._base import AsyncDistributedLock

__all__ = ["AsyncRedlock"]


class AsyncRedlock(core.RedlockHold, AsyncDistributedLock):
    """Redlock for asyncio over ``redis.asyncio.Redis`` clients (or ``redis.asyncio.RedisCluster``,
    one cluster as one node); see :class:`patterns.dlock.Redlock`."""

    quorum, node_timeout, validity = core.RedlockHold.quorum, core.RedlockHold.node_timeout, core.RedlockHold.validity

    def __init__(self, clients: Sequence[Any], name: str, ttl: float, *, timeout: float | None = None,
                 auto_renew: bool = False, on_lost: Callable[..., object] | None = None,
                 node_timeout: float | None = None, retry_delay: float = 0.1, unreachable_tries: int = 3,
                 owns_clients: bool = False) -> None:
        clients = core.check_options(clients, "redis.asyncio.Redis", need_socket_timeout=False)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._set_options(len(clients), node_timeout, retry_delay, unreachable_tries, owns_clients)
        self._clients = clients
        self._own = [_without_retry(c) for c in clients]  # one attempt per node per round
        self._scripts = [{k: c.register_script(src) for k, src in core.SCRIPTS.items()} for c in self._own]
        self._suspects: set[int] = set()
        self._stragglers: dict[int, asyncio.Future[Any]] = {}  # a silent node's call, still running

    async def _on_all(self, script: str, args: list[Any], *, budget: float | None = None,
                      only: list[int] | None = None) -> core.Tally:
        return await self._round(lambda i: self._scripts[i][script](keys=[self._name], args=args),
                                 budget=budget, only=only)

    async def _round(self, make: Callable[[int], Any], *, budget: float | None = None,
                     only: list[int] | None = None) -> core.Tally:
        budget = self._round_budget(budget)
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
        tally = core.tally_of(answers, problems, [describe_client(client) for client in self._clients], budget)
        for index in targets:
            if tally.answers[index] == core.SILENT:
                self._suspects.add(index)
            else:
                self._suspects.discard(index)
        return tally

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        retries = core.Retries(self, deadline)
        while True:
            args, budget = self._acquire_try(deadline)
            tally = await self._on_all("acquire", args, budget=budget)
            if self._acquire_answered(tally):
                return True
            yes = tally.said_yes()
            if yes:  # no partial hold is left behind (a silent node's late SET expires with the ttl)
                release_budget = core.round_budget(self._node_timeout, deadline, time.monotonic())
                await self._on_all("release", args[:1], only=yes, budget=release_budget)
            pause = retries.pause(tally)
            if pause is None:
                return False
            await asyncio.sleep(pause)

    async def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        return self._release_answered(await self._on_all("release", [value]), valid)

    async def _extend_impl(self, ttl: float) -> bool:
        started = time.monotonic()
        tally = await self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))])
        return self._extend_answered(tally, ttl, started)

    async def _owned_impl(self) -> bool:
        return self._still_valid() and self._owned_answered(await self._on_all("owned", [self._value]))

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
        for own, client in zip(self._own, self._clients):
            if own is not client:
                await own.aclose()
        if self._owns_clients:
            for client in self._clients:
                close = getattr(client, "aclose", None) or client.close
                await close()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _without_retry(client: Any) -> Any:
    """A client on the same node with the same settings, whose calls are one attempt each.

    A Redis Cluster client is used as it is: it must follow MOVED replies to the key's master,
    and the round's budget bounds whatever it retries.
    """
    import redis.asyncio as aredis

    if is_cluster(client):
        return client
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    own_pool = aredis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    return aredis.Redis(connection_pool=own_pool, retry=Retry(NoBackoff(), 0))
