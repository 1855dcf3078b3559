"""A lock object's bookkeeping, without I/O: shared by DistributedLock (threads) and
AsyncDistributedLock (asyncio), so that both check, count and report alike.

``Hold`` keeps the arguments (checked), the properties, the repr, the acquire preconditions and
their messages, the deadline arithmetic and the held/lost/token state transitions.  A driver
adds what waits: its ``lost`` event, its guard (the sync one holds a ``threading.Lock`` around
each transition), the server calls, and the renewal thread or task that follows
``RenewalSchedule``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ._errors import LockConnectionError, LockError, LockLost, LockNotAcquired, LockNotOwned, QuorumNotReached
from ._validate import check_bool, check_callback, check_name, check_timeout, check_ttl

__all__ = ["Hold", "RenewalSchedule", "add_note", "deadline_of"]

#: what the renewal thread/task retries while the hold is still valid: "no answer", not "gone"
RETRYABLE = (LockConnectionError, QuorumNotReached)

# why a hold counts as lost (``lock.lost`` is set with one of these as its reason)
GONE_AT_RELEASE = "the server no longer had it at release (expired or taken)"
GONE_AT_EXTEND = "the server no longer had it at extend (expired or taken)"
GONE_AT_OWNED = "the server no longer has it (expired or taken)"
GONE_AT_RENEWAL = "a renewal found it gone (expired or taken)"


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` where Python has it (3.11+)."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)


def deadline_of(blocking: bool, timeout: float | None, began: float) -> float | None:
    """The monotonic deadline of an acquire that began at ``began`` (None: no limit)."""
    if not blocking:
        return began
    return None if timeout is None else began + timeout


def renewal_crashed(exc: BaseException) -> str:
    """The lost reason when a renewal raised something unexpected (never die silently)."""
    return f"renewal raised {type(exc).__name__}: {exc}"


class Hold:
    """The state of one lock object's hold.  Subclasses set ``lost`` (an Event with ``is_set``,
    ``set`` and ``clear``: ``threading.Event`` or ``asyncio.Event``)."""

    lost: Any

    def __init__(
        self,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[..., object] | None = None,
    ) -> None:
        self._name = check_name(name)
        self._ttl = check_ttl(ttl)
        self._timeout = check_timeout(timeout)
        self._auto_renew = check_bool(auto_renew, "auto_renew")
        self.on_lost = check_callback(on_lost, "on_lost")
        self._held = False
        self._busy = False  # an acquire() is running
        self._token: int | None = None
        self._lost_reason: str | None = None
        self._hold_sent: float | None = None  # when the request that got the hold was sent
        self._closed = False

    # -- properties -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The lock's name, shared by every process that locks the same thing."""
        return self._name

    @property
    def ttl(self) -> float:
        """Seconds a hold lasts without extension."""
        return self._ttl

    @property
    def timeout(self) -> float | None:
        """How long ``with lock:`` (``async with``) waits (None: until acquired)."""
        return self._timeout

    @property
    def auto_renew(self) -> bool:
        """Whether a background thread (task) extends the hold at ttl/3."""
        return self._auto_renew

    @property
    def token(self) -> int | None:
        """Fencing token of the current hold: pass it to the resource you write (see FencedResource).

        It belongs to this lock object, not to a thread or task.  None while not held (and for
        Redlock).
        """
        return self._token

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else ("held" if self._held else "free")
        return f"<{type(self).__name__} {self._name!r} ttl={self._ttl:g} {state} token={self._token}>"

    # -- transitions (the sync driver calls them with its guard held) -----------------------

    @staticmethod
    def _acquire_args(blocking: bool, timeout: float | None) -> float | None:
        check_bool(blocking, "blocking")
        timeout = check_timeout(timeout)
        if not blocking and timeout:
            raise ValueError("timeout must be None or 0 when blocking is False")
        return timeout

    def _begin_acquire(self) -> bool:
        """Refuse an acquire that cannot start, else mark one running; True when a lost hold is
        left to tidy up first."""
        if self._closed:
            raise LockError(f"{self._name!r}: this lock is closed (make a new lock object)")
        if self._busy:
            raise LockError(f"{self._name!r}: another acquire() on this lock object is in progress")
        if self._held and not self.lost.is_set():
            raise LockError(f"{self._name!r} is already held by this lock object (not reentrant)")
        self._busy = True
        return self._held

    def _took_hold(self, began: float) -> None:
        """The backend got the hold (and set ``_token``); a new hold is not lost."""
        if self._hold_sent is None:
            self._hold_sent = began
        self._held = True
        self._lost_reason = None
        if self.lost.is_set():
            self.lost.clear()

    def _let_go(self) -> None:
        self._held = False
        self._token = None

    def _check_held(self) -> None:
        if not self._held:
            raise self._not_owned()
        if self.lost.is_set():
            raise self._lost_error()

    def _not_owned(self) -> LockNotOwned:
        return LockNotOwned(f"{self._name!r} is not held by this lock object")

    def _lost_error(self, when: str = "") -> LockLost:
        """LockLost naming the reason; ``when``: "before release", "as it was acquired"."""
        return LockLost(f"{self._name!r} was lost{' ' + when if when else ''}: {self._lost_reason}")

    def _not_acquired(self) -> LockNotAcquired:
        return LockNotAcquired(f"{self._name!r} was not acquired within {self._timeout} s")

    def _note_lost(self, reason: str) -> bool:
        """Record the loss; False when it was already recorded (``on_lost`` runs once)."""
        if self.lost.is_set():
            return False
        self._lost_reason = reason
        self.lost.set()
        return True


