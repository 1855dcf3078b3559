"""Redlock: one lock over N independent Redis nodes, held when a majority agrees.

The algorithm as the Redis documentation gives it: take ``SET name value NX PX ttl`` on every node
in parallel, bounded by ``node_timeout`` so a frozen node cannot stall the caller.  "In parallel"
is pipelined non-blocking I/O, no threads: a round writes its command to one connection of every
node, then waits for the replies together until the round's deadline (a node that has not
answered by then is counted as failed and its connection dropped, so a late reply can never be
read by a later command).  Every client needs a ``socket_timeout`` (it bounds connecting and the
rare script reload); the lock is held when at least
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
untimed one, so a dead majority is reported instead of waited on forever.  ``extend()`` and
``owned()`` raise it too when too few nodes answer to tell whether the hold is still ours (they
do not guess "lost"); the renewal thread of ``auto_renew`` retries such rounds until the hold's
validity runs out, and only then marks it lost.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import selectors
import time
from typing import Any, Callable, Sequence

from ._base import DistributedLock
from ._errors import LockError, QuorumNotReached
from ._validate import check_ttl
from .redis import describe_client

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

    ``clients``: one ``redis.Redis`` per node, each with a ``socket_timeout`` (ValueError
    otherwise: without one, connecting to a frozen node could block forever); ``node_timeout``:
    how long one round waits for the nodes (default: ttl/10, at most 0.2 s); ``retry_delay``: the
    most a blocking acquire sleeps between rounds (random, default 0.1 s).  ``close()`` closes
    the clients when the lock created them (``lock_from_url``).
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
            if not client.connection_pool.connection_kwargs.get("socket_timeout"):
                raise ValueError(
                    f"clients must have a socket_timeout ({describe_client(client)} has none): "
                    "redis.Redis(..., socket_timeout=0.2), so a frozen node cannot stall a call"
                )
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
        self._scripts = {
            kind: (hashlib.sha1(source.encode()).hexdigest(), source)
            for kind, source in (("acquire", _ACQUIRE), ("release", _RELEASE), ("extend", _EXTEND), ("owned", _OWNED))
        }
        self._closed = False
        self._suspects: set[int] = set()  # nodes that failed their last round: contacted last
        self._value: str | None = None
        self._valid_until = 0.0

    @property
    def quorum(self) -> int:
        """How many nodes must agree: N // 2 + 1."""
        return self._quorum

    @property
    def validity(self) -> float:
        """Seconds the current hold is still valid for (0 when not held)."""
        return max(0.0, self._valid_until - time.monotonic()) if self._value is not None else 0.0

    def _drift(self, ttl: float) -> float:
        return ttl * 0.01 + 0.002

    # -- fan-out ----------------------------------------------------------------------------

    def _on_all(self, script: str, args: list[Any], keys: list[str] | None = None) -> tuple[int, int, list[str]]:
        """Run one script on every node at once, within node_timeout.

        Returns (nodes that returned a true result, nodes that answered at all, problems).
        """
        sha, source = self._scripts[script]
        keys = keys or [self._name]
        results = self._round(("EVALSHA", sha, len(keys), *keys, *args), ("EVAL", source, len(keys), *keys, *args))
        yes = answered = 0
        problems = []
        for client, (ok, value) in zip(self._clients, results):
            if ok:
                answered += 1
                yes += bool(value)
            else:
                problems.append(f"{describe_client(client)}: {value}")
        return yes, answered, problems

    def _round(self, command: tuple[Any, ...], fallback: tuple[Any, ...] | None = None) -> list[tuple[bool, Any]]:
        """Send ``command`` to every node, then collect the replies until the round's deadline.

        One (answered, reply or problem) per node; a node that answered with an error counts as
        answered with a no.  ``fallback`` is sent instead when a node answers NOSCRIPT (its
        script cache was flushed, or it restarted).
        """
        import redis.exceptions as rex

        failures = (rex.ConnectionError, rex.TimeoutError, OSError)
        if self._closed:
            raise LockError(f"{self._name!r}: this Redlock is closed")
        deadline = time.monotonic() + self._node_timeout
        silent = f"no answer within {self._node_timeout:g} s"
        results: list[tuple[bool, Any]] = [(False, silent)] * len(self._clients)
        conns: dict[int, Any] = {}
        selector = selectors.DefaultSelector()
        suspects = self._suspects
        order = [i for i in range(len(self._clients)) if i not in suspects] + sorted(suspects)
        try:
            for index in order:  # a frozen node may block connecting: contact it last
                client = self._clients[index]
                try:
                    conns[index] = conn = _get_connection(client.connection_pool)
                    conn.send_command(*command)
                    selector.register(conn._sock, selectors.EVENT_READ, index)
                except failures as exc:
                    results[index] = (False, str(exc) or type(exc).__name__)
            waiting = len(selector.get_map())
            while waiting:
                # past the deadline, one last look collects replies that have already arrived
                remaining = max(0.0, deadline - time.monotonic())
                ready = selector.select(remaining)
                if not ready and remaining == 0:
                    break
                for key, _events in ready:
                    index = key.data
                    conn = conns[index]
                    selector.unregister(key.fileobj)
                    waiting -= 1
                    try:
                        try:
                            results[index] = (True, conn.read_response())
                        except rex.NoScriptError:
                            if fallback is None:
                                raise
                            conn.send_command(*fallback)
                            results[index] = (True, conn.read_response())
                    except rex.ResponseError:
                        results[index] = (True, 0)
                    except failures as exc:
                        results[index] = (False, str(exc) or type(exc).__name__)
        finally:
            selector.close()
            for index, conn in conns.items():
                if not results[index][0]:
                    conn.disconnect()  # a late reply must never be read by a later command
                self._clients[index].connection_pool.release(conn)
        self._suspects = {i for i, (answered, _) in enumerate(results) if not answered}
        return results

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
            pause = _pause_before_retry(self, answered, problems, unreachable, deadline)
            if pause is None:
                return False
            time.sleep(pause)

    def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        yes, _answered, _problems = self._on_all("release", [value])
        return valid and yes >= self._quorum

    def _extend_impl(self, ttl: float) -> bool:
        started = time.monotonic()
        yes, answered, problems = self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))])
        if time.monotonic() >= self._valid_until:  # it had expired before the quorum renewed it
            return False
        validity = ttl - (time.monotonic() - started) - self._drift(ttl)
        if yes >= self._quorum and validity > 0:
            self._valid_until = started + ttl - self._drift(ttl)
            return True
        self._check_answered(answered, problems)
        return False

    def _check_answered(self, answered: int, problems: list[str]) -> None:
        """Too few nodes answered to tell whether the hold is still ours: say so, do not guess
        (the renewal thread retries until the hold's validity runs out)."""
        if answered < self._quorum:
            raise QuorumNotReached(
                f"{self._name!r}: {answered} of {len(self._clients)} nodes answered, "
                f"{self._quorum} needed: " + "; ".join(problems)
            )

    def _owned_impl(self) -> bool:
        if self._value is None or time.monotonic() >= self._valid_until:
            return False
        yes, answered, problems = self._on_all("owned", [self._value])
        if yes < self._quorum and time.monotonic() < self._valid_until:
            self._check_answered(answered, problems)
        return yes >= self._quorum and time.monotonic() < self._valid_until

    def _locked_impl(self) -> bool:
        results = self._round(("EXISTS", self._name))
        return sum(1 for ok, value in results if ok and value) >= self._quorum

    def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            try:
                self._on_all("release", [value])
            except LockError:
                pass

    def _close_impl(self) -> None:
        self._closed = True
        if self._owns_clients:
            for client in self._clients:
                client.close()


def _get_connection(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py 5.0 wants a command name
        return pool.get_connection("EVALSHA")


def _pause_before_retry(lock: Any, answered: int, problems: list[str], unreachable: int,
                        deadline: float | None) -> float | None:
    """After a round that did not get the lock (Redlock and AsyncRedlock): seconds to pause,
    jittered, before the next round; None when acquire should give up and return False.

    ``unreachable`` counts the rounds in a row, this one included, in which fewer than a quorum
    of nodes answered.  Giving up for that reason raises QuorumNotReached, naming the failures.
    """
    now = time.monotonic()
    out_of_time = deadline is not None and now >= deadline
    if out_of_time or (deadline is None and unreachable >= lock._unreachable_tries):
        lock._check_answered(answered, problems)
        return None
    pause = random.uniform(lock._retry_delay / 4, lock._retry_delay)
    if deadline is not None:
        pause = min(pause, max(0.0, deadline - now))
    return pause
