"""Future: a ``concurrent.futures.Future`` that costs a third as much to make and settle.

The stdlib Future builds a ``threading.Condition`` (an RLock plus a Python object) for every
instance, about 1-2 us, more than a trivial job itself.  This subclass keeps the same
attributes that ``concurrent.futures.wait``, ``as_completed`` and ``asyncio.wrap_future``
rely on (``_condition`` to lock and notify, ``_state``, ``_waiters``), but the lock is a bare
re-entrant lock (``wait(return_when=FIRST_EXCEPTION)`` calls ``exception()`` while it holds
every future's ``_condition``), ``_condition`` is a view made only when something outside
asks for it, and a thread blocked in ``result()`` sleeps on a lock of its own, made only
when it really has to wait.  Being a real subclass, it passes every
``isinstance`` check (``loop.run_in_executor`` asserts one).
"""

from __future__ import annotations

import time
from _thread import RLock, allocate_lock
from concurrent.futures import CancelledError, InvalidStateError
from concurrent.futures import Future as _StdFuture
from concurrent.futures import TimeoutError as _FuturesTimeout
from concurrent.futures._base import _STATE_TO_DESCRIPTION_MAP as _DESCRIPTION
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    LOGGER,
    PENDING,
    RUNNING,
)
from typing import Any, Callable, TypeVar

from ._waiting import wait_until

__all__ = ["Future"]

_T = TypeVar("_T")

_monotonic = time.monotonic