class RenewalSchedule:
    """The renewal thread's (and task's) clock, without I/O: when to renew, how long a renewal may
    take, when the hold must count as lost.

    The hold is valid until ``sent + ttl - drift`` of the last request that got or renewed it
    (the server starts its ttl no earlier than it received that request).  A renewal is due every
    ttl/3, sooner after a failure (a retry every ttl/10); a call may take the validity left less
    a few milliseconds, so it returns before the deadline and the loss is reported before the
    server lets another owner in.
    """

    MARGIN = 0.005  # for the thread to wake and mark the loss

    def __init__(self, ttl: float, sent: float) -> None:
        self.ttl = ttl
        self.interval = ttl / 3
        self.valid_until = sent + ttl - (ttl * 0.01 + 0.002)
        self._next = sent + self.interval
        self._last_error: BaseException | None = None

    def wait(self, now: float) -> float:
        """Seconds until the next renewal (or until the hold runs out, whichever is first)."""
        return max(0.0, min(self._next, self.valid_until - self.MARGIN) - now)

    def budget(self, now: float) -> float | None:
        """How long a renewal sent now may wait for its answer; None when the hold has run out."""
        left = self.valid_until - self.MARGIN - now
        return left if left > 0.001 else None

    def renewed(self, sent: float) -> None:
        self.valid_until = sent + self.ttl - (self.ttl * 0.01 + 0.002)
        self._next = sent + self.interval
        self._last_error = None

    def answered(self, sent: float, ok: bool) -> str | None:
        """A renewal sent at ``sent`` was answered: None (renewed), or why the hold is lost."""
        if not ok:
            return GONE_AT_RENEWAL
        self.renewed(sent)
        return None

    def failed(self, exc: BaseException) -> str | None:
        """A renewal got no answer (``exc``, one of RETRYABLE): None to retry soon, or why the
        hold is lost when its validity has run out meanwhile."""
        self._last_error = exc
        self._next = time.monotonic() + min(self.interval, max(0.01, self.ttl / 10))
        return self.expired_reason() if self.budget(time.monotonic()) is None else None

    def expired_reason(self) -> str:
        detail = f": {self._last_error}" if self._last_error is not None else ""
        return f"no renewal was confirmed within the hold's validity (ttl {self.ttl:g} s){detail}"
