"""Context: cancellation, deadlines and request-scoped values, with Go's semantics.

A context tree carries "stop" from whoever decides (a caller, a deadline, a signal) to every
piece of work started on its behalf::

    ctx, cancel = with_timeout(background(), 5.0)
    with_cancel(ctx)                     # children are cancelled with their parent
    ctx.done().wait(1.0)                 # block until cancelled (or 1 s)
    ctx.raise_if_done()                  # raises a fresh copy of ctx.err() once cancelled

Rules (Go's): cancelling a parent cancels every descendant synchronously, never the reverse;
a child of a done parent is done from birth; a child's deadline is never later than its
parent's; ``err()`` never changes once set, and ``done()`` is set exactly when ``err()`` is not None;
the first cause wins; cancel functions are idempotent, thread-safe, and unlink the child from
its parent so short-lived children do not pile up.  Deadlines use the monotonic clock.

Every ``with_*`` function returns ``(ctx, cancel)``, which also works as a context manager
that cancels on exit: ``with with_timeout(parent, 5) as ctx: ...``.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import signal as _signal
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Tuple

from ._waiting import TIMEOUT_MAX, wait_until

__all__ = [
    "Canceled",
    "Context",
    "ContextError",
    "DeadlineExceeded",
    "Done",
    "SignalReceived",
    "after_func",
    "background",
    "cause",
    "signal_context",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
]

_monotonic = time.monotonic


class ContextError(Exception):
    """Base of the errors a context reports through ``err()``."""


class Canceled(ContextError):
    """The context was cancelled (Go's ``context.Canceled``)."""

    def __init__(self, message: str = "context canceled") -> None:
        super().__init__(message)


class DeadlineExceeded(ContextError, TimeoutError):
    """The context's deadline passed (Go's ``context.DeadlineExceeded``); also a TimeoutError."""

    def __init__(self, message: str = "context deadline exceeded") -> None:
        super().__init__(message)


class SignalReceived(Exception):
    """The cause of a ``signal_context`` cancelled by a signal: ``str()`` is "SIGTERM received"."""

    def __init__(self, signum: int) -> None:
        self.signal = _signal.Signals(signum)
        super().__init__(f"{self.signal.name} received")

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from the signal number (the default would pass the message as ``signum``), so
        # it survives pickling: a process pool, a multiprocessing queue
        return (type(self), (int(self.signal),))


class Done:
    """What ``ctx.done()`` returns: something to wait on until the context is cancelled."""

    __slots__ = ("_event", "_err")

    def __init__(self, event: threading.Event) -> None:
        self._event = event
        self._err: ContextError | None = None  # set just before the context's err() (see _cancel)

    def is_set(self) -> bool:
        """Whether the context is done."""
        return self._err is not None or self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the context is done or ``timeout`` seconds pass; return whether it is done.

        In the main thread the wait is cut into short slices, so that signal handlers (a
        ``signal_context`` among them) run promptly: on free-threaded 3.13 a signal does not
        always interrupt a lock wait.  Any timeout is accepted, also one beyond
        ``threading.TIMEOUT_MAX``.
        """
        if self._err is not None:
            return True
        return wait_until(self._event.wait, timeout, interruptible=True)

    def __bool__(self) -> bool:
        return self.is_set()

    def __repr__(self) -> str:
        return f"<Done {'set' if self.is_set() else 'pending'}>"


_NEVER = Done(threading.Event())  # shared by every context that can never be cancelled
_NO_KEY = object()


class Context:
    """A node of a context tree.  Make them with :func:`background` and the ``with_*`` functions."""

    __slots__ = ("__weakref__", "_parent", "_canceler")

    def __init__(self, parent: Context | None, canceler: _CancelContext | None) -> None:
        self._parent = parent
        self._canceler = canceler  # nearest cancellable node, this one included

    def done(self) -> Done:
        """A waitable set when this context is cancelled (never set for background contexts)."""
        c = self._canceler
        return _NEVER if c is None else c._done

    def err(self) -> ContextError | None:
        """None while active; then the ``Canceled`` or ``DeadlineExceeded`` that ended it, for good."""
        c = self._canceler
        return None if c is None else c._err

    def raise_if_done(self) -> None:
        """Raise ``err()`` if this context is done: a fresh instance of it for each raise.

        The copy has the same type and message, and :func:`cause` (when one was given) as its
        ``__cause__``.  Prefer it to ``raise ctx.err()`` where several threads may raise at
        once: a raise writes the exception's ``__traceback__``, and on a free-threaded build
        threads raising one shared instance race on it (and mix their tracebacks).
        """
        err = self._err_copy()
        if err is not None:
            raise err

    def _err_copy(self) -> ContextError | None:
        """None while active; then a fresh copy of ``err()`` (see :meth:`raise_if_done`)."""
        c = self._canceler
        return None if c is None or c._err is None else c._fresh_err()

    def _ended_with(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this context's error as raised: ``err()`` or a copy of it from
        :meth:`raise_if_done` (same type, and the context is done)."""
        err = self.err()
        return err is not None and (exc is err or type(exc) is type(err))

    def deadline(self) -> float | None:
        """When this context expires, on the ``time.monotonic()`` clock; None if never."""
        c = self._canceler
        return None if c is None else c._deadline

    def value(self, key: Any, default: Any = None) -> Any:
        """The value stored under ``key`` by the nearest :func:`with_value` ancestor, else ``default``."""
        node: Context | None = self
        while node is not None:
            if isinstance(node, _ValueContext) and node._key == key:
                return node._value
            node = node._parent
        return default

    async def wait_async(self) -> ContextError | None:
        """Wait in asyncio code until this context is done; return ``err()``.

        The event loop is woken from whichever thread cancels the context.  Cancelling the
        awaiting task stops the wait and unregisters it.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._cancellable:
            await future  # never done: wait until the task is cancelled
        token = object()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, future)

        if self._add_waker(token, wake):
            try:
                await future
            finally:
                self._remove_waker(token)
        return self.err()

    # -- the waker protocol of the blocking calls (internal to patterns) --------------------------

    @property
    def _cancellable(self) -> bool:
        """Whether anything can ever cancel this context (False under background/without_cancel)."""
        return self._canceler is not None

    def _add_waker(self, token: object, wake: Callable[[], None]) -> bool:
        """Have ``wake()`` called (in the cancelling thread) when this context is cancelled.

        False if it already is: nothing was registered, the caller acts now.  A context that
        can never be cancelled registers nothing and returns True (``wake`` never runs).
        """
        c = self._canceler
        return True if c is None else c._add_waker(token, wake)

    def _remove_waker(self, token: object) -> bool:
        """Unregister ``token``; True if its ``wake`` will never run (False: it ran or is running)."""
        c = self._canceler
        return True if c is None else c._remove_waker(token)

    def __repr__(self) -> str:
        state = "active" if self.err() is None else type(self.err()).__name__
        return f"<{type(self).__name__} {state}>"


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class _Background(Context):
    __slots__ = ()

    def __repr__(self) -> str:
        return "<background context>"


class _ValueContext(Context):
    __slots__ = ("_key", "_value")

    def __init__(self, parent: Context, key: Any, value: Any) -> None:
        super().__init__(parent, parent._canceler)
        self._key = key
        self._value = value


class _WithoutCancel(Context):
    """Keeps the parent's values, drops its cancellation and deadline."""

    __slots__ = ()

    def __init__(self, parent: Context) -> None:
        super().__init__(parent, None)


class _CancelContext(Context):
    """A cancellable node: the only kind that owns a done event, an error and children."""

    __slots__ = ("_lock", "_event", "_done", "_err", "_cause", "_children", "_wakers", "_deadline",
                 "_own_deadline", "_timer_entry", "_deadline_cause")

    def __init__(self, parent: Context, deadline: float | None = None, deadline_cause: BaseException | None = None):
        super().__init__(parent, None)
        self._canceler = self
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._done = Done(self._event)
        self._err: ContextError | None = None
        self._cause: BaseException | None = None
        self._children: dict[_CancelContext, None] | None = {}
        self._wakers: dict[object, Callable[[], None]] | None = {}
        parent_deadline = parent.deadline()
        self._own_deadline = deadline is not None and (parent_deadline is None or deadline < parent_deadline)
        if not self._own_deadline:
            deadline, deadline_cause = parent_deadline, None  # the parent expires first and decides
        self._deadline = deadline
        self._deadline_cause = deadline_cause
        self._timer_entry: list | None = None

    def _attach(self) -> None:
        """Link under the nearest cancellable ancestor, or be cancelled now if it is done."""
        parent = self._parent._canceler
        if parent is not None:
            with parent._lock:
                if parent._err is None:
                    parent._children[self] = None
                    parent = None  # linked
            if parent is not None:  # the parent was done first: so are we, with its error
                self._cancel(False, parent._err, parent._cause)
                return
        if self._own_deadline:
            with self._lock:  # a cancel now either comes first (no entry) or finds the entry
                if self._err is not None or self._deadline <= _monotonic():
                    due = self._err is None
                else:
                    self._timer_entry = _TIMER.schedule(self)
                    return
            if due:
                self._expire()

    def _cancel(self, remove_from_parent: bool, err: ContextError, cause: BaseException | None) -> bool:
        """Cancel this node and its subtree; return False if it was already cancelled."""
        with self._lock:
            if self._err is not None:
                return False  # the first cancel wins, cause included
            self._cause = err if cause is None else cause
            # Go's two rules, both ways: once done() reports set, err() is not None (err is
            # stored before the event wakes anyone), and once err() is not None, done()
            # reports set (Done's own copy is stored before err).
            self._done._err = err
            self._err = err
            self._event.set()
            children, self._children = self._children, None
            wakers, self._wakers = self._wakers, None
        # Every child and waker runs even if one of them raises; the first error is re-raised
        # at the end (a half-cancelled tree would break the rules above).
        first_error: BaseException | None = None
        for step in itertools.chain(
            (functools.partial(child._cancel, False, err, self._cause) for child in children),
            wakers.values(),
        ):
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first_error = first_error or exc
        if self._timer_entry is not None:
            _TIMER.discard(self._timer_entry)
        if remove_from_parent:
            parent = self._parent._canceler
            if parent is not None:
                with parent._lock:
                    if parent._children is not None:
                        parent._children.pop(self, None)
        if first_error is not None:
            raise first_error
        return True

    def _fresh_err(self) -> ContextError:
        """A new exception like ``_err`` (done contexts only), chained to the cause if one was given."""
        with self._lock:
            err, why = self._err, self._cause
        fresh = type(err)(*err.args)
        if why is not err:
            fresh.__cause__ = why
        return fresh

    def _expire(self) -> None:
        self._cancel(True, DeadlineExceeded(), self._deadline_cause)

    def _add_waker(self, token: object, wake: Callable[[], None]) -> bool:
        """Call ``wake()`` (in the cancelling thread) on cancel; False if already done."""
        with self._lock:
            if self._wakers is None:
                return False
            self._wakers[token] = wake
            return True

    def _remove_waker(self, token: object) -> bool:
        """Unregister; True if the waker was still registered (so it will never run)."""
        with self._lock:
            return self._wakers is not None and self._wakers.pop(token, None) is not None

    def _child_count(self) -> int:
        with self._lock:
            return 0 if self._children is None else len(self._children)


_BACKGROUND = _Background(None, None)


def background() -> Context:
    """The root context: never cancelled, no deadline, no values."""
    return _BACKGROUND


class _ContextScope(Tuple[Context, Callable[..., None]]):
    """``(ctx, cancel)`` that can also be used as ``with ... as ctx:``, cancelling on exit."""

    __slots__ = ()

    def __enter__(self) -> Context:
        return self[0]

    def __exit__(self, *exc_info: object) -> None:
        self[1]()


def _check_parent(parent: object) -> Context:
    if not isinstance(parent, Context):
        raise TypeError(f"parent must be a Context, got {type(parent).__name__}")
    return parent


def _check_cause(cause: object) -> BaseException | None:
    if cause is not None and not isinstance(cause, BaseException):
        raise TypeError(f"cause must be an exception or None, got {type(cause).__name__}")
    return cause


def with_cancel(parent: Context) -> _ContextScope:
    """A child that ``cancel()`` (idempotent, thread-safe) or the parent's cancellation ends."""
    ctx = _CancelContext(_check_parent(parent))
    ctx._attach()

    def cancel() -> None:
        ctx._cancel(True, Canceled(), None)

    return _ContextScope((ctx, cancel))


def with_cancel_cause(parent: Context) -> _ContextScope:
    """Like :func:`with_cancel`, but ``cancel(cause)`` records why; read it with :func:`cause`."""
    ctx = _CancelContext(_check_parent(parent))
    ctx._attach()

    def cancel(cause: BaseException | None = None) -> None:
        ctx._cancel(True, Canceled(), _check_cause(cause))

    return _ContextScope((ctx, cancel))


def with_deadline(parent: Context, deadline: float, cause: BaseException | None = None
                  ) -> _ContextScope:
    """A child that expires at ``deadline`` (``time.monotonic()`` seconds) with DeadlineExceeded.

    A deadline later than the parent's is lowered to the parent's; a past one expires at once.
    ``cause`` is what :func:`cause` reports when this deadline (not an ancestor's) expires.
    """
    _check_parent(parent)
    if not isinstance(deadline, (int, float)) or math.isnan(deadline):
        raise TypeError(f"deadline must be a number of monotonic seconds, got {deadline!r}")
    ctx = _CancelContext(parent, float(deadline), _check_cause(cause))
    ctx._attach()

    def cancel() -> None:
        ctx._cancel(True, Canceled(), None)

    return _ContextScope((ctx, cancel))


def _check_seconds(seconds: object) -> float:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or math.isnan(seconds):
        raise TypeError(f"seconds must be a number, got {seconds!r}")
    return float(seconds)


def with_timeout(parent: Context, seconds: float) -> _ContextScope:
    """``with_deadline(parent, time.monotonic() + seconds)``; zero or negative expires at once."""
    return with_deadline(parent, _monotonic() + _check_seconds(seconds))


def with_timeout_cause(parent: Context, seconds: float, cause: BaseException
                       ) -> _ContextScope:
    """:func:`with_timeout` whose expiry reports ``cause`` through :func:`cause`."""
    return with_deadline(parent, _monotonic() + _check_seconds(seconds), _check_cause(cause))


def with_value(parent: Context, key: Any, value: Any) -> Context:
    """A child carrying ``key -> value``; lookups walk up the tree and the nearest wins."""
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"key must be hashable, got {type(key).__name__}") from None
    return _ValueContext(_check_parent(parent), key, value)