class Future(_StdFuture[_T]):
    """The result of a job submitted to a :class:`~patterns.WorkerPool`.

    Same API and semantics as :class:`concurrent.futures.Future`; usable with
    ``concurrent.futures.wait``, ``as_completed`` and ``asyncio.wrap_future``.
    """

    # Defaults live on the class so that __init__ writes only what each instance must own.
    _result: Any = None
    _exception: BaseException | None = None
    _sleepers: list | None = None  # locks of threads blocked in result()/exception()
    _callbacks: list | None = None
    _waiter_list: list | None = None  # made on demand: see _waiters

    def __init__(self) -> None:
        self._lock = RLock()  # guards everything below; wait() locks it, then calls exception()
        self._state = PENDING

    @property
    def _condition(self) -> _ConditionView:  # type: ignore[override]
        """The stdlib's lock-and-condition attribute, for code that uses it (``wait()``,
        ``as_completed()``, tests that settle a future by hand and ``notify_all()``)."""
        return _ConditionView(self)

    @property
    def _waiters(self) -> list:
        """Where concurrent.futures.wait()/as_completed() install their waiters (under the lock)."""
        waiters = self._waiter_list
        if waiters is None:
            waiters = self._waiter_list = []
        return waiters

    # -- the stdlib's attribute for callbacks, kept for code that peeks at it
    @property
    def _done_callbacks(self) -> list:
        callbacks = self._callbacks
        return [] if callbacks is None else callbacks

    def __repr__(self) -> str:
        with self._lock:
            state = self._state
            if state == FINISHED:
                if self._exception is not None:
                    return f"<{type(self).__name__} at {id(self):#x} state=finished raised {type(self._exception).__name__}>"
                return f"<{type(self).__name__} at {id(self):#x} state=finished returned {type(self._result).__name__}>"
        return f"<{type(self).__name__} at {id(self):#x} state={_DESCRIPTION[state]}>"

    # -- the consumer's side

    def cancel(self) -> bool:
        """Cancel if not yet running or done; True if the future is (now) cancelled."""
        with self._lock:
            state = self._state
            if state == RUNNING or state == FINISHED:
                return False
            if state == CANCELLED or state == CANCELLED_AND_NOTIFIED:
                return True
            self._state = CANCELLED
            sleepers, callbacks = self._take_sleepers_and_callbacks()
        self._wake(sleepers)
        self._run_callbacks(callbacks)
        return True

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        state = self._state
        return state == CANCELLED or state == CANCELLED_AND_NOTIFIED

    def running(self) -> bool:
        """True while a worker runs the job."""
        return self._state == RUNNING

    def done(self) -> bool:
        """True once the future finished or was cancelled."""
        state = self._state
        return state == FINISHED or state == CANCELLED or state == CANCELLED_AND_NOTIFIED

    def result(self, timeout: float | None = None) -> _T:
        """The job's return value; re-raises its exception; CancelledError; TimeoutError."""
        with self._lock:  # the common case: already finished
            if self._state == FINISHED and self._exception is None:
                return self._result
        try:
            if self._wait_done(timeout):
                if self._exception is not None:
                    raise self._exception
                return self._result
        finally:
            self = None  # noqa: PLW0642 - do not keep the future alive in a raised traceback
        raise _FuturesTimeout()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The job's exception or None; CancelledError; TimeoutError."""
        if self._wait_done(timeout):
            return self._exception
        raise _FuturesTimeout()

    def add_done_callback(self, fn: Callable[[Future[_T]], object]) -> None:
        """Call ``fn(future)`` when done (at once, in this thread, if it already is)."""
        with self._lock:
            state = self._state
            if not (state == FINISHED or state == CANCELLED or state == CANCELLED_AND_NOTIFIED):
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            LOGGER.exception("exception calling callback for %r", self)

    def _wait_done(self, timeout: float | None, ctx: Any = None) -> bool:
        """Block until done; True if finished, CancelledError if cancelled, False on timeout.

        With ``ctx`` (a patterns Context), its cancellation also ends the wait (False).
        """
        with self._lock:
            state = self._state
            if state == FINISHED:
                return True
            if state == CANCELLED or state == CANCELLED_AND_NOTIFIED:
                raise CancelledError()
            if timeout is not None and timeout <= 0:
                return False
            sleeper = allocate_lock()
            sleeper.acquire()
            if self._sleepers is None:
                self._sleepers = []
            self._sleepers.append(sleeper)
        registered = ctx is not None and ctx._cancellable
        if registered and not ctx._add_waker(sleeper, _releaser(sleeper)):
            registered = False
            _release_quietly(sleeper)  # already cancelled: do not sleep
        try:
            wait_until(_acquirer(sleeper), timeout, interruptible=True)
        finally:
            if registered:
                ctx._remove_waker(sleeper)
            with self._lock:
                if self._sleepers is not None and sleeper in self._sleepers:
                    self._sleepers.remove(sleeper)
                state = self._state
        if state == FINISHED:
            return True
        if state == CANCELLED or state == CANCELLED_AND_NOTIFIED:
            raise CancelledError()
        return False

    # -- the executor's side

    def set_running_or_notify_cancel(self) -> bool:
        """Mark running and return True, or return False if cancelled (and tell wait())."""
        with self._lock:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                return True
            if state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                if self._waiter_list:
                    for waiter in self._waiter_list:
                        waiter.add_cancelled(self)
                return False
        raise RuntimeError(f"Future in unexpected state: {state}")

    def set_result(self, result: _T) -> None:
        """Finish with ``result`` (the executor's side); InvalidStateError if already done."""
        self._finish(result, False)

    def set_exception(self, exception: BaseException | None) -> None:
        """Finish with ``exception`` (the executor's side); InvalidStateError if already done."""
        self._finish(exception, True)

    def _finish(self, value: Any, failed: bool) -> None:
        """Store the outcome, then tell wait() waiters, sleepers and callbacks."""
        sleepers = self._complete(value, failed)
        if sleepers is not None:
            for sleeper in sleepers:
                _release_quietly(sleeper)

    def _complete(self, value: Any, failed: bool) -> list | None:
        """Store the outcome and tell wait() waiters; the sleepers to wake, or None.

        The caller wakes the returned sleepers after letting go of its own references, so that
        a woken ``result()`` caller holds the last ones (WorkerPool's worker loop does).  When
        there are callbacks, the sleepers are woken here, then the callbacks run, and None is
        returned (the hot path: the detaching is inlined rather than a call).
        """
        with self._lock:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED):
                raise InvalidStateError(f"{self._state}: {self!r}")
            if failed:
                self._exception = value
            else:
                self._result = value
            value = None
            self._state = FINISHED
            if self._waiter_list:
                for waiter in self._waiter_list:
                    if failed:
                        waiter.add_exception(self)
                    else:
                        waiter.add_result(self)
            sleepers, callbacks = self._sleepers, self._callbacks
            if sleepers is not None:
                self._sleepers = None
            if callbacks is not None:
                self._callbacks = None
        if callbacks is None:
            return sleepers
        if sleepers:
            for sleeper in sleepers:
                _release_quietly(sleeper)
        self._run_callbacks(callbacks)
        return None

    def _take_sleepers_and_callbacks(self) -> tuple[list | None, list | None]:
        """Detach who must hear of the completion (called holding the lock, once)."""
        sleepers, callbacks = self._sleepers, self._callbacks
        if sleepers is not None:
            self._sleepers = None
        if callbacks is not None:
            self._callbacks = None
        return sleepers, callbacks

    @staticmethod
    def _wake(sleepers: list | None) -> None:
        if sleepers:
            for sleeper in sleepers:
                _release_quietly(sleeper)

    def _run_callbacks(self, callbacks: list | None) -> None:
        if callbacks:
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    LOGGER.exception("exception calling callback for %r", self)

    def _invoke_callbacks(self) -> None:
        """The stdlib's name: run (and forget) the registered callbacks."""
        with self._lock:
            callbacks = self._callbacks
            self._callbacks = None
        self._run_callbacks(callbacks)


