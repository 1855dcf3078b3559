"""Redlock's protocol, without I/O: the quorum, validity and drift arithmetic, when a round may
stop waiting, what a round's answers mean, and the pause between rounds.  Redlock (threads and
sockets) and AsyncRedlock (asyncio) are thin drivers over it, so they decide alike.

A *round* sends one command to every node and counts the answers.  Each node's answer is
``YES`` (the script returned true), ``NO`` (it answered false or with an error reply) or
``SILENT`` (no answer within the round's budget: frozen, partitioned, refusing connections).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ._errors import QuorumNotReached

__all__ = [
    "NO", "SILENT", "YES", "RedlockHold", "Retries", "Tally", "check_options", "drift", "may_stop",
    "pause_before_retry", "quorum_of", "tally_of", "validity_left",
]

YES, NO, SILENT = "yes", "no", "silent"

ACQUIRE = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0"
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
OWNED = "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end return 0"
SCRIPTS = {"acquire": ACQUIRE, "release": RELEASE, "extend": EXTEND, "owned": OWNED}


def quorum_of(nodes: int) -> int:
    return nodes // 2 + 1


def drift(ttl: float) -> float:
    """The clock drift allowed for a hold of ``ttl`` s: 1% of it plus 2 ms."""
    return ttl * 0.01 + 0.002


def default_node_timeout(ttl: float) -> float:
    return min(0.2, max(0.05, ttl / 10))


def validity_left(ttl: float, started: float, now: float) -> float:
    """Seconds a hold whose round started at ``started`` is still valid for at ``now``."""
    return ttl - (now - started) - drift(ttl)


def may_stop(answers: list[str | None], suspects: set[int], quorum: int) -> bool:
    """Whether a round may stop waiting before its deadline.

    ``answers[i]`` is YES/NO/SILENT, or None while node ``i`` has not answered yet.  The round
    waits for every node not suspected (one that answered last time), and for suspects only
    while their answer could still change the outcome: once a quorum said yes, or once too few
    are left to make one, a silent suspect cannot starve the healthy nodes.
    """
    waiting = [i for i, answer in enumerate(answers) if answer is None]
    if not waiting:
        return True
    if any(i not in suspects for i in waiting):
        return False
    yes = sum(1 for answer in answers if answer == YES)
    return yes >= quorum or yes + len(waiting) < quorum


@dataclass
class Tally:
    """The answers of one round, and what they mean."""

    nodes: int
    answers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def yes(self) -> int:
        return sum(1 for answer in self.answers if answer == YES)

    @property
    def answered(self) -> int:
        return sum(1 for answer in self.answers if answer != SILENT)

    @property
    def quorum(self) -> int:
        return quorum_of(self.nodes)

    @property
    def agreed(self) -> bool:
        return self.yes >= self.quorum

    def said_yes(self) -> list[int]:
        return [i for i, answer in enumerate(self.answers) if answer == YES]

    def check_answered(self, name: str) -> None:
        """QuorumNotReached when too few nodes answered to tell anything (do not guess)."""
        if self.answered < self.quorum:
            raise QuorumNotReached(
                f"{name!r}: {self.answered} of {self.nodes} nodes answered, {self.quorum} needed: "
                + "; ".join(self.problems)
            )


def pause_before_retry(tally: Tally, name: str, retry_delay: float, unreachable: int, unreachable_tries: int,
                       deadline: float | None) -> float | None:
    """After a round that did not get the lock: seconds to pause (jittered) before the next one,
    or None when acquire should give up and return False.

    ``unreachable`` counts the rounds in a row, this one included, in which fewer than a quorum
    answered; giving up for that reason raises QuorumNotReached naming the failures.
    """
    now = time.monotonic()
    out_of_time = deadline is not None and now >= deadline
    if out_of_time or (deadline is None and unreachable >= unreachable_tries):
        tally.check_answered(name)
        return None
    pause = random.uniform(retry_delay / 4, retry_delay)
    if deadline is not None:
        pause = min(pause, max(0.0, deadline - now))
    return pause


def round_budget(node_timeout: float, deadline: float | None, now: float) -> float:
    """How long a round may wait: ``node_timeout``, and never past ``deadline + node_timeout``
    (so ``acquire(timeout=t)`` returns by ``t + node_timeout``)."""
    if deadline is None:
        return node_timeout
    return max(0.001, min(node_timeout, deadline + node_timeout - now))


def check_options(clients: Any, kind: str, *, need_socket_timeout: bool) -> list[Any]:
    """The clients as a list, each a redis-py client of one distinct node (ValueError/TypeError
    otherwise).  ``need_socket_timeout``: the threaded driver needs one per client, so that a
    frozen node cannot stall a call; the asyncio one cancels what outlives a round."""
    from ._redis_core import connection_settings, describe_client, is_cluster

    nodes: list[Any] = list(clients) if not isinstance(clients, (str, bytes)) else []
    if not nodes:
        raise ValueError(f"clients must be a non-empty sequence of {kind}, got none")
    for client in nodes:
        if not hasattr(client, "register_script") or not (hasattr(client, "connection_pool") or is_cluster(client)):
            raise TypeError(f"clients must be {kind} objects, got {type(client).__name__}")
        if need_socket_timeout and not connection_settings(client).get("socket_timeout"):
            raise ValueError(
                f"clients must have a socket_timeout ({describe_client(client)} has none): "
                "redis.Redis(..., socket_timeout=0.2), so a frozen node cannot stall a call"
            )
    check_distinct(nodes)
    return nodes


def node_identity(client: Any) -> tuple[Any, ...]:
    """What makes two clients the same node (host, port or socket path, db; a cluster's masters)."""
    from ._redis_core import is_cluster

    if is_cluster(client):  # its masters; an asyncio client knows only its startup nodes at first
        manager = client.nodes_manager
        nodes = manager.get_nodes_by_server_type("primary") or list(manager.startup_nodes.values())
        return ("cluster", frozenset((str(n.host).lower(), int(n.port)) for n in nodes))
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return (id(client),)
    where = kwargs.get("path") or (str(kwargs.get("host", "localhost")).lower(), int(kwargs.get("port", 6379)))
    return (where, int(kwargs.get("db", 0) or 0))


def check_distinct(clients: list[Any]) -> None:
    from ._redis_core import describe_client

    seen: dict[tuple[Any, ...], int] = {}
    for index, client in enumerate(clients):
        key = node_identity(client)
        if key in seen:
            raise ValueError(
                f"clients must be distinct nodes: clients[{seen[key]}] and clients[{index}] are both "
                f"{describe_client(client)} (one node counted twice would fake a quorum)"
            )
        seen[key] = index


def tally_of(answers: list[str | None], problems: list[str], labels: list[str], budget: float) -> Tally:
    """A finished round's Tally: a node that has not answered counts as SILENT, and each silent
    node's problem is named (``labels[i]``: ``redis at host:port``)."""
    tally = Tally(len(answers))
    silent = f"no answer within {budget:g} s"
    for index, answer in enumerate(answers):
        tally.answers.append(answer or SILENT)
        if tally.answers[-1] == SILENT:
            tally.problems.append(f"{labels[index]}: {problems[index] or silent}")
    return tally


class RedlockHold:
    """A Redlock hold's bookkeeping, without I/O: the options, the random value and the client
    side validity, and what each round's Tally means for them.  Redlock and AsyncRedlock add the
    rounds."""

    _name: str
    _ttl: float
    _token: int | None
    _hold_sent: float | None

    def _set_options(self, count: int, node_timeout: float | None, retry_delay: float, unreachable_tries: int,
                     owns_clients: bool) -> None:
        from ._validate import check_ttl

        self._node_timeout = default_node_timeout(self._ttl) if node_timeout is None else check_ttl(
            node_timeout, param="node_timeout")
        self._retry_delay = check_ttl(retry_delay, param="retry_delay")
        if isinstance(unreachable_tries, bool) or not isinstance(unreachable_tries, int) or unreachable_tries < 1:
            raise ValueError(f"unreachable_tries must be an int >= 1, got {unreachable_tries!r}")
        self._unreachable_tries = unreachable_tries
        self._owns_clients = owns_clients
        self._quorum = quorum_of(count)
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

    def _round_budget(self, budget: float | None) -> float:
        return self._node_timeout if budget is None else max(0.001, min(self._node_timeout, budget))

    def _acquire_try(self, deadline: float | None) -> tuple[list[Any], float]:
        """The arguments and budget of the next acquire round, which starts now (a fresh value)."""
        self._trying = secrets.token_hex(16)
        self._started = self._hold_sent = time.monotonic()
        ttl_ms = max(1, int(round(self._ttl * 1000)))
        return [self._trying, ttl_ms], round_budget(self._node_timeout, deadline, self._started)

    def _acquire_answered(self, tally: Tally) -> bool:
        """True when the round got the lock with validity left (the hold is then stored)."""
        if tally.agreed and validity_left(self._ttl, self._started, time.monotonic()) > 0:
            self._value = self._trying
            self._valid_until = self._started + self._ttl - drift(self._ttl)
            self._token = None
            return True
        return False

    def _release_answered(self, tally: Tally, valid: bool) -> bool:
        if not tally.agreed:
            tally.check_answered(self._name)
        return valid and tally.agreed

    def _extend_answered(self, tally: Tally, ttl: float, started: float) -> bool:
        if time.monotonic() >= self._valid_until:  # it had expired before the quorum renewed it
            return False
        if tally.agreed and validity_left(ttl, started, time.monotonic()) > 0:
            self._valid_until = started + ttl - drift(ttl)
            return True
        tally.check_answered(self._name)
        return False

    def _still_valid(self) -> bool:
        return self._value is not None and time.monotonic() < self._valid_until

    def _owned_answered(self, tally: Tally) -> bool:
        valid = time.monotonic() < self._valid_until
        if not tally.agreed and valid:
            tally.check_answered(self._name)
        return tally.agreed and time.monotonic() < self._valid_until


class Retries:
    """The rounds of one acquire: when to pause, when to give up (see pause_before_retry)."""

    def __init__(self, hold: RedlockHold, deadline: float | None) -> None:
        self._hold, self._deadline, self._unreachable = hold, deadline, 0

    def pause(self, tally: Tally) -> float | None:
        """After a round that did not get the lock: seconds to pause, or None to return False
        (QuorumNotReached when too few nodes answered for too long)."""
        hold = self._hold
        self._unreachable = self._unreachable + 1 if tally.answered < hold._quorum else 0
        return pause_before_retry(tally, hold._name, hold._retry_delay, self._unreachable,
                                  hold._unreachable_tries, self._deadline)