def without_cancel(parent: Context) -> Context:
    """A child with the parent's values but none of its cancellation or deadline."""
    return _WithoutCancel(_check_parent(parent))


def cause(ctx: Context) -> BaseException | None:
    """Why ``ctx`` was cancelled: the cause given to a cancel function or timeout, else ``err()``."""
    c = _check_parent(ctx)._canceler
    if c is None:
        return None
    with c._lock:
        return c._cause if c._err is not None else None


def after_func(ctx: Context, fn: Callable[[], object]) -> Callable[[], bool]:
    """Run ``fn()`` in its own thread once ``ctx`` is done (at once if it already is).

    Returns ``stop()``: it unregisters ``fn`` and returns True only if that prevented the call.
    """
    _check_parent(ctx)
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not ctx._cancellable:  # never done: fn can never run; the first stop() reports preventing it
        first = threading.Lock()
        return lambda: first.acquire(blocking=False)
    token = object()

    def start() -> None:
        threading.Thread(target=fn, name="ftsync-after-func", daemon=True).start()

    if not ctx._add_waker(token, start):
        start()
        return lambda: False
    return lambda: ctx._remove_waker(token)


def signal_context(parent: Context, *signals: int) -> _ContextScope:
    """Go's ``signal.NotifyContext``: a child cancelled when one of ``signals`` arrives.

    Default signals: SIGINT and SIGTERM.  The cause is a :class:`SignalReceived` ("SIGTERM
    received").  Until ``stop()`` the handlers stay installed, so a repeated signal does not
    kill the process; ``stop()`` restores the previous handlers and cancels the context.
    Must be called from the main thread (Python delivers signals there).
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal_context() must be called from the main thread")
    wanted = tuple(signals) or (_signal.SIGINT, _signal.SIGTERM)
    for s in wanted:
        _signal.Signals(s)  # ValueError for a number that is not a signal
    ctx, cancel = with_cancel_cause(parent)

    def handler(signum: int, frame: object) -> None:
        # A handler runs between two bytecodes of the main thread, which may hold a context
        # lock at that moment: cancel from another thread instead of deadlocking here.
        threading.Thread(target=cancel, args=(SignalReceived(signum),), name="ftsync-signal", daemon=True).start()

    previous = {s: _signal.signal(s, handler) for s in wanted}
    restored = threading.Lock()

    def stop() -> None:
        if restored.acquire(blocking=False):
            for s, old in previous.items():
                _signal.signal(s, old)
        cancel(None)

    return _ContextScope((ctx, stop))


class _DeadlineTimer:
    """One daemon thread expiring every deadline context on time; it exits when none is pending.

    Entries hold weak references: a context nobody keeps is not kept alive by its deadline.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[list] = []
        self._live = 0
        self._thread: threading.Thread | None = None
        self._sequence = itertools.count()

    def schedule(self, ctx: _CancelContext) -> list:
        entry = [ctx._deadline, next(self._sequence), weakref.ref(ctx), True]
        with self._cond:
            heapq.heappush(self._heap, entry)
            self._live += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ftsync-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()
        return entry

    def discard(self, entry: list) -> None:
        with self._cond:
            if entry[3]:
                entry[3] = False
                self._live -= 1
                if self._live == 0:
                    self._heap.clear()
                    self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return self._live

    def _run(self) -> None:
        cond = self._cond
        with cond:
            try:
                self._expire_due(cond)
            finally:
                self._thread = None  # whatever happened, the next schedule() starts a new thread

    def _expire_due(self, cond: threading.Condition) -> None:
        """Expire entries as they come due until none is pending (called with ``cond`` held)."""
        while True:
            if self._live == 0:
                return
            entry = self._heap[0]
            if not entry[3]:
                heapq.heappop(self._heap)
                continue
            delay = entry[0] - _monotonic()
            if delay > 0:
                cond.wait(min(delay, TIMEOUT_MAX))  # a deadline centuries away is waited in pieces
                continue
            heapq.heappop(self._heap)
            entry[3] = False
            self._live -= 1
            ctx = entry[2]()
            if ctx is not None:
                cond.release()
                try:
                    ctx._expire()
                except Exception:  # a waker failed: report it, keep the timer alive
                    traceback.print_exc()
                finally:
                    cond.acquire()


_TIMER = _DeadlineTimer()
