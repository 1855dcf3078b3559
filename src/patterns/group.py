"""Group: run tasks in threads, wait for all of them, and stop the rest on the first error.

Go's ``errgroup`` with Python manners::

    with Group(limit=8) as g:            # waits for every task on exit
        for url in urls:
            g.go(fetch, g.ctx, url)      # blocks while 8 tasks are running

The first task to fail cancels ``g.ctx`` with its exception as the cause (read it with
:func:`patterns.cause`), so tasks that watch ``ctx.done()`` stop early; ``wait()`` then raises
that exception.  ``g.ctx`` is also cancelled once ``wait()`` has joined every task.

Errors, precisely:

- ``wait()`` raises the *first* exception by time of failure; every other one is attached to it
  as a note (``add_note`` on 3.11+, a ``__notes__`` list on 3.10), and all of them, in order of
  failure, are in :attr:`Group.errors`.  A plain exception rather than an ExceptionGroup keeps
  ``except ValueError:`` working, as in Go where ``Wait`` returns the first error.
- ``KeyboardInterrupt`` and ``SystemExit`` raised in a task are never swallowed: ``wait()``
  raises the first of them in preference to any ordinary error.
- In ``with Group() as g:``, an exception from the body cancels ``g.ctx`` (that exception is
  the cause), the tasks are still waited for, and the body's exception propagates with the
  tasks' errors attached as notes (a task's KeyboardInterrupt/SystemExit wins over it).

Tasks run in daemon threads: ``wait()`` (or the ``with`` block) is the join point.  ``wait()``
and a blocked ``go()`` stay interruptible by Ctrl-C; an interrupted ``wait()`` cancels
``g.ctx`` with the KeyboardInterrupt as cause and re-raises it at once, and a later ``wait()``
joins the tasks.  (The group's own waiting uses only plain locks, never ``threading.Condition``,
whose Python-level ``__enter__`` can be interrupted holding its lock.)

Once ``wait()`` has returned (or raised the tasks' errors), the group is closed: ``go()`` and
``try_go()`` raise RuntimeError, because ``g.ctx`` is already cancelled and a task started now
would begin cancelled.  Make a new Group instead.  Until then tasks may start more tasks.
"""

from __future__ import annotations

import threading
import time
from _thread import allocate_lock as _allocate_lock
from typing import Any, Callable

from ._validate import check_timeout
from ._waiting import SLICE, join_thread
from .context import Context, background, with_cancel_cause

__all__ = ["Group"]

_FATAL = (KeyboardInterrupt, SystemExit)
_PENDING, _RUNNING, _ABANDONED = 0, 1, -1  # a task's start state


