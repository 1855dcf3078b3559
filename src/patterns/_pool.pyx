# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""The compiled core of WorkerPool: submit, the job queue, the shutdown gate, the worker loop.

A job is a tuple ``(future, fn, args, kwargs)`` on a ``queue.SimpleQueue`` (a C queue, no
bound of its own); ``None`` tells one worker to exit.  A pool with ``queue_size`` bounds the
queued jobs with a compiled Semaphore whose slots ``submit`` takes and the worker gives back.
Queuing and ``close`` meet under one ``PyMutex``, so no job is ever queued behind the exit
sentinels.  The counters are C11 atomics, bumped by the worker loop without a lock.
"""

cimport cython
from libc.stdint cimport int64_t

from ftsync_atomic cimport (
    ftsync_atomic_i64,
    ftsync_i64_load,
    ftsync_i64_store,
    ftsync_i64_exchange,
    ftsync_i64_fetch_add,
)

import threading
from collections import deque
from concurrent.futures._base import FINISHED, LOGGER, InvalidStateError
from concurrent.futures.thread import BrokenThreadPool
from queue import Empty, SimpleQueue

from .context import with_cancel

cdef object _END = object()
cdef enum:
    _CLOSED_BY_SHUTDOWN = 1
    _CLOSED_BY_CANCEL = 2
BROKEN_BY_INITIALIZER = "A thread initializer failed, the thread pool is not usable anymore"


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef dict _CTX_PARAMS = {}  # code object -> index of its ``ctx`` parameter in co_varnames, or -1


cdef Py_ssize_t ctx_slot(fn) except -2:
    """How many positional arguments reach ``fn``'s keyword-passable ``ctx`` (-1: it has none).

    A caller that passes that many or more has given ``ctx`` by position already.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return -1
    known = _CTX_PARAMS.get(code)
    if known is None:
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        index = names.index("ctx") if "ctx" in names else -1
        known = _CTX_PARAMS[code] = -1 if index < code.co_posonlyargcount else index
    cdef Py_ssize_t slot = known
    if slot < 0:
        return -1
    if slot >= code.co_argcount:
        return PY_SSIZE_T_MAX  # keyword-only: no positional argument reaches it
    if getattr(fn, "__self__", None) is not None and hasattr(fn, "__func__"):
        slot -= 1  # a bound method: its first parameter is already filled
    return slot


cpdef bint takes_ctx(fn):
    """True if ``fn`` (a Python function or method) has a parameter ``ctx`` passable by keyword."""
    return ctx_slot(fn) >= 0


