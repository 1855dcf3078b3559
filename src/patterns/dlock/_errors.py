"""The exceptions of patterns.dlock: one base class, one class per way a lock call can fail."""

from __future__ import annotations

__all__ = [
    "LockConnectionError",
    "LockError",
    "LockLost",
    "LockNotAcquired",
    "LockNotOwned",
    "QuorumNotReached",
    "StaleToken",
]


class LockError(Exception):
    """Base class of every error a distributed lock raises (bad arguments raise ValueError/TypeError)."""


class LockNotAcquired(LockError, TimeoutError):
    """``with lock:`` did not get the lock within the lock's ``timeout``; the body did not run."""


class LockNotOwned(LockError):
    """The call needs the lock held by this lock object, and it is not (never acquired, or released)."""


class LockLost(LockNotOwned):
    """This lock object held the lock, and the server says it no longer does.

    The ttl ran out (a pause, a missed renewal, an expired etcd lease) or the key was deleted by
    someone else; another owner may hold the lock now.  A subclass of :class:`LockNotOwned`, so a late
    ``release()`` or ``extend()`` can be caught as either.
    """


class QuorumNotReached(LockError):
    """Redlock: fewer than ``N // 2 + 1`` nodes answered in time, so nothing can be decided."""


class LockConnectionError(LockError, ConnectionError):
    """A server did not answer (refused, reset, timed out); the message names the server.

    A lock call that raises it has not succeeded: an acquire that raises does not hold the lock.
    """


class StaleToken(LockError):
    """A fenced write carried a fencing token lower than one the resource has already seen."""


for _cls in (LockError, LockNotAcquired, LockNotOwned, LockLost, QuorumNotReached, LockConnectionError, StaleToken):
    _cls.__module__ = "patterns.dlock"  # where users import them from (shown in tracebacks)
del _cls