class _ConditionView:
    """A Future's ``_condition`` as ``threading.Condition`` offers it: its lock, and a notify
    that wakes the threads blocked in ``result()``/``exception()``.

    Made on each access (not stored), so a future refers to no object that refers back to it.
    """

    __slots__ = ("_future",)

    def __init__(self, future: Future[Any]) -> None:
        self._future = future

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._future._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._future._lock.release()

    def __enter__(self) -> bool:
        return self._future._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._future._lock.release()

    def notify_all(self) -> None:
        """Wake every thread waiting for the future (hold the lock, as with a Condition)."""
        self.notify(-1)

    def notify(self, n: int = 1) -> None:
        future = self._future
        sleepers = future._sleepers
        if not sleepers:
            return
        woken = sleepers if n < 0 else sleepers[:n]
        future._sleepers = None if n < 0 or n >= len(sleepers) else sleepers[n:]
        for sleeper in woken:
            _release_quietly(sleeper)

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified (or ``timeout``), take the lock again."""
        future = self._future
        sleeper = allocate_lock()
        sleeper.acquire()
        if future._sleepers is None:
            future._sleepers = []
        future._sleepers.append(sleeper)
        saved = future._lock._release_save()  # type: ignore[attr-defined]
        try:
            return sleeper.acquire(True, -1 if timeout is None else timeout)
        finally:
            future._lock._acquire_restore(saved)  # type: ignore[attr-defined]
            if future._sleepers is not None and sleeper in future._sleepers:
                future._sleepers.remove(sleeper)


def _acquirer(sleeper: Any) -> Callable[[float | None], bool]:
    """``sleeper.acquire`` for :func:`patterns._waiting.wait_until` (None: no timeout)."""
    return lambda seconds: sleeper.acquire(True, -1 if seconds is None else seconds)


def _release_quietly(sleeper: Any) -> None:
    """Release a sleeper that a context's waker may have released already."""
    try:
        sleeper.release()
    except RuntimeError:
        pass


def _releaser(sleeper: Any) -> Callable[[], None]:
    return lambda: _release_quietly(sleeper)
