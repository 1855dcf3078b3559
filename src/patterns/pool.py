"""WorkerPool: a ``concurrent.futures.Executor`` with Go's worker-pool manners, compiled.

Switching from the stdlib is one line::

    with WorkerPool(8) as pool:                       # was ThreadPoolExecutor(8)
        futures = [pool.submit(fetch, url) for url in urls]
        for page in pool.imap(parse, pages):          # streams; never reads all pages first
            ...

What it adds to ``ThreadPoolExecutor``:

- ``imap(fn, iterable, ordered=True)`` streams results with a bounded number of jobs in
  flight (``window``), so a generator of ten million items never sits in memory at once.
- ``run(fn, jobs)``: Go's shape, workers reading a jobs Channel (or any iterable) and
  sending to a results Channel that is closed when every worker is done.
- A context: the pool's ``ctx`` is cancelled by ``cancel()``, by the parent ``ctx`` given to
  the constructor, or by an unhandled Ctrl-C.  Cancelling stops dispatch, cancels queued jobs
  and lets running jobs finish; a job whose function has a parameter named ``ctx`` receives
  the pool's context (unless the caller passed one) and can stop early.
- ``shutdown(timeout=)`` returns within its timeout with a :class:`PoolShutdownStatus` that
  names the jobs still running; ``stats()`` is a snapshot of the counters.
- ``queue_size`` bounds the queued jobs: ``submit`` then waits for room (backpressure).

Its futures are :class:`patterns.Future`, a cheaper ``concurrent.futures.Future`` subclass
that works with ``concurrent.futures.wait``, ``as_completed`` and ``asyncio``.  The queue,
the worker loop and the counters are in Cython (``patterns._pool``).

At interpreter exit a pool still open is shut down as ``ThreadPoolExecutor`` is (queued jobs
run, threads are joined) unless the main thread ended with KeyboardInterrupt: then queued jobs
are cancelled and the context is cancelled, so one Ctrl-C stops the program promptly.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import CancelledError, Executor, ThreadPoolExecutor
from concurrent.futures._base import CANCELLED
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any, Callable, Iterable, Iterator, ParamSpec, TypeVar

from ._future import Future
from ._pool import PoolCore, ordered_results, takes_ctx
from ._semaphore import Semaphore
from ._validate import check_count, check_ctx, check_timeout
from ._waiting import SLICE, in_main_thread, join_thread
from .channel import Channel, ChannelClosed
from .context import Context, background, with_cancel

__all__ = ["PoolRun", "PoolShutdownStatus", "PoolStats", "WorkerPool"]

_pool_numbers = itertools.count()
_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()
_END = object()
_T = TypeVar("_T")
_P = ParamSpec("_P")
#: Largest ``workers``/``queue_size``/``window``/``buffersize``: the compiled core counts in C ssize_t.
MAX_COUNT = sys.maxsize


def default_workers() -> int:
    """ThreadPoolExecutor's default worker count: ``min(32, CPUs available + 4)``."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()  # 3.13+: the CPUs this process may use
    return min(32, (count or 1) + 4)