def _check_limit(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be a positive int or None, got {limit!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return limit


def _add_note(exc: BaseException, note: str) -> None:
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)
    else:  # Python 3.10: same attribute, not printed by the traceback module
        notes = getattr(exc, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            exc.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(note)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Group:
    """Tasks in threads that succeed or fail together (Go's ``errgroup.Group``).

    ``ctx``: parent context (default :func:`background`); ``group.ctx`` is its child.
    ``limit``: at most this many tasks run at once; ``go()`` blocks for a free slot.
    """

    def __init__(self, ctx: Context | None = None, limit: int | None = None) -> None:
        if ctx is not None and not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a Context or None, got {type(ctx).__name__}")
        self._limit = _check_limit(limit)
        self.ctx, self._cancel = with_cancel_cause(background() if ctx is None else ctx)
        self._lock = threading.Lock()  # guards everything below
        self._waiters: list[Any] = []  # locks of threads blocked until a task finishes
        self._running = 0  # tasks started and not finished
        self._threads: list[threading.Thread] = []
        self._prune_at = 64
        self._errors: list[BaseException] = []
        self._fatal: BaseException | None = None  # first KeyboardInterrupt / SystemExit
        self._closed = False
        self._result: BaseException | None = None  # what wait() raises once closed
        self._started = 0

    @property
    def limit(self) -> int | None:
        """The most tasks that run at once (None: no limit)."""
        return self._limit

    @property
    def running(self) -> int:
        """How many tasks have started and not yet finished."""
        with self._lock:
            return self._running

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """Every exception the tasks raised so far, in order of failure."""
        with self._lock:
            return tuple(self._errors)

    def go(self, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in a new thread.

        With a ``limit``, blocks until a running task finishes when ``limit`` are running (Go's
        ``SetLimit``); there is no timeout, as in Go: use :meth:`try_go` not to block.  A task
        that calls ``go()`` while every slot is taken by such tasks deadlocks, as in Go.
        """
        self._check_fn(fn)

        def attempt() -> bool:
            self._check_open()
            if self._limit is not None and self._running >= self._limit:
                return False
            self._start_locked(fn, args, kwargs)
            return True

        self._block_until(attempt, None)

    def try_go(self, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> bool:
        """Start ``fn(*args, **kwargs)`` only if fewer than ``limit`` tasks run; say whether it did."""
        self._check_fn(fn)
        with self._lock:
            self._check_open()
            if self._limit is not None and self._running >= self._limit:
                return False
            self._start_locked(fn, args, kwargs)
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every task; raise the first exception (see the module doc); cancel ``ctx``.

        With ``timeout``, raise TimeoutError if tasks are still running after that many
        seconds; nothing is cancelled then, and the group stays open.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._join(deadline, timeout)
        except KeyboardInterrupt as exc:
            self._cancel(exc)
            raise
        result = self._close()
        if result is not None:
            raise result

    def __enter__(self) -> Group:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            self.wait()
            return False
        self._cancel(exc)
        try:
            self._join(None, None)
        except KeyboardInterrupt as interrupt:
            self._cancel(interrupt)
            raise
        with self._lock:
            errors = list(self._errors)
            fatal = self._fatal
        self._close()
        if fatal is not None and not isinstance(exc, _FATAL):
            raise fatal  # never swallowed; the body's exception is its __context__
        for other in errors:
            _add_note(exc, f"a Group task also failed: {_describe(other)}")
        return False

    def __repr__(self) -> str:
        with self._lock:
            state = "closed" if self._closed else f"running={self._running}"
            return f"<Group {state} limit={self._limit} errors={len(self._errors)}>"

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _check_fn(fn: object) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Group is closed: wait() has returned and ctx is cancelled; make a new Group")

    def _block_until(self, attempt: Callable[[], bool], deadline: float | None) -> bool:
        """Call ``attempt()`` under the lock until it returns True (then True) or ``deadline`` passes.

        Between attempts, sleep on a private lock that a finishing task releases, in slices
        short enough for Ctrl-C to be seen promptly on every platform and build.
        """
        while True:
            waiter = _allocate_lock()
            waiter.acquire()
            with self._lock:
                if attempt():
                    return True
                self._waiters.append(waiter)
            try:
                wait = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
                if wait <= 0:
                    return False
                waiter.acquire(True, wait)
            finally:
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def _start_locked(self, fn: Callable[..., object], args: tuple, kwargs: dict) -> None:
        self._started += 1
        name = f"ftsync-group-{getattr(fn, '__name__', 'task')}-{self._started}"
        state = [_PENDING]
        thread = threading.Thread(target=self._run, args=(fn, args, kwargs, state), name=name, daemon=True)
        threads = self._threads
        if len(threads) >= self._prune_at:  # forget finished threads of a long-lived group
            self._threads = threads = [t for t in threads if t.is_alive()]
            self._prune_at = max(64, 2 * len(threads))
        threads.append(thread)  # recorded before it starts: nothing can make wait() miss it
        counted = False
        try:
            self._running += 1
            counted = True
            thread.start()
        except BaseException as exc:
            # Cannot start, or interrupted (Ctrl-C) inside start(): the thread cannot have
            # passed _run's locked check yet (we hold the lock), so abandoning it is exact.
            state[0] = _ABANDONED
            if counted:
                self._running -= 1
                self._wake_locked()
            interrupt = exc.__context__
            if isinstance(interrupt, KeyboardInterrupt) and not isinstance(exc, KeyboardInterrupt):
                # Ctrl-C inside Thread.start()'s Event.wait can surface as "RuntimeError: release
                # unlocked lock" (CPython gh-118433); the user pressed Ctrl-C: say so.
                raise interrupt from None
            raise

    def _wake_locked(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.release()

    def _run(self, fn: Callable[..., object], args: tuple, kwargs: dict, state: list[int]) -> None:
        with self._lock:
            if state[0] == _ABANDONED:
                return  # go() raised: fn must not run
            state[0] = _RUNNING
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by wait()
            with self._lock:
                self._errors.append(exc)
                first = len(self._errors) == 1
                if self._fatal is None and isinstance(exc, _FATAL):
                    self._fatal = exc
            if first:  # only the first failure cancels, so cause(ctx) is errors[0]
                self._cancel(exc)
        finally:
            with self._lock:
                self._running -= 1
                self._wake_locked()

    def _join(self, deadline: float | None, timeout: float | None) -> None:
        """Wait until no task runs, then join their threads (they are finishing)."""
        if not self._block_until(lambda: self._running == 0, deadline):
            raise TimeoutError(
                f"Group.wait() timed out after {timeout:g} s with {self.running} task(s) still running")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # an interrupted join leaves the list intact for the next wait()
            join_thread(thread, None)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def _close(self) -> BaseException | None:
        """Close the group (once), cancel ctx, and decide what wait() raises from now on."""
        with self._lock:
            if not self._closed:
                self._closed = True
                errors = self._errors
                result = self._fatal if self._fatal is not None else (errors[0] if errors else None)
                if result is not None:
                    for other in errors:
                        if other is not result:
                            _add_note(result, f"a Group task also failed: {_describe(other)}")
                self._result = result
            result = self._result
        self._cancel(None)
        return result
