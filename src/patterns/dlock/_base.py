"""What every distributed lock shares: argument checks, acquire/release bookkeeping, ``with``,
the lost event and the renewal thread.  A backend supplies the server side in a few methods.

Ownership belongs to the lock *object*, not to a thread: the thread that acquired may hand the
object (and its ``token``) to another thread, which may extend or release it.  One object stands
for one would-be owner; contending threads or processes each use their own object with the same
name.  Calling ``acquire()`` on an object that already holds the lock raises LockError (these locks
are not reentrant), and two concurrent ``acquire()`` calls on one object are refused the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ._errors import LockConnectionError, LockError, LockLost, LockNotAcquired, LockNotOwned, QuorumNotReached
from ._validate import check_bool, check_callback, check_name, check_timeout, check_ttl

__all__ = ["DistributedLock"]

_log = logging.getLogger("patterns.dlock")


def _add_note(exc: BaseException, note: str) -> None:
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)


class DistributedLock:
    """The common face of RedisLock, Redlock, EtcdLock and MemoryLock.

    - ``acquire(blocking=True, timeout=None) -> bool``; ``release()``; ``extend(ttl=None)``;
      ``locked()`` (does anyone hold it); ``owned()`` (does this object hold it, asking the server);
    - ``token``: the fencing token of the current hold (strictly increasing per lock name across
      owners), None while not held and always None for Redlock;
    - ``lost``: a threading.Event set when this object finds its hold gone; ``on_lost(lock)`` is
      called once at that moment, in the thread that found it: the renewal thread when
      ``auto_renew`` found it, and for a lock of an EtcdSession the session's keep-alive thread
      or a thread whose acquire found the session's lease gone;
    - ``with lock:`` acquires within the lock's ``timeout`` or raises LockNotAcquired, and releases;
    - ``auto_renew=True``: a background thread extends the hold every ttl/3 while it is held.  It
      keeps a client-side validity deadline (when the last successful renewal, or the acquire, was
      *sent*, plus the ttl, less 1% + 2 ms of drift) and bounds every renewal call by the validity
      left, so a hold is marked lost (never silently) when an extension finds it gone or when that
      deadline passes, before the server can let anyone else take it.  The thread is joined by
      ``release()``/``close()``.
    """

    def __init__(
        self,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[DistributedLock], object] | None = None,
    ) -> None:
        self._name = check_name(name)
        self._ttl = check_ttl(ttl)
        self._timeout = check_timeout(timeout)
        self._auto_renew = check_bool(auto_renew, "auto_renew")
        self.on_lost = check_callback(on_lost, "on_lost")
        self.lost = threading.Event()
        self._state = threading.Lock()  # guards _held, _busy, _token, _renewer
        self._held = False
        self._busy = False
        self._token: int | None = None
        self._lost_reason: str | None = None
        self._renewer: threading.Thread | None = None
        self._renew_stop = threading.Event()
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
        """How long ``with lock:`` waits (None: until acquired)."""
        return self._timeout

    @property
    def auto_renew(self) -> bool:
        """Whether a background thread extends the hold at ttl/3."""
        return self._auto_renew

    @property
    def token(self) -> int | None:
        """Fencing token of the current hold: pass it to the resource you write (see FencedResource).

        It belongs to this lock object, not to a thread.  None while not held (and for Redlock).
        """
        return self._token

    def __repr__(self) -> str:
        state = "held" if self._held else "free"
        if self.lost.is_set():
            state = "lost"
        return f"<{type(self).__name__} {self._name!r} ttl={self._ttl:g} {state} token={self._token}>"

    # -- backend hooks ----------------------------------------------------------------------

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        """Try until ``deadline`` (monotonic; None: forever; one try when not blocking).

        On success store the hold (and ``self._token``) and return True.
        """
        raise NotImplementedError

    def _release_impl(self) -> bool:
        """Give the hold up on the server; False when the server says it was not ours any more."""
        raise NotImplementedError

    def _extend_impl(self, ttl: float) -> bool:
        """Make the hold last ``ttl`` more seconds; False when it is no longer ours."""
        raise NotImplementedError

    def _renew_impl(self, ttl: float, budget: float) -> bool:
        """One renewal for the renewal thread, answered within ``budget`` seconds (the validity
        left): a call that cannot answer in time raises LockConnectionError."""
        return self._extend_impl(ttl)

    def _owned_impl(self) -> bool:
        raise NotImplementedError

    def _locked_impl(self) -> bool:
        raise NotImplementedError

    def _forget_impl(self) -> None:
        """Drop what is left of a lost hold (best effort, errors ignored)."""

    def _after_acquire(self) -> None:
        """Called once the hold counts as held, for a last check that may mark it lost."""

    def _close_impl(self) -> None:
        """Close what the lock owns (clients it created, executors)."""

    # -- the face ---------------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True when held.  ``timeout`` (seconds, None: no limit) bounds the wait.

        ``blocking=False`` tries once and returns at once.  Raises LockConnectionError when a server
        does not answer (never True without the server's answer).
        """
        check_bool(blocking, "blocking")
        timeout = check_timeout(timeout)
        if not blocking and timeout:
            raise ValueError("timeout must be None or 0 when blocking is False")
        with self._state:
            if self._closed:
                raise LockError(f"{self._name!r}: this lock is closed (make a new lock object)")
            if self._busy:
                raise LockError(f"{self._name!r}: another acquire() on this lock object is in progress")
            if self._held and not self.lost.is_set():
                raise LockError(f"{self._name!r} is already held by this lock object (not reentrant)")
            self._busy = True
            stale = self._held
        try:
            if stale:  # a lost hold was never released: tidy up before trying again
                self._stop_renewer()
                self._forget_impl()
                with self._state:
                    self._held = False
                    self._token = None
            deadline = None
            began = time.monotonic()
            if not blocking:
                deadline = began
            elif timeout is not None:
                deadline = began + timeout
            self._hold_sent = None
            got = self._acquire_impl(blocking, deadline)
            if got:
                if self._hold_sent is None:
                    self._hold_sent = began
                with self._state:
                    self._held = True
                    self._lost_reason = None
                    if self.lost.is_set():
                        self.lost.clear()
                    if self._auto_renew:
                        self._start_renewer()
                self._after_acquire()
            return got
        finally:
            with self._state:
                self._busy = False

    def release(self) -> None:
        """Give the lock up.  LockNotOwned if this object does not hold it; LockLost if it held it
        and the server says it expired or was taken (another owner's lock is never touched)."""
        with self._state:
            if not self._held:
                raise LockNotOwned(f"{self._name!r} is not held by this lock object")
        self._stop_renewer()
        try:
            ok = self._release_impl()
        finally:
            with self._state:
                self._held = False
                self._token = None
        if not ok:
            self._mark_lost("the server no longer had it at release (expired or taken)")
            raise LockLost(f"{self._name!r} was lost before release: {self._lost_reason}")

    def extend(self, ttl: float | None = None) -> None:
        """Make the current hold last ``ttl`` seconds from now (default: the lock's ttl).

        It sets the remaining time, it does not add to it.  LockNotOwned if not held; LockLost if
        the hold is gone on the server.
        """
        new_ttl = self._ttl if ttl is None else check_ttl(ttl)
        self._check_held()
        if not self._extend_impl(new_ttl):
            self._mark_lost("the server no longer had it at extend (expired or taken)")
            raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")

    def owned(self) -> bool:
        """True if this object holds the lock, confirmed by the server; False if it never acquired
        (or released).  LockLost if it held the lock and the server says it is gone."""
        with self._state:
            if not self._held:
                return False
        self._check_held()
        if not self._owned_impl():
            self._mark_lost("the server no longer has it (expired or taken)")
            raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")
        return True

    def locked(self) -> bool:
        """True if anyone holds the lock now, according to the server."""
        return self._locked_impl()

    def close(self) -> None:
        """Release the lock if held (a lost hold is forgotten quietly), stop the renewal thread
        and close what the lock created (the clients of ``lock_from_url``; a client you passed
        in stays open).  Afterwards ``acquire()`` raises LockError: make a new lock object."""
        try:
            with self._state:
                held, lost = self._held, self.lost.is_set()
            if held and lost:  # nothing of ours to release: drop what is left, best effort
                self._stop_renewer()
                try:
                    self._forget_impl()
                except LockError:
                    pass
                with self._state:
                    self._held, self._token = False, None
            elif held:
                try:
                    self.release()
                except LockNotOwned:
                    pass
        finally:
            self._closed = True
            self._stop_renewer()
            self._close_impl()

    def __enter__(self) -> DistributedLock:
        if not self.acquire(timeout=self._timeout):
            raise LockNotAcquired(f"{self._name!r} was not acquired within {self._timeout} s")
        if self.lost.is_set():  # lost before the body could start: the body must not run
            try:
                self.release()
            except (LockNotOwned, LockConnectionError):
                pass
            raise LockLost(f"{self._name!r} was lost as it was acquired: {self._lost_reason}")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.release()
        except (LockNotOwned, LockConnectionError) as problem:
            if exc is None:
                raise
            _add_note(exc, f"and releasing the lock failed: {type(problem).__name__}: {problem}")

    # -- shared machinery -------------------------------------------------------------------

    def _check_held(self) -> None:
        with self._state:
            if not self._held:
                raise LockNotOwned(f"{self._name!r} is not held by this lock object")
            if self.lost.is_set():
                raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")

    def _mark_lost(self, reason: str) -> None:
        with self._state:
            if self.lost.is_set():
                return
            self._lost_reason = reason
            self.lost.set()
        callback = self.on_lost
        if callback is not None:
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - a callback must not kill the renewal thread
                _log.exception("on_lost callback of %r raised", self)

    def _start_renewer(self) -> None:  # called with self._state held
        self._renew_stop = threading.Event()
        thread = threading.Thread(
            target=self._renew_loop,
            args=(self._renew_stop,),
            name=f"ftsync-dlock-renew:{self._name}",
            daemon=True,
        )
        self._renewer = thread
        thread.start()

    def _stop_renewer(self) -> None:
        if self._renewer is None:  # only acquire() starts one, and it is not running now
            return
        with self._state:
            thread, self._renewer = self._renewer, None
            self._renew_stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _renew_loop(self, stop: threading.Event) -> None:
        ttl = self._ttl
        schedule = RenewalSchedule(ttl, self._hold_sent or time.monotonic())
        while not stop.wait(schedule.wait(time.monotonic())):
            sent = time.monotonic()
            budget = schedule.budget(sent)
            if budget is None:
                self._mark_lost(schedule.expired_reason())
                return
            try:
                ok = self._renew_impl(ttl, budget)
            except (LockConnectionError, QuorumNotReached) as exc:  # no answer: retry while valid
                schedule.failed(exc)
                if schedule.budget(time.monotonic()) is None:
                    self._mark_lost(schedule.expired_reason())
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - never die silently
                self._mark_lost(f"renewal raised {type(exc).__name__}: {exc}")
                return
            if stop.is_set():
                return
            if not ok:
                self._mark_lost("a renewal found it gone (expired or taken)")
                return
            schedule.renewed(sent)


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

    def failed(self, exc: BaseException) -> None:
        self._last_error = exc
        self._next = time.monotonic() + min(self.interval, max(0.01, self.ttl / 10))

    def expired_reason(self) -> str:
        detail = f": {self._last_error}" if self._last_error is not None else ""
        return f"no renewal was confirmed within the hold's validity (ttl {self.ttl:g} s){detail}"
