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

from ._errors import LockConnectionError, LockError, LockNotOwned
from ._hold import GONE_AT_EXTEND, GONE_AT_OWNED, GONE_AT_RELEASE, RETRYABLE, Hold, RenewalSchedule
from ._hold import add_note, deadline_of, renewal_crashed
from ._validate import check_ttl

__all__ = ["DistributedLock"]

_log = logging.getLogger("patterns.dlock")


class DistributedLock(Hold):
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

    # the shared properties, bound here too so that the class documents them as its own
    name, ttl, timeout, auto_renew, token = Hold.name, Hold.ttl, Hold.timeout, Hold.auto_renew, Hold.token

    def __init__(self, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[[DistributedLock], object] | None = None) -> None:
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self.lost = threading.Event()
        self._state = threading.Lock()  # guards _held, _busy, _token, _renewer
        self._renewer: threading.Thread | None = None
        self._renew_stop = threading.Event()

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
        timeout = self._acquire_args(blocking, timeout)
        with self._state:
            stale = self._begin_acquire()
        try:
            if stale:  # a lost hold was never released: tidy up before trying again
                self._stop_renewer()
                self._forget_impl()
                with self._state:
                    self._let_go()
            began = time.monotonic()
            self._hold_sent = None
            got = self._acquire_impl(blocking, deadline_of(blocking, timeout, began))
            if got:
                with self._state:
                    self._took_hold(began)
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
                raise self._not_owned()
        self._stop_renewer()
        try:
            ok = self._release_impl()
        finally:
            with self._state:
                self._let_go()
        if not ok:
            self._mark_lost(GONE_AT_RELEASE)
            raise self._lost_error("before release")

    def extend(self, ttl: float | None = None) -> None:
        """Make the current hold last ``ttl`` seconds from now (default: the lock's ttl).

        It sets the remaining time, it does not add to it.  LockNotOwned if not held; LockLost if
        the hold is gone on the server.
        """
        new_ttl = self._ttl if ttl is None else check_ttl(ttl)
        self._check_held()
        if not self._extend_impl(new_ttl):
            self._mark_lost(GONE_AT_EXTEND)
            raise self._lost_error()

    def owned(self) -> bool:
        """True if this object holds the lock, confirmed by the server; False if it never acquired
        (or released).  LockLost if it held the lock and the server says it is gone."""
        with self._state:
            if not self._held:
                return False
        self._check_held()
        if not self._owned_impl():
            self._mark_lost(GONE_AT_OWNED)
            raise self._lost_error()
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
                    self._let_go()
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
            raise self._not_acquired()
        if self.lost.is_set():  # lost before the body could start: the body must not run
            try:
                self.release()
            except (LockNotOwned, LockConnectionError):
                pass
            raise self._lost_error("as it was acquired")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.release()
        except (LockNotOwned, LockConnectionError) as problem:
            if exc is None:
                raise
            add_note(exc, f"and releasing the lock failed: {type(problem).__name__}: {problem}")

    # -- shared machinery -------------------------------------------------------------------

    def _check_held(self) -> None:
        with self._state:
            Hold._check_held(self)

    def _mark_lost(self, reason: str) -> None:
        with self._state:
            if not self._note_lost(reason):
                return
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
                lost: str | None = schedule.expired_reason()
            else:
                try:
                    ok = self._renew_impl(ttl, budget)
                except RETRYABLE as exc:  # no answer: retry while the hold is valid
                    lost = schedule.failed(exc)
                except Exception as exc:  # noqa: BLE001 - never die silently
                    lost = renewal_crashed(exc)
                else:
                    if stop.is_set():
                        return
                    lost = schedule.answered(sent, ok)
            if lost is not None:
                self._mark_lost(lost)
                return
