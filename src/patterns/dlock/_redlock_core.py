"""Redlock's protocol, without I/O: the quorum, validity and drift arithmetic, when a round may
stop waiting, what a round's answers mean, and the pause between rounds.  Redlock (threads and
sockets) and AsyncRedlock (asyncio) are thin drivers over it, so they decide alike.

A *round* sends one command to every node and counts the answers.  Each node's answer is
``YES`` (the script returned true), ``NO`` (it answered false or with an error reply) or
``SILENT`` (no answer within the round's budget: frozen, partitioned, refusing connections).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from ._errors import QuorumNotReached

__all__ = ["NO", "SILENT", "YES", "Tally", "drift", "may_stop", "pause_before_retry", "quorum_of", "validity_left"]

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
