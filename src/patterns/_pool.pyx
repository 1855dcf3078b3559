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

import threading
from collections import deque
from concurrent.futures._base import FINISHED
from queue import Empty, SimpleQueue

from .context import with_cancel

cdef object _END = object()


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "ftsync_atomic.h" nogil:
    ctypedef int64_t ftsync_atomic_i64
    int64_t ftsync_i64_load(const ftsync_atomic_i64 *p)
    void ftsync_i64_store(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_add(ftsync_atomic_i64 *p, int64_t v)


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
    """Jobs in, workers out: one pool's queue, shutdown gate and counters."""

    cdef object _queue
    cdef object _put
    cdef object _slots
    cdef object _future_type
    cdef object _ctx
    cdef object _room_ctx  # what a submit waiting for room waits on: ends with the pool's ctx or close
    cdef object _stop_waiting
    cdef object _on_end  # called once when the pool is over: its last worker exited (or none started)
    cdef bint _pass_ctx
    cdef str _name
    cdef cython.pymutex _gate
    cdef bint _closed
    cdef Py_ssize_t _workers
    cdef list _current  # per worker: the job it is running, or None
    cdef readonly list threads  # empty until the first submit starts them
    cdef ftsync_atomic_i64 _submitted
    cdef ftsync_atomic_i64 _started
    cdef ftsync_atomic_i64 _completed
    cdef ftsync_atomic_i64 _failed
    cdef ftsync_atomic_i64 _cancelled
    cdef ftsync_atomic_i64 _exited

    def __cinit__(self, Py_ssize_t workers, slots, future_type, ctx, bint pass_ctx, str name,
                  on_end=None):
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
        self._name = name
        self.threads = []
        self._closed = False
        self._workers = workers
        self._current = [None] * workers
        ftsync_i64_store(&self._submitted, 0)
        ftsync_i64_store(&self._started, 0)
        ftsync_i64_store(&self._completed, 0)
        ftsync_i64_store(&self._failed, 0)
        ftsync_i64_store(&self._cancelled, 0)
        ftsync_i64_store(&self._exited, 0)

    @property
    def closed(self):
        return self._closed

    def submit(self, fn, tuple args, dict kwargs):
        """Queue ``fn(*args, **kwargs)`` and return its future (see WorkerPool.submit)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if self._pass_ctx and "ctx" not in kwargs and len(args) <= ctx_slot(fn):
            kwargs["ctx"] = self._ctx
        future = self._future_type()
        if not self.threads:
            self._start_workers()
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

    cdef void _queue_job(self, tuple job) except *:
        with self._gate:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._put(job)
        ftsync_i64_fetch_add(&self._submitted, 1)

    cdef void _take_slot(self) except *:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        try:
            self._slots.acquire(ctx=self._room_ctx)
        except Exception:
            if self._ctx.err() is not None:
                raise RuntimeError("cannot schedule new futures after the pool was cancelled") from None
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown") from None
            raise

    cdef void _start_workers(self) except *:
        with self._gate:
            if self.threads or self._closed:
                return
            threads = [
                threading.Thread(target=self.work, args=(i,), name=f"{self._name}_{i}")
                for i in range(self._workers)
            ]
            for thread in threads:
                thread.start()
            self.threads = threads

    def close(self, bint cancel_queued):
        """Stop taking jobs and tell every worker to exit once the queue is empty.

        With ``cancel_queued`` the jobs still queued are taken out, counted as cancelled and
        returned, so that the caller cancels their futures.  Safe to call again (to cancel
        what a first, non-cancelling close left queued).
        """
        cdef list drained = []
        cdef Py_ssize_t sentinels = 0
        cdef bint first, unstarted
        with self._gate:
            first = not self._closed
            self._closed = True
            unstarted = not self.threads  # final: no worker starts once closed
        if first and self._stop_waiting is not None:
            self._stop_waiting()  # submits waiting for room fail now, not when room comes
        if cancel_queued:
            while True:
                try:
                    job = self._queue.get_nowait()
                except Empty:
                    break
                if job is None:
                    sentinels += 1
                else:
                    drained.append(job)
                    if self._slots is not None:
                        self._slots.release()
            ftsync_i64_fetch_add(&self._cancelled, len(drained))
        if first:
            sentinels += self._workers
        for _ in range(sentinels):
            self._put(None)
        if first and unstarted:
            self._end()
        return drained

    cdef void _end(self) except *:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def work(self, Py_ssize_t index):
        """The loop of worker ``index``: run jobs until told to exit."""
        cdef object get = self._queue.get
        cdef object slots = self._slots
        cdef object job, future, fn, args, kwargs, result
        while True:
            job = get()
            if job is None:
                if ftsync_i64_fetch_add(&self._exited, 1) + 1 == self._workers:
                    self._end()  # the last worker out: the pool is over
                return
            if slots is not None:
                slots.release()
            future, fn, args, kwargs = <tuple>job
            if not future.set_running_or_notify_cancel():
                ftsync_i64_fetch_add(&self._cancelled, 1)
                continue
            ftsync_i64_fetch_add(&self._started, 1)
            self._current[index] = job
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._current[index] = None
                ftsync_i64_fetch_add(&self._failed, 1)
                future.set_exception(exc)
            else:
                self._current[index] = None
                ftsync_i64_fetch_add(&self._completed, 1)
                future.set_result(result)
            job = future = fn = args = kwargs = result = None

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


def stage_loop(fn, recv, send, ctx, closed):
    """A pipeline stage's worker: ``send(fn(item))`` for every item ``recv`` gives, until closed.

    ``recv``/``send`` are a Channel's bound methods, called with ``ctx`` so that cancelling
    the pipeline ends a blocked call; ``closed`` is the ChannelClosed class.
    """
    while True:
        try:
            item = recv(None, ctx)
        except closed:
            return
        send(fn(item), None, ctx)


def ordered_results(submit, fn, items, Py_ssize_t window, ctx, bint pass_ctx, wait):
    """Yield ``fn(item)`` in input order with at most ``window`` jobs in flight (WorkerPool.imap).

    ``submit`` is PoolCore.submit; ``wait(future)`` blocks until the future is done or raises
    (timeout, cancellation); ``ctx`` is checked before every result and goes to ``fn`` if
    ``pass_ctx``.  Jobs still in flight when the generator ends early are cancelled.  An error
    reading ``items`` is raised after the results of the items read before it.
    """
    cdef object in_flight = deque()
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
                    push(submit(fn, (item,), {"ctx": ctx} if pass_ctx else {}))
            if not in_flight:
                if input_error is not None:
                    raise input_error
                return
            future = pop()
            if future._state is not FINISHED:
                wait(future)
            result = future.result()
            future = None
            if ctx is not None and ctx.err() is not None:
                raise ctx.err()
            yield result
    finally:
        if future is not None:  # the one being waited on when a timeout or ctx ended us
            future.cancel()
        for future in in_flight:
            future.cancel()


def feed_loop(items, send, ctx):
    """A pipeline's feeder: ``send(item)`` for every item of the iterator ``items``."""
    for item in items:
        send(item, None, ctx)