def _check_count(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """check_count, plus the C limit, so a huge int says which parameter and what limit."""
    check_count(name, value, allow_none=allow_none)
    if value is not None and value > MAX_COUNT:
        raise ValueError(f"{name} must be <= {MAX_COUNT}, got {value}")
    return value


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters (each exact; taken one after another, not as one)."""

    workers: int
    submitted: int
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int


@dataclass(frozen=True)
class PoolShutdownStatus:
    """What ``WorkerPool.shutdown`` achieved: true when every worker thread has ended."""

    joined: bool
    still_running: tuple[str, ...]  # the jobs that had not finished, as ``fn(args)``
    cancelled: int  # queued jobs this call cancelled

    def __bool__(self) -> bool:
        return self.joined


def _describe(job: tuple) -> str:
    _, fn, args, kwargs = job
    name = getattr(fn, "__qualname__", None) or repr(fn)
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items() if k != "ctx"]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= 200 else text[:197] + "..."


class WorkerPool(Executor):
    """A set of worker threads running submitted jobs; a ``concurrent.futures.Executor``.

    ``workers``: at most this many threads (default ``min(32, CPUs + 4)``, as
    ``ThreadPoolExecutor``); a thread starts when a job is queued and no idle worker can
    take it.  ``queue_size``: at most this many queued jobs (``submit`` waits for room); None
    for no bound, as ``ThreadPoolExecutor``.  ``ctx``: cancelling it cancels the pool.
    ``name``: prefix of the thread names.  ``pass_ctx``: give the pool's context to jobs whose
    function has a ``ctx`` parameter.  ``initializer(*initargs)`` runs first in every worker
    thread; if it raises, the pool is broken: queued and later jobs fail with
    ``BrokenThreadPool`` (as with ``ThreadPoolExecutor``).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        queue_size: int | None = None,
        ctx: Context | None = None,
        name: str | None = None,
        pass_ctx: bool = True,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        workers = default_workers() if workers is None else _check_count("workers", workers)
        _check_count("queue_size", queue_size, allow_none=True)
        check_ctx(ctx)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable or None, got {type(initializer).__name__}")
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, got {type(initargs).__name__}")
        self._workers = workers
        self._name = name or f"WorkerPool-{next(_pool_numbers)}"
        self._pass_ctx = bool(pass_ctx)
        self._ctx, cancel_ctx = with_cancel(background() if ctx is None else ctx)
        slots = None if queue_size is None else Semaphore(queue_size)
        token = object()
        own_ctx = self._ctx  # the closure below must not hold the pool (see weakref.finalize)

        def release_ctx() -> None:
            """The pool is over: unregister the waker, then cancel the ctx (unlinks it from the parent)."""
            own_ctx._remove_waker(token)
            cancel_ctx()

        # Ownership runs one way: the ctx's cancellation closes the core (through the waker);
        # the core, once over (closed, every worker gone), calls release_ctx, which drops that
        # waker before cancelling the ctx, so the cancel never comes back to close the core.
        self._release_ctx = release_ctx
        self._cancel_ctx = cancel_ctx
        self._core = PoolCore(workers, slots, Future, self._ctx, self._pass_ctx, self._name,
                              release_ctx, initializer, initargs)
        self._submit = self._core.submit
        # The waker holds only the core: the workers reach the ctx through it, and must not
        # keep the pool alive.
        if not self._ctx._add_waker(token, functools.partial(_close_core, self._core, True, True)):
            self._core.close(True, True)  # the parent ctx was already cancelled: no job may start
        _live_pools.add(self)
        # The worker threads hold the core, not the pool: a pool dropped without shutdown is
        # collected, and this lets its workers finish the queue and exit (as ThreadPoolExecutor).
        weakref.finalize(self, self._core.close, False)

    # -- properties

    @property
    def ctx(self) -> Context:
        """The pool's context: cancelled by ``cancel()``, the parent ctx or an unhandled Ctrl-C.

        Also once the pool is over (shut down and every worker gone), to let go of the parent.
        """
        return self._ctx

    @property
    def workers(self) -> int:
        """The most worker threads this pool starts."""
        return self._workers

    # ThreadPoolExecutor's private names for the same facts, which code written for it reads.
    @property
    def _max_workers(self) -> int:
        return self._workers

    @property
    def _threads(self) -> list[threading.Thread]:
        return self._core.threads

    @property
    def _broken(self) -> str | bool:
        return self._core.broken or False

    def __repr__(self) -> str:
        s = self.stats()
        state = "shut down" if self._core.closed else "open"
        return (f"<WorkerPool {self._name!r} {state} workers={s.workers} queued={s.queued} "
                f"running={s.running} completed={s.completed} failed={s.failed}>")

    # -- Executor

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)``; a :class:`Future` for its result.

        RuntimeError after ``shutdown`` or ``cancel`` (saying which); ``BrokenThreadPool``
        once an initializer failed.  With ``queue_size``, waits for room (and gets that
        RuntimeError as soon as the pool is shut down meanwhile).
        """
        return self._submit(fn, args, kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1, buffersize: int | None = None) -> Iterator[Any]:
        """``Executor.map``: results in order; with ``buffersize`` (as in 3.14) a bounded window.

        Without ``buffersize`` every item is submitted at once, as the stdlib does; prefer
        :meth:`imap` for long inputs.  With it, the first ``buffersize`` items are submitted
        by this call (as 3.14 does) and the rest as results are taken.  ``timeout`` counts
        from this call.
        """
        check_timeout(timeout)
        _check_count("buffersize", buffersize, allow_none=True)
        if buffersize is None:
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)
        end = None if timeout is None else time.monotonic() + timeout
        submit = self._submit  # each item is an argument tuple: submit it as map() would
        items = zip(*iterables)
        first = deque(submit(fn, args, {}) for args in itertools.islice(items, buffersize))
        return ordered_results(lambda fn, packed, kwargs: submit(fn, packed[0], kwargs), fn,
                               items, buffersize, None, False,
                               lambda future: self._wait(future, None, end), None, first)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 timeout: float | None = None) -> PoolShutdownStatus:
        """Stop taking jobs; with ``cancel_futures`` cancel the queued ones; join if ``wait``.

        Queued jobs still run unless cancelled; running jobs always finish (``cancel()``
        asks them to stop early through their ctx).  ``timeout`` bounds the join; the
        status says whether every thread ended and which jobs were still running.
        """
        timeout = check_timeout(timeout)
        cancelled = self._close(cancel_futures)
        joined = True
        if wait:
            joined = self._join(timeout)
        else:
            joined = not any(t.is_alive() for t in self._core.threads)
        running = () if joined else tuple(_describe(job) for job in self._core.running_jobs())
        if joined:
            self._release_ctx()  # releases the context's registration with its parent
        return PoolShutdownStatus(joined, running, cancelled)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.cancel()
        self.shutdown(wait=True)

    # -- beyond Executor

    def cancel(self) -> None:
        """Cancel the pool's ctx: stop taking jobs, cancel the queued ones, tell running jobs."""
        self._cancel_ctx()

    def as_thread_pool_executor(self) -> ThreadPoolExecutor:
        """This pool seen as a ``ThreadPoolExecutor``, for APIs that insist on that class.

        ``asyncio``'s ``loop.set_default_executor`` accepts only ThreadPoolExecutor instances::

            loop.set_default_executor(pool.as_thread_pool_executor())

        The view's ``submit``, ``map`` and ``shutdown`` are this pool's; it owns nothing, so
        shutting either down shuts down the pool.
        """
        return _ThreadPoolView(self)

    def stats(self) -> PoolStats:
        """A snapshot of the counters: submitted, queued, running, completed, failed, cancelled."""
        submitted, started, completed, failed, cancelled = self._core.counts()
        return PoolStats(
            workers=self._workers,
            submitted=submitted,
            queued=max(submitted - started - cancelled, 0),
            running=max(started - completed - failed, 0),
            completed=completed,
            failed=failed,
            cancelled=cancelled,
        )

    def imap(self, fn: Callable[[Any], Any], iterable: Iterable[Any], *, ordered: bool = True,
             ctx: Context | None = None, window: int | None = None) -> Iterator[Any]:
        """Yield ``fn(item)`` for each item, reading the input only as results are taken.

        At most ``window`` jobs are in flight (default ``max(256, 4 * workers)``).  ``ordered=False``
        yields in completion order.  A job's exception is raised at its item and the jobs
        still in flight are cancelled; so are they when the consumer stops early.  An error
        from ``iterable`` itself is raised after the results of the items read before it.  ``ctx``
        (else the pool's) is given to ``fn`` if it takes one, and its cancellation ends the
        iteration with ``ctx.err()``.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        check_ctx(ctx)
        window = _check_count("window", window, allow_none=True) or max(256, 4 * self._workers)
        items = iter(iterable)
        if ordered:
            return self._ordered(fn, items, window, ctx, None)
        return self._unordered(fn, items, window, ctx)

    def run(self, fn: Callable[[Any], Any], jobs: Channel | Iterable[Any], *,
            capacity: int | None = None, ctx: Context | None = None) -> PoolRun:
        """Go's worker pool: every worker takes jobs and sends ``fn(job)`` to ``results``.

        ``jobs`` is a Channel (read until closed) or any iterable.  Returns a
        :class:`PoolRun` whose ``results`` Channel (``capacity``, default ``workers``) is closed
        once every worker is done; iterate it, then ``wait()`` for the first error.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        check_ctx(ctx)
        capacity = self._workers if capacity is None else capacity
        return PoolRun(self, fn, jobs, capacity, ctx)

    # -- internals

    def _close(self, cancel_queued: bool) -> int:
        return _close_core(self._core, cancel_queued)

    def _join(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._core.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not join_thread(thread, left):
                return False
        return True

    def _launcher(self, fn: Callable[[Any], Any], ctx: Context | None) -> Callable[[Any], Future]:
        """``item -> submit(fn, item)``, giving ``fn`` the caller's ``ctx`` if it takes one."""
        submit = self._submit
        if ctx is not None and self._pass_ctx and takes_ctx(fn):
            return lambda item: submit(fn, (item,), {"ctx": ctx})
        return lambda item: submit(fn, (item,), {})

    def _wait(self, future: Future, ctx: Context | None, end: float | None) -> None:
        """Block until ``future`` is done; ctx.err() if ``ctx`` ends first, TimeoutError at ``end``."""
        timeout = None if end is None else max(end - time.monotonic(), 0.0)
        try:
            done = future._wait_done(timeout, ctx)
        except CancelledError:
            err = self._ctx._err_copy()
            if err is not None:
                raise err from None
            raise
        if not done:
            if ctx is not None:
                ctx.raise_if_done()
            raise TimeoutError()

    def _ordered(self, fn: Callable[[Any], Any], items: Iterator[Any], window: int,
                 ctx: Context | None, end: float | None) -> Iterator[Any]:
        pass_ctx = ctx is not None and self._pass_ctx and takes_ctx(fn)
        return ordered_results(self._submit, fn, items, window, ctx, pass_ctx,
                               lambda future: self._wait(future, ctx, end), self._ctx)

    def _unordered(self, fn: Callable[[Any], Any], items: Iterator[Any], window: int,
                   ctx: Context | None) -> Iterator[Any]:
        finished: SimpleQueue = SimpleQueue()
        on_done = finished.put
        in_flight: set[Future] = set()
        token = object()
        if ctx is not None and not ctx._add_waker(token, lambda: on_done(None)):
            ctx.raise_if_done()

        submit_item = self._launcher(fn, ctx)
        ended: list[Exception | None] = []  # the input's end: None, or the error that ended it

        def launch() -> None:
            """Submit the next item, if the input has one."""
            if ended:
                return
            try:
                item = next(items, _END)
            except Exception as exc:  # raised once the items read before it are yielded
                ended.append(exc)
                return
            if item is _END:
                ended.append(None)
                return
            try:
                future = submit_item(item)
            except RuntimeError:  # the pool closed: say why if it was cancelled
                err = self._ctx._err_copy()
                if err is not None:
                    raise err from None
                raise
            in_flight.add(future)
            future.add_done_callback(on_done)

        try:
            for _ in range(window):
                launch()
                if ended:
                    break
            while in_flight:
                future = _get_sliced(finished)
                if future is None:  # the ctx was cancelled
                    ctx.raise_if_done()
                in_flight.discard(future)
                if future.cancelled():
                    self._ctx.raise_if_done()
                    raise CancelledError()
                result = future.result()
                if ctx is not None:
                    ctx.raise_if_done()
                launch()
                yield result
            if ended and ended[0] is not None:
                raise ended[0]
        finally:
            if ctx is not None:
                ctx._remove_waker(token)
            for future in in_flight:
                future.cancel()


class _ThreadPoolView(ThreadPoolExecutor):
    """A WorkerPool behind the ThreadPoolExecutor class (see WorkerPool.as_thread_pool_executor).

    ThreadPoolExecutor.__init__ is not called: every public method goes to the pool.
    """

    def __init__(self, pool: WorkerPool) -> None:  # noqa: super().__init__ not called on purpose
        self._pool = pool
        self._max_workers = pool.workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], **kwargs: Any) -> Iterator[Any]:
        return self._pool.map(fn, *iterables, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"<ThreadPoolExecutor view of {self._pool!r}>"


def _close_core(core: PoolCore, cancel_queued: bool, by_cancel: bool = False) -> int:
    """Stop ``core`` taking jobs; with ``cancel_queued`` cancel the queued ones (their count).

    Each is also told it will never run (``set_running_or_notify_cancel``, as a worker would),
    or ``concurrent.futures.wait``/``as_completed`` would wait on it for ever.
    """
    drained = core.close(cancel_queued, by_cancel)
    for future, *_ in drained:
        future.cancel()
        if future._state == CANCELLED:
            future.set_running_or_notify_cancel()
    return len(drained)


def _get_sliced(queue: SimpleQueue) -> Any:
    """``queue.get()``, in slices in the main thread so that Ctrl-C lands."""
    if not in_main_thread():
        return queue.get()
    while True:
        try:
            return queue.get(timeout=SLICE)
        except Empty:
            pass


class PoolRun:
    """One ``WorkerPool.run``: its ``results`` Channel, its context and its first error."""

    def __init__(self, pool: WorkerPool, fn: Callable[[Any], Any], jobs: Channel | Iterable[Any],
                 capacity: int, ctx: Context | None) -> None:
        self.results = Channel(capacity)
        self._parent_ctx = pool.ctx if ctx is None else ctx
        self.ctx, self._cancel = with_cancel(self._parent_ctx)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        # why the run stopped before its jobs ran out: makes the exception each waiter raises (a
        # fresh one per raiser: one instance raised in many threads races on its __traceback__)
        self._interruption: Callable[[], BaseException | None] | None = None
        self._caller_cancelled = False
        if isinstance(jobs, Channel):
            recv = jobs.recv

            def next_job() -> Any:
                return recv(ctx=self.ctx)
        else:
            items = iter(jobs)
            lock = threading.Lock()

            def next_job() -> Any:
                with lock:
                    return next(items)
        self._left = pool.workers
        self._left_lock = threading.Lock()
        pass_ctx = pool._pass_ctx and takes_ctx(fn)
        try:
            self._loops = [pool.submit(self._loop, fn, next_job, pass_ctx) for _ in range(pool.workers)]
        except BaseException as exc:
            self._cancel()
            self.results.close()
            err = pool._ctx._err_copy() if isinstance(exc, RuntimeError) else None
            if err is not None:  # the pool was cancelled: its ctx's error, as imap raises
                raise err from None
            raise
        for loop in self._loops:
            loop.add_done_callback(self._dropped)

    def _loop(self, fn: Callable[[Any], Any], next_job: Callable[[], Any], pass_ctx: bool) -> None:
        send, ctx = self.results.send, self.ctx
        try:
            while ctx.err() is None:
                try:
                    job = next_job()
                except (StopIteration, ChannelClosed):
                    return
                send(fn(job, ctx=ctx) if pass_ctx else fn(job), ctx=ctx)
            self._interrupted(dropped=False)
        except BaseException as exc:
            if ctx._ended_with(exc):  # this run ending by cancellation
                self._interrupted(dropped=False)
            else:
                with self._errors_lock:
                    self._errors.append(exc)
                self._cancel()
        finally:
            self._ended()

    def _dropped(self, loop: Future) -> None:
        """A worker loop the pool cancelled before it ran (shutdown, cancel) ends here instead."""
        if loop.cancelled():
            self._interrupted(dropped=True)
            self._ended()

    def _interrupted(self, dropped: bool) -> None:
        """Remember, once, why the run stopped early: the parent's cancellation, or a shutdown.

        Read at that moment: a pool cancels its own context once its last worker has exited,
        and that later tidying must not pass for the reason.
        """
        err = self._parent_ctx.err()
        with self._errors_lock:
            if self._interruption is None:
                if err is not None:
                    self._interruption = self._parent_ctx._err_copy
                elif dropped:
                    self._interruption = _shut_down_before_start

    def _ended(self) -> None:
        with self._left_lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self.results.close()

    def __iter__(self) -> Iterator[Any]:
        """The results as they come; then the first error, if any, is raised."""
        yield from self.results
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every worker of this run; raise the first job error, or the parent ctx's error.

        CancelledError if the pool was shut down with this run's workers still queued.
        """
        timeout = check_timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        for loop in self._loops:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                if not loop._wait_done(left):
                    raise TimeoutError(f"run still going after {timeout} s")
            except CancelledError:
                pass  # the pool cancelled this worker loop before it ran: see _interruption
        if self._errors:
            raise self._errors[0]
        if self._interruption is not None and not self._caller_cancelled:
            raise self._interruption()  # type: ignore[misc]  # never None: the ctx stays done
        self._cancel()

    def cancel(self) -> None:
        """Stop this run: no new jobs are taken; results closes once running jobs end.

        A run stopped this way ends without an error (as a Go results channel just closes).
        """
        self._caller_cancelled = True
        self._cancel()


def _shut_down_before_start() -> CancelledError:
    return CancelledError("the pool was shut down before this run's workers started")


def _exit_hook() -> None:
    """At interpreter exit: on an unhandled Ctrl-C cancel every pool, else close them (as TPE)."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    interrupted = isinstance(last, KeyboardInterrupt)
    for pool in list(_live_pools):
        if interrupted:
            pool.cancel()
        pool._close(False)


threading._register_atexit(_exit_hook)  # runs before the interpreter joins non-daemon threads