@cython.final
cdef class PoolCore:
    """Jobs in, workers out: one pool's queue, shutdown gate, threads and counters.

    Threads start one at a time, when a job is queued and no idle worker can take it (as
    ThreadPoolExecutor does), up to ``workers``.  The thread list, the broken flag and the
    queue's puts meet under ``_gate``; ``_closed`` is also read without it, so it is an atomic.
    """

    cdef object _queue
    cdef object _put
    cdef object _slots
    cdef object _future_type
    cdef object _ctx
    cdef object _room_ctx  # what a submit waiting for room waits on: ends with the pool's ctx or close
    cdef object _stop_waiting
    cdef object _on_end  # called once when the pool is over: closed and every started worker exited
    cdef object _initializer
    cdef tuple _initargs
    cdef object _broken  # None, or why the pool is broken (under _gate)
    cdef bint _pass_ctx
    cdef str _name
    cdef cython.pymutex _gate
    cdef Py_ssize_t _workers
    cdef list _threads  # the started threads (under _gate); none starts once closed
    cdef list _current  # per started worker: the job it is running, or None
    cdef ftsync_atomic_i64 _closed  # _OPEN or why closed: written under _gate, read anywhere
    cdef ftsync_atomic_i64 _idle  # workers waiting for a job; taken (decremented) only under _gate
    cdef ftsync_atomic_i64 _started_threads
    cdef ftsync_atomic_i64 _exited
    cdef ftsync_atomic_i64 _ended
    cdef ftsync_atomic_i64 _submitted
    cdef ftsync_atomic_i64 _started
    cdef ftsync_atomic_i64 _completed
    cdef ftsync_atomic_i64 _failed
    cdef ftsync_atomic_i64 _cancelled

    def __cinit__(self, Py_ssize_t workers, slots, future_type, ctx, bint pass_ctx, str name,
                  on_end=None, initializer=None, tuple initargs=()):
        self._queue = SimpleQueue()
        self._put = self._queue.put
        self._slots = slots
        self._future_type = future_type
        self._ctx = ctx
        self._room_ctx = self._stop_waiting = None
        if slots is not None:
            self._room_ctx, self._stop_waiting = with_cancel(ctx)
        self._pass_ctx = pass_ctx
        self._on_end = on_end
        self._initializer = initializer
        self._initargs = initargs
        self._broken = None
        self._name = name
        self._threads = []
        self._current = []
        self._workers = workers
        ftsync_i64_store(&self._closed, 0)
        ftsync_i64_store(&self._idle, 0)
        ftsync_i64_store(&self._started_threads, 0)
        ftsync_i64_store(&self._exited, 0)
        ftsync_i64_store(&self._ended, 0)
        ftsync_i64_store(&self._submitted, 0)
        ftsync_i64_store(&self._started, 0)
        ftsync_i64_store(&self._completed, 0)
        ftsync_i64_store(&self._failed, 0)
        ftsync_i64_store(&self._cancelled, 0)

    @property
    def closed(self):
        return ftsync_i64_load(&self._closed) != 0

    @property
    def broken(self):
        """None, or why the pool is broken (an initializer failed)."""
        with self._gate:
            return self._broken

    @property
    def threads(self):
        """The worker threads started so far (a copy)."""
        with self._gate:
            return list(self._threads)

    def submit(self, fn, tuple args, dict kwargs):
        """Queue ``fn(*args, **kwargs)`` and return its future (see WorkerPool.submit)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if self._pass_ctx and "ctx" not in kwargs and len(args) <= ctx_slot(fn):
            kwargs["ctx"] = self._ctx
        future = self._future_type()
        if self._slots is None:
            self._queue_job((future, fn, args, kwargs))
            return future
        self._take_slot()
        try:
            self._queue_job((future, fn, args, kwargs))
        except BaseException:
            self._slots.release()
            raise
        return future

    cdef object _closed_error(self):
        if ftsync_i64_load(&self._closed) == _CLOSED_BY_CANCEL:
            return RuntimeError("cannot schedule new futures after the pool was cancelled")
        return RuntimeError("cannot schedule new futures after shutdown")

    cdef void _queue_job(self, tuple job) except *:
        """Queue ``job``; start a worker for it if no idle one can take it."""
        cdef int64_t idle
        with self._gate:
            if self._broken is not None:
                raise BrokenThreadPool(self._broken)
            if ftsync_i64_load(&self._closed):
                raise self._closed_error()
            self._put(job)
            if ftsync_i64_load(&self._started_threads) < self._workers:  # else nothing to decide
                idle = ftsync_i64_load(&self._idle)
                if idle > 0:  # only submitters take from _idle, all under _gate: no lower bound race
                    ftsync_i64_fetch_add(&self._idle, -1)
                else:
                    self._start_worker()
        ftsync_i64_fetch_add(&self._submitted, 1)

    cdef void _take_slot(self) except *:
        if ftsync_i64_load(&self._closed):
            raise self._closed_error()
        try:
            self._slots.acquire(ctx=self._room_ctx)
        except Exception:
            if ftsync_i64_load(&self._closed):
                raise self._closed_error() from None
            if self._ctx.err() is not None:  # cancelled; the waker that closes the core has not run yet
                raise RuntimeError("cannot schedule new futures after the pool was cancelled") from None
            raise

    cdef void _start_worker(self) except *:
        """Start one more worker thread (called holding _gate, pool open)."""
        cdef Py_ssize_t index = len(self._threads)
        thread = threading.Thread(target=self.work, args=(index,), name=f"{self._name}_{index}")
        self._current.append(None)
        # Counted before start(): a Ctrl-C landing in start()'s wait for the new thread leaves
        # it running, and close() must still send it its exit sentinel.
        self._threads.append(thread)
        ftsync_i64_fetch_add(&self._started_threads, 1)
        try:
            thread.start()
        except Exception:  # the thread could not be created (start() raises before it exists)
            self._threads.pop()
            self._current.pop()
            ftsync_i64_fetch_add(&self._started_threads, -1)
            raise

    def close(self, bint cancel_queued, bint by_cancel=False):
        """Stop taking jobs and tell every worker to exit once the queue is empty.

        With ``cancel_queued`` the jobs still queued are taken out, counted as cancelled and
        returned, so that the caller cancels their futures.  Safe to call again (to cancel
        what a first, non-cancelling close left queued).  ``by_cancel``: the pool's ctx was
        cancelled (later submits say so), if this is the first close.
        """
        cdef list drained = []
        cdef Py_ssize_t sentinels = 0
        cdef Py_ssize_t started = 0
        cdef bint first
        with self._gate:
            first = not ftsync_i64_load(&self._closed)
            if first:
                ftsync_i64_store(&self._closed, _CLOSED_BY_CANCEL if by_cancel else _CLOSED_BY_SHUTDOWN)
            started = len(self._threads)  # final: no worker starts once closed
        if first and self._stop_waiting is not None:
            self._stop_waiting()  # submits waiting for room fail now, not when room comes
        if cancel_queued:
            drained = self._drain(&sentinels)
            ftsync_i64_fetch_add(&self._cancelled, len(drained))
        if first:
            sentinels += started
        for _ in range(sentinels):
            self._put(None)
        if first:
            self._end_if_over()
        return drained

    cdef list _drain(self, Py_ssize_t *sentinels):
        """Take every queued job out (their queue slots given back); count the exit sentinels
        taken with them in ``sentinels``, for the caller to put back."""
        cdef list drained = []
        while True:
            try:
                job = self._queue.get_nowait()
            except Empty:
                break
            if job is None:
                sentinels[0] += 1
            else:
                drained.append(job)
                if self._slots is not None:
                    self._slots.release()
        return drained

    cdef void _end_if_over(self) except *:
        """Call on_end, once, when the pool is closed and every worker it started has exited.

        Both close() and an exiting worker call this after their own write (seq_cst), so
        at least one of them sees the other's; the exchange makes the call happen once.
        """
        if not ftsync_i64_load(&self._closed):
            return
        if ftsync_i64_load(&self._exited) != ftsync_i64_load(&self._started_threads):
            return
        if ftsync_i64_exchange(&self._ended, 1) != 0:
            return
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    cdef void _initializer_failed(self) except *:
        """A worker's initializer raised: break the pool, fail every queued job (ThreadPoolExecutor's rule)."""
        cdef list drained = []
        cdef Py_ssize_t sentinels = 0
        with self._gate:
            self._broken = BROKEN_BY_INITIALIZER
            drained = self._drain(&sentinels)
            for _ in range(sentinels):
                self._put(None)
        for job in drained:
            future = (<tuple>job)[0]
            if future.set_running_or_notify_cancel():
                ftsync_i64_fetch_add(&self._started, 1)
                ftsync_i64_fetch_add(&self._failed, 1)
                future.set_exception(BrokenThreadPool(BROKEN_BY_INITIALIZER))
            else:
                ftsync_i64_fetch_add(&self._cancelled, 1)

    def work(self, Py_ssize_t index):
        """The loop of worker ``index``: run jobs until told to exit."""
        cdef object queue = self._queue
        cdef object get = queue.get
        cdef object empty = queue.empty
        cdef object slots = self._slots
        cdef list current = self._current
        cdef int64_t workers = self._workers
        cdef object job, future, fn, args, kwargs, result, sleepers, sleeper
        cdef object cancelled = self._ctx.done().is_set  # the pool's ctx (pool.cancel(), a parent)
        cdef bint failed
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except BaseException:
                LOGGER.critical("Exception in initializer:", exc_info=True)
                self._initializer_failed()
                ftsync_i64_fetch_add(&self._exited, 1)
                self._end_if_over()
                return
        while True:
            # A submit may now count on this worker (no need once every worker has started).
            if ftsync_i64_load(&self._started_threads) < workers and empty():
                ftsync_i64_fetch_add(&self._idle, 1)
            job = get()
            if job is None:
                ftsync_i64_fetch_add(&self._exited, 1)
                self._end_if_over()
                return
            if slots is not None:
                slots.release()
            future, fn, args, kwargs = <tuple>job
            if cancelled():  # still queued when the pool was cancelled: it never starts, even if
                future.cancel()  # this worker took it before the cancel had emptied the queue
            if not future.set_running_or_notify_cancel():
                ftsync_i64_fetch_add(&self._cancelled, 1)
                job = future = fn = args = kwargs = None
                continue
            ftsync_i64_fetch_add(&self._started, 1)
            current[index] = job
            job = None
            try:
                result = fn(*args, **kwargs)
                failed = False
            except BaseException as exc:
                result = exc
                failed = True
            # Let go of everything but the future before its waiters wake: an object this thread
            # made and another thread frees last would wait for this (maybe idle) thread to free it
            # on a free-threaded build.  _complete stores the outcome; the sleepers wake after.
            current[index] = None
            fn = args = kwargs = None
            ftsync_i64_fetch_add(&self._failed if failed else &self._completed, 1)
            try:
                sleepers = future._complete(result, failed)
            except InvalidStateError:  # someone else settled a running future: keep the worker
                LOGGER.critical("Exception in worker", exc_info=True)
                sleepers = None
            result = future = None
            if sleepers is not None:
                for sleeper in <list>sleepers:
                    try:
                        sleeper.release()
                    except RuntimeError:  # a ctx's waker released it first
                        pass
                sleepers = sleeper = None

    def running_jobs(self):
        """The ``(future, fn, args, kwargs)`` jobs that workers are running right now."""
        return [job for job in list(self._current) if job is not None]

    def counts(self):
        """``(submitted, started, completed, failed, cancelled)``, each read atomically."""
        return (
            ftsync_i64_load(&self._submitted),
            ftsync_i64_load(&self._started),
            ftsync_i64_load(&self._completed),
            ftsync_i64_load(&self._failed),
            ftsync_i64_load(&self._cancelled),
        )


def ordered_results(submit, fn, items, Py_ssize_t window, ctx, bint pass_ctx, wait,
                    pool_ctx=None, in_flight=None):
    """Yield ``fn(item)`` in input order with at most ``window`` jobs in flight (WorkerPool.imap).

    ``submit`` is PoolCore.submit; ``wait(future)`` blocks until the future is done or raises
    (timeout, cancellation); ``ctx`` is checked before every result and goes to ``fn`` if
    ``pass_ctx``.  Jobs still in flight when the generator ends early are cancelled.  An error
    reading ``items`` is raised after the results of the items read before it.  A submit
    refused because ``pool_ctx`` was cancelled raises ``pool_ctx.err()``.  ``in_flight``: a
    deque of futures already submitted for the first items (map's window, sent at call time).
    """
    if in_flight is None:
        in_flight = deque()
    cdef object push = in_flight.append
    cdef object pop = in_flight.popleft
    cdef object future = None
    cdef object item, result
    cdef Py_ssize_t low = window // 2  # refill in bursts: workers then take runs of jobs
    cdef bint exhausted = False
    cdef object input_error = None
    try:
        while True:
            if not exhausted and len(in_flight) <= low:
                while len(in_flight) < window:
                    try:
                        item = next(items, _END)
                    except Exception as exc:  # raised once the items read before it are yielded
                        input_error = exc
                        item = _END
                    if item is _END:
                        exhausted = True
                        break
                    try:
                        push(submit(fn, (item,), {"ctx": ctx} if pass_ctx else {}))
                    except RuntimeError:  # the pool closed: say why if it was cancelled
                        err = None if pool_ctx is None else pool_ctx._err_copy()
                        if err is not None:
                            raise err from None
                        raise
            if not in_flight:
                if input_error is not None:
                    raise input_error
                return
            future = pop()
            if future._state is not FINISHED:
                wait(future)
            result = future.result()
            future = None
            if ctx is not None:
                ctx.raise_if_done()
            yield result
    finally:
        if future is not None:  # the one being waited on when a timeout or ctx ended us
            future.cancel()
        for future in in_flight:
            future.cancel()
