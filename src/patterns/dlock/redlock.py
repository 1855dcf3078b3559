"""Redlock: one lock over N independent Redis nodes, held when a majority agrees.

The algorithm as the Redis documentation gives it: take ``SET name value NX PX ttl`` on every node
in parallel (one executor per Redlock object, reused by every call), each node bounded by
``node_timeout`` so a frozen node cannot stall the caller; the lock is held when at least
``N // 2 + 1`` nodes said yes and the validity left, ``ttl - elapsed - drift`` (drift = 1% of ttl
+ 2 ms, all on the monotonic clock), is positive.  Otherwise the value is deleted from every node
(compare-and-delete, so no partial hold is left) and, when blocking, tried again after a random
delay.  ``extend()`` succeeds on a quorum; ``owned()`` asks for a quorum and for validity left.

**No fencing token**: ``token`` is always None.  Nodes are independent, so there is no counter
that all owners share, and a holder that pauses past its ttl cannot be stopped by the resource.
Use Redlock for efficiency (avoid doing work twice); when correctness depends on the lock, use
EtcdLock (or RedisLock's token) and a resource that checks fencing tokens.

``acquire()`` raises QuorumNotReached when fewer than a quorum of nodes *answer* (as opposed to
answering "held by someone else", which is an ordinary False or wait): at once for a non-blocking
call, at the deadline for a timed one, and after ``unreachable_tries`` attempts in a row for an
untimed one, so a dead majority is reported instead of waited on forever.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence

from ._base import DistributedLock
from ._errors import LockError, QuorumNotReached
from ._validate import check_ttl
from .redis import _redis_errors, describe_client

__all__ = ["Redlock"]

_ACQUIRE = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_OWNED = "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end return 0"

_ANSWERED_NO = object()


class Redlock(DistributedLock):
    """A lock over independent Redis nodes (see DistributedLock for the methods; ``token`` is None).

    ``clients``: one ``redis.Redis`` per node (give them a ``socket_timeout``: a call stuck on a
    frozen node occupies an executor thread until its socket times out); ``node_timeout``: how
    long one round waits for the nodes (default: ttl/10, at most 0.2 s); ``retry_delay``: the
    most a blocking acquire sleeps between rounds (random, default 0.1 s).  ``close()`` shuts the
    executor down (and closes the clients when the lock created them).
    """

    _kind = "redlock"

    def __init__(
        self,
        clients: Sequence[Any],
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[DistributedLock], object] | None = None,
        node_timeout: float | None = None,
        retry_delay: float = 0.1,
        unreachable_tries: int = 3,
        owns_clients: bool = False,
    ) -> None:
        clients = list(clients) if not isinstance(clients, (str, bytes)) else []
        if not clients:
            raise ValueError("clients must be a non-empty sequence of redis.Redis, got none")
        for client in clients:
            if not hasattr(client, "register_script"):
                raise TypeError(f"clients must be redis.Redis objects, got {type(client).__name__}")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._node_timeout = (
            min(0.2, max(0.01, self._ttl / 10)) if node_timeout is None
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
            {
                kind: client.register_script(source)
                for kind, source in (
                    ("acquire", _ACQUIRE), ("release", _RELEASE), ("extend", _EXTEND), ("owned", _OWNED)
                )
            }
            for client in clients
        ]
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._closed = False
        self._value: str | None = None
        self._valid_until = 0.0

    @property
    def quorum(self) -> int:
        return self._quorum

    @property
    def validity(self) -> float:
        """Seconds the current hold is still valid for (0 when not held)."""
        return max(0.0, self._valid_until - time.monotonic()) if self._value is not None else 0.0

    def _drift(self, ttl: float) -> float:
        return ttl * 0.01 + 0.002

    # -- fan-out ----------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise LockError(f"{self._name!r}: this Redlock is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=4 * len(self._clients), thread_name_prefix=f"ftsync-redlock:{self._name}"
                )
            return self._executor

    def _on_all(self, script: str, args: list[Any], keys: list[str] | None = None) -> tuple[int, int, list[str]]:
        """Run one script on every node in parallel within node_timeout.

        Returns (nodes that returned a true result, nodes that answered at all, problems).
        """
        keys = keys or [self._name]

        def run(index: int) -> Any:
            return self._scripts[index][script](keys=keys, args=args)

        pool = self._pool()
        futures = {pool.submit(run, index): index for index in range(len(self._clients))}
        done, not_done = wait(futures, timeout=self._node_timeout)
        yes = answered = 0
        problems = []
        for future in futures:
            client = self._clients[futures[future]]
            if future in not_done:
                future.cancel()
                problems.append(f"{describe_client(client)}: no answer within {self._node_timeout:g} s")
                continue
            exc = future.exception()
            if exc is None:
                answered += 1
                yes += bool(future.result())
            elif isinstance(exc, _redis_errors()):
                problems.append(f"{describe_client(client)}: {exc}")
            else:
                problems.append(f"{describe_client(client)}: {type(exc).__name__}: {exc}")
        return yes, answered, problems

    # -- backend hooks ----------------------------------------------------------------------

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        ttl_ms = max(1, int(round(self._ttl * 1000)))
        unreachable = 0
        while True:
            value = secrets.token_hex(16)
            started = time.monotonic()
            yes, answered, problems = self._on_all("acquire", [value, ttl_ms])
            validity = self._ttl - (time.monotonic() - started) - self._drift(self._ttl)
            if yes >= self._quorum and validity > 0:
                self._value = value
                self._valid_until = started + self._ttl - self._drift(self._ttl)
                self._token = None
                return True
            self._on_all("release", [value])  # no partial hold is left behind
            unreachable = unreachable + 1 if answered < self._quorum else 0
            now = time.monotonic()
            out_of_time = deadline is not None and now >= deadline
            if out_of_time or (deadline is None and unreachable >= self._unreachable_tries):
                if answered < self._quorum:
                    raise QuorumNotReached(
                        f"{self._name!r}: {answered} of {len(self._clients)} nodes answered, "
                        f"{self._quorum} needed: " + "; ".join(problems)
                    )
                return False
            pause = random.uniform(self._retry_delay / 4, self._retry_delay)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - now))
            time.sleep(pause)

    def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        yes, _answered, _problems = self._on_all("release", [value])
        return valid and yes >= self._quorum

    def _extend_impl(self, ttl: float) -> bool:
        started = time.monotonic()
        yes, _answered, _problems = self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))])
        if time.monotonic() >= self._valid_until:  # it had expired before the quorum renewed it
            return False
        validity = ttl - (time.monotonic() - started) - self._drift(ttl)
        if yes >= self._quorum and validity > 0:
            self._valid_until = started + ttl - self._drift(ttl)
            return True
        return False

    def _owned_impl(self) -> bool:
        if self._value is None or time.monotonic() >= self._valid_until:
            return False
        yes, _answered, _problems = self._on_all("owned", [self._value])
        return yes >= self._quorum and time.monotonic() < self._valid_until

    def _locked_impl(self) -> bool:
        def exists(index: int) -> int:
            return int(self._clients[index].exists(self._name))

        pool = self._pool()
        futures = [pool.submit(exists, index) for index in range(len(self._clients))]
        done, _ = wait(futures, timeout=self._node_timeout)
        held = sum(f.result() for f in done if f.exception() is None)
        return held >= self._quorum

    def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            try:
                self._on_all("release", [value])
            except LockError:
                pass

    def _close_impl(self) -> None:
        with self._executor_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if self._owns_clients:
            for client in self._clients:
                client.close()
