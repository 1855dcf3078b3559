"""patterns.WorkerPool: the Executor contract, imap, run, cancellation, shutdown, stats, threads."""

import asyncio
import concurrent.futures as cf
import gc
import itertools
import os
import threading
import time

import pytest

from atomics import AtomicInt64
from conftest import run_threads
from patterns import (
    Canceled,
    Channel,
    ChannelClosed,
    Future,
    PoolShutdownStatus,
    PoolStats,
    WorkerPool,
    with_cancel,
    background,
)

WAIT = 10  # generous bound for anything that should happen "soon"


@pytest.fixture
def make_pool():
    """WorkerPool factory; every pool is shut down (and its threads joined) after the test."""
    pools = []

    def make(*args, **kwargs):
        pool = WorkerPool(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.cancel()
        assert pool.shutdown(timeout=WAIT).joined


def blocker():
    """A job that blocks until the returned event is set; ``started`` is set when it runs."""
    started, release = threading.Event(), threading.Event()

    def job():
        started.set()
        assert release.wait(WAIT)
        return "released"

    return job, started, release


# -- the Executor contract (what ThreadPoolExecutor passes)


def test_is_an_executor_and_its_futures_are_futures(make_pool):
    pool = make_pool(2)
    assert isinstance(pool, cf.Executor)
    future = pool.submit(pow, 2, 8)
    assert isinstance(future, cf.Future) and isinstance(future, Future)
    assert future.result(WAIT) == 256
    assert future.done() and not future.running() and not future.cancelled()
    assert future.exception() is None


def test_submit_passes_args_and_kwargs(make_pool):
    pool = make_pool(2)
    assert pool.submit(divmod, 17, 5).result(WAIT) == (3, 2)
    assert pool.submit(int, "ff", base=16).result(WAIT) == 255
    assert pool.submit(lambda *a, **k: (a, k), 1, x=2).result(WAIT) == ((1,), {"x": 2})


def test_an_exception_lands_in_the_future(make_pool):
    pool = make_pool(2)
    future = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        future.result(WAIT)
    assert isinstance(future.exception(WAIT), ZeroDivisionError)
    assert pool.submit(lambda: 7).result(WAIT) == 7  # the worker survived


def test_map_keeps_order_and_raises_at_the_failing_item(make_pool):
    pool = make_pool(4)
    assert list(pool.map(pow, range(20), range(20))) == [pow(i, i) for i in range(20)]
    results = pool.map(lambda x: 10 // x, [5, 2, 0, 1])
    assert next(results) == 2 and next(results) == 5
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_timeout_counts_from_the_call(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    results = pool.map(lambda _: job(), [0], timeout=0.2)
    with pytest.raises(TimeoutError):
        list(results)
    release.set()


@pytest.mark.parametrize("buffersize", [None, 4])
def test_map_timeout_cancels_the_job_it_timed_out_on(make_pool, buffersize):
    # As Executor.map: the future that timed out is cancelled with the rest, not left to run.
    pool = make_pool(1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    ran = []
    results = pool.map(ran.append, [1, 2, 3], timeout=0.1, buffersize=buffersize)
    with pytest.raises(TimeoutError):
        next(results)
    results.close()
    release.set()
    pool.shutdown(wait=True)
    assert ran == []


def test_map_with_buffersize_reads_the_input_lazily(make_pool):
    pool = make_pool(2)
    pulled = []
    source = (pulled.append(i) or i for i in range(1000))
    results = pool.map(lambda x: x * 2, source, buffersize=8)
    assert next(results) == 0
    assert len(pulled) <= 9
    assert list(results) == [i * 2 for i in range(1, 1000)]


def test_map_with_buffersize_passes_ctx_as_map_and_submit_do(make_pool):
    pool = make_pool(2)

    def job(x, ctx):
        return x, ctx is pool.ctx

    expected = [(1, True), (2, True)]
    assert list(pool.map(job, [1, 2])) == expected
    assert list(pool.map(job, [1, 2], buffersize=1)) == expected
    assert list(pool.map(job, [1, 2], [pool.ctx, pool.ctx], buffersize=1)) == expected


def test_submit_after_shutdown_raises_runtime_error(make_pool):
    pool = make_pool(2)
    pool.submit(int).result(WAIT)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int)
    pool.shutdown()  # idempotent


def test_shutdown_wait_runs_every_queued_job(make_pool):
    pool = make_pool(2)
    done = AtomicInt64()
    futures = [pool.submit(lambda: (time.sleep(0.001), done.inc())) for _ in range(200)]
    status = pool.shutdown(wait=True)
    assert status.joined and bool(status) and status.still_running == () and status.cancelled == 0
    assert all(f.done() and not f.cancelled() for f in futures)
    assert done.load() == 200
    assert not any(t.is_alive() for t in pool._core.threads)


def test_shutdown_cancel_futures_cancels_queued_and_lets_running_finish(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    running = pool.submit(job)
    assert started.wait(WAIT)
    queued = [pool.submit(int) for _ in range(5)]
    threading.Timer(0.1, release.set).start()
    status = pool.shutdown(wait=True, cancel_futures=True)
    assert status.cancelled == 5
    assert running.result() == "released"
    assert all(f.cancelled() for f in queued)
    with pytest.raises(cf.CancelledError):
        queued[0].result()


@pytest.mark.parametrize("how", ["shutdown", "cancel"])
def test_futures_the_pool_cancels_are_done_for_wait_and_as_completed(make_pool, how):
    # wait()/as_completed() count a cancelled future as done only once the executor has
    # called set_running_or_notify_cancel(); queued jobs the pool drops must get that call.
    pool = make_pool(1)
    job, started, release = blocker()
    running = pool.submit(job)
    assert started.wait(WAIT)
    queued = [pool.submit(int) for _ in range(3)]
    mine = pool.submit(int)
    assert mine.cancel()  # cancelled by the caller, then dropped by the pool
    if how == "shutdown":
        pool.shutdown(wait=False, cancel_futures=True)
    else:
        pool.cancel()
    release.set()
    done, not_done = cf.wait(queued + [mine, running], timeout=2)
    assert not not_done
    assert set(cf.as_completed(queued + [mine, running], timeout=2)) == set(queued + [mine, running])
    assert all(f.cancelled() for f in queued + [mine])


def test_with_block_shuts_down_and_waits(make_pool):
    done = []
    with make_pool(2) as pool:
        pool.submit(lambda: (time.sleep(0.05), done.append(1)))
    assert done == [1]
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_cancel_a_queued_future_and_it_never_runs(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    ran = []
    queued = pool.submit(ran.append, 1)
    assert queued.cancel() and queued.cancelled() and queued.done()
    release.set()
    pool.shutdown()
    assert ran == []
    assert pool.stats().cancelled == 1


def test_a_running_future_cannot_be_cancelled(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    future = pool.submit(job)
    assert started.wait(WAIT)
    assert future.running() and not future.cancel()
    release.set()
    assert future.result(WAIT) == "released"


def test_result_timeout_raises_timeout_error(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    future = pool.submit(job)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.1)
    assert time.monotonic() - t0 < WAIT
    with pytest.raises(TimeoutError):
        future.exception(timeout=0)
    release.set()
    assert future.result(WAIT) == "released"


def test_wait_and_as_completed_work_with_pool_futures(make_pool):
    pool = make_pool(2)
    job, started, release = blocker()
    slow = pool.submit(job)
    fast = pool.submit(lambda: "fast")
    done, not_done = cf.wait([slow, fast], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
    assert fast in done and slow in not_done
    failing = pool.submit(lambda: 1 / 0)
    done, not_done = cf.wait([slow, failing], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert failing in done and slow in not_done
    release.set()
    assert set(cf.as_completed([slow, fast, failing], timeout=WAIT)) == {slow, fast, failing}
    done, not_done = cf.wait([slow, fast, failing], timeout=WAIT)
    assert not not_done


def test_wait_first_exception_with_a_future_already_done_does_not_deadlock(make_pool):
    # concurrent.futures.wait calls f.exception() while it holds every f._condition.
    pool = make_pool(1)
    failed = pool.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(WAIT), ZeroDivisionError)
    job, started, release = blocker()
    slow = pool.submit(job)
    got = []
    waiter = threading.Thread(
        target=lambda: got.append(cf.wait([failed, slow], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)),
        daemon=True)
    waiter.start()
    waiter.join(2)
    release.set()
    assert not waiter.is_alive(), "cf.wait(FIRST_EXCEPTION) deadlocked on a done future"
    assert got[0].done == {failed} and got[0].not_done == {slow}


def test_as_completed_waits_on_futures_that_finish_later(make_pool):
    pool = make_pool(4)
    futures = [pool.submit(time.sleep, 0.01 * (i % 5)) for i in range(40)]
    assert len(list(cf.as_completed(futures, timeout=WAIT))) == 40


def test_done_callbacks_run_once_and_at_once_when_already_done(make_pool):
    pool = make_pool(2)
    seen = []
    job, started, release = blocker()
    future = pool.submit(job)
    future.add_done_callback(seen.append)
    future.add_done_callback(lambda f: seen.append("second"))
    release.set()
    future.result(WAIT)
    deadline = time.monotonic() + WAIT
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert seen == [future, "second"]
    future.add_done_callback(seen.append)  # already done: runs now, in this thread
    assert seen == [future, "second", future]


def test_a_failing_callback_is_logged_not_raised(make_pool, caplog):
    pool = make_pool(1)
    future = pool.submit(int)
    future.result(WAIT)
    future.add_done_callback(lambda f: 1 / 0)
    assert "exception calling callback" in caplog.text


def test_setting_a_done_future_again_raises_invalid_state():
    future = Future()
    assert future.set_running_or_notify_cancel()
    future.set_result(1)
    with pytest.raises(cf.InvalidStateError):
        future.set_result(2)
    with pytest.raises(cf.InvalidStateError):
        future.set_exception(ValueError())
    assert future.result() == 1
    assert "finished returned int" in repr(future)


def test_repr_names_states_as_the_stdlib_future_does():
    for make in (cf.Future, Future):
        future = make()
        assert "state=pending" in repr(future)
        future.cancel()
        assert not future.set_running_or_notify_cancel()
        assert repr(future).endswith("state=cancelled>"), repr(future)


def test_asyncio_run_in_executor_accepts_the_pool(make_pool):
    pool = make_pool(2)

    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(pool, pow, 2, i) for i in range(10)))

    assert asyncio.run(main()) == [2**i for i in range(10)]


def test_worker_threads_are_named_and_start_only_when_no_idle_worker_can_take_the_job(make_pool):
    before = threading.active_count()
    pool = make_pool(3, name="crawler")
    assert threading.active_count() == before
    pool.submit(int).result(WAIT)
    assert [t.name for t in pool._core.threads] == ["crawler_0"]
    gates = [blocker() for _ in range(4)]
    for job, _, _ in gates:
        pool.submit(job)
    for _, started, _ in gates[:3]:
        assert started.wait(WAIT)
    # three jobs block three workers; the fourth waits: never more threads than workers
    assert sorted(t.name for t in pool._core.threads) == ["crawler_0", "crawler_1", "crawler_2"]
    for _, _, release in gates:
        release.set()


# -- bad input, refused before anything happens


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"workers": 0}, ValueError, "workers must be >= 1, got 0"),
        ({"workers": -3}, ValueError, "workers must be >= 1, got -3"),
        ({"workers": "4"}, TypeError, "workers must be a positive int"),
        ({"workers": True}, TypeError, "workers must be a positive int"),
        ({"workers": 2, "queue_size": 0}, ValueError, "queue_size must be >= 1, got 0"),
        ({"workers": 2, "queue_size": 1.5}, TypeError, "queue_size must be a positive int or None"),
        ({"workers": 2, "ctx": "ctx"}, TypeError, "ctx must be a Context or None, got str"),
        ({"workers": 2, "name": 3}, TypeError, "name must be a str or None"),
        ({"workers": 2**64}, ValueError, f"workers must be <= {2**63 - 1}, got {2**64}"),
        ({"workers": 2, "queue_size": 2**64}, ValueError, f"queue_size must be <= {2**63 - 1}, got {2**64}"),
        ({"workers": 2, "initializer": 3}, TypeError, "initializer must be callable or None, got int"),
        ({"workers": 2, "initargs": [1]}, TypeError, "initargs must be a tuple, got list"),
    ],
)
def test_bad_constructor_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        WorkerPool(**kwargs)


def test_bad_call_arguments_are_refused_before_anything_is_queued(make_pool):
    pool = make_pool(2)
    with pytest.raises(TypeError, match="fn must be callable, got int"):
        pool.submit(3)
    with pytest.raises(TypeError, match="fn must be callable"):
        pool.imap(None, [1])
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        pool.imap(abs, [1], window=0)
    with pytest.raises(ValueError, match=f"window must be <= {2**63 - 1}, got {2**64}"):
        pool.imap(abs, [1], window=2**64)
    with pytest.raises(ValueError, match=f"buffersize must be <= {2**63 - 1}, got {2**64}"):
        pool.map(abs, [1], buffersize=2**64)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.shutdown(timeout=-1)
    with pytest.raises(TypeError, match="ctx must be a Context"):
        pool.run(abs, [1], ctx=object())
    assert pool.stats().submitted == 0


# -- context: graceful cancellation


def test_a_job_with_a_ctx_parameter_receives_the_pools_context(make_pool):
    pool = make_pool(2)
    assert pool.submit(lambda ctx: ctx).result(WAIT) is pool.ctx
    mine, cancel = with_cancel(background())
    assert pool.submit(lambda ctx: ctx, ctx=mine).result(WAIT) is mine  # the caller's wins
    cancel()
    assert pool.submit(lambda x, *, ctx=None: (x, ctx), 1).result(WAIT) == (1, pool.ctx)
    plain = make_pool(1, pass_ctx=False)
    assert plain.submit(lambda ctx=None: ctx).result(WAIT) is None


def test_a_ctx_passed_positionally_is_not_passed_again(make_pool):
    # Code written for ThreadPoolExecutor may pass its own ctx by position: submit(fn, x, ctx).
    pool = make_pool(1)

    def handler(request, ctx):
        return request, ctx

    class Service:
        def handle(self, ctx, extra=None):
            return ctx

    assert pool.submit(handler, 1, "mine").result(WAIT) == (1, "mine")
    assert pool.submit(handler, 1).result(WAIT) == (1, pool.ctx)
    assert pool.submit(Service().handle, "mine").result(WAIT) == "mine"
    assert pool.submit(Service().handle).result(WAIT) is pool.ctx


def test_cancel_stops_dispatch_cancels_queued_and_lets_running_jobs_stop_early(make_pool):
    pool = make_pool(2)
    started = threading.Barrier(3)

    def watcher(ctx):
        started.wait(WAIT)
        return ctx.done().wait(WAIT)

    running = [pool.submit(watcher) for _ in range(2)]
    queued = [pool.submit(int) for _ in range(10)]
    started.wait(WAIT)
    pool.cancel()
    assert all(f.result(WAIT) is True for f in running)  # they saw the cancellation
    assert all(f.cancelled() for f in queued)
    assert isinstance(pool.ctx.err(), Canceled)
    with pytest.raises(RuntimeError, match="after the pool was cancelled"):
        pool.submit(int)
    assert pool.shutdown(timeout=WAIT).joined
    with pytest.raises(RuntimeError, match="after the pool was cancelled"):
        pool.submit(int)  # a shutdown after the cancel does not change the reason
    stats = pool.stats()
    assert (stats.completed, stats.cancelled, stats.queued, stats.running) == (2, 10, 0, 0)


def test_cancelling_the_parent_context_cancels_the_pool(make_pool):
    parent, cancel = with_cancel(background())
    pool = make_pool(1, ctx=parent)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    queued = pool.submit(int)
    cancel()
    assert queued.cancelled()
    assert isinstance(pool.ctx.err(), Canceled)
    release.set()


def test_a_pool_made_with_a_cancelled_context_takes_no_jobs(make_pool):
    parent, cancel = with_cancel(background())
    cancel()
    pool = make_pool(2, ctx=parent)
    assert isinstance(pool.ctx.err(), Canceled)
    with pytest.raises(RuntimeError, match="after the pool was cancelled"):
        pool.submit(int)
    with pytest.raises(Canceled):
        list(pool.imap(abs, [1, 2]))
    with pytest.raises(Canceled):
        list(pool.imap(abs, [1, 2], ordered=False))
    assert pool.stats().submitted == 0 and pool._core.threads == []


def test_shutdown_timeout_returns_in_time_and_names_what_still_runs(make_pool):
    pool = make_pool(2)

    def stubborn(seconds):
        time.sleep(seconds)

    pool.submit(stubborn, 0.6)
    time.sleep(0.05)
    t0 = time.monotonic()
    status = pool.shutdown(timeout=0.1)
    assert time.monotonic() - t0 < 0.5
    assert isinstance(status, PoolShutdownStatus) and not status.joined and not status
    assert len(status.still_running) == 1 and "stubborn(0.6)" in status.still_running[0]
    assert pool.shutdown(timeout=WAIT).joined


def test_queue_size_makes_submit_wait_for_room(make_pool):
    pool = make_pool(1, queue_size=2)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    pool.submit(int)
    pool.submit(int)
    assert pool.stats().queued == 2
    third_queued = threading.Event()

    def submit_third():
        pool.submit(int).result(WAIT)
        third_queued.set()

    thread = threading.Thread(target=submit_third)
    thread.start()
    assert not third_queued.wait(0.2)  # no room: submit waits
    release.set()
    assert third_queued.wait(WAIT)
    thread.join()
    assert pool.stats().completed == 4


def test_a_submit_waiting_for_room_fails_when_the_pool_is_cancelled(make_pool):
    pool = make_pool(1, queue_size=1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    pool.submit(int)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, pool.submit, int)))
    thread.start()
    time.sleep(0.1)
    pool.cancel()
    thread.join(WAIT)
    assert errors and "cancelled" in str(errors[0].value)
    release.set()


def test_a_submit_waiting_for_room_fails_when_the_pool_is_shut_down(make_pool):
    # shutdown() without cancel_futures leaves the queue full; a submit blocked on it must not
    # wait for a running job to end before it learns that the pool takes no more jobs.
    pool = make_pool(1, queue_size=1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    pool.submit(int)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, pool.submit, int)))
    thread.start()
    time.sleep(0.1)
    pool.shutdown(wait=False)
    thread.join(2)
    refused_in_time = not thread.is_alive()
    release.set()
    thread.join(WAIT)
    assert refused_in_time, "submit still waiting for room after shutdown"
    assert errors and "after shutdown" in str(errors[0].value)
    assert pool.shutdown(timeout=WAIT).joined
    assert pool.stats().completed == 2


def test_stats_count_exactly(make_pool):
    pool = make_pool(3)
    futures = [pool.submit(lambda i=i: 1 // (i % 4)) for i in range(400)]
    cf.wait(futures, timeout=WAIT)
    stats = pool.stats()
    assert isinstance(stats, PoolStats)
    assert stats == PoolStats(workers=3, submitted=400, queued=0, running=0,
                              completed=300, failed=100, cancelled=0)
    assert "completed=300 failed=100" in repr(pool)


# -- imap


def test_imap_streams_results_in_order_and_unordered(make_pool):
    pool = make_pool(4)
    assert list(pool.imap(lambda x: x * x, range(1000))) == [x * x for x in range(1000)]
    assert sorted(pool.imap(lambda x: x * x, range(1000), ordered=False)) == [x * x for x in range(1000)]
    assert list(pool.imap(abs, [])) == []


@pytest.mark.parametrize("ordered", [True, False])
def test_imap_keeps_at_most_window_items_in_flight(make_pool, ordered):
    pool = make_pool(4)
    pulled = AtomicInt64()
    taken = 0
    peak = 0

    def source():
        for i in range(3000):
            pulled.inc()
            yield i

    for _ in pool.imap(lambda x: x, source(), ordered=ordered, window=16):
        taken += 1
        peak = max(peak, pulled.load() - taken)
    assert taken == 3000 and peak <= 16


@pytest.mark.parametrize("ordered", [True, False])
def test_imap_raises_at_the_failing_item_and_cancels_the_rest(make_pool, ordered):
    pool = make_pool(2)
    gate = threading.Event()

    def fn(x):
        if x == 3:
            raise KeyError(x)
        if x > 3:
            gate.wait(WAIT)
        return x

    results = pool.imap(fn, range(100), ordered=ordered, window=10)
    seen = []
    with pytest.raises(KeyError):
        for value in results:
            seen.append(value)
    if ordered:
        assert seen == [0, 1, 2]
    gate.set()
    pool.shutdown()
    assert pool.stats().cancelled > 0  # in-flight items never ran
    assert pool.stats().submitted <= 10 + len(seen) + 1


@pytest.mark.parametrize("ordered", [True, False])
def test_imap_raises_an_input_error_after_the_results_read_before_it(make_pool, ordered):
    # As a pipeline does: the items read before the input failed are still worked and yielded.
    pool = make_pool(2)

    def source():
        yield from range(5)
        raise OSError("input broke")

    seen = []
    with pytest.raises(OSError, match="input broke"):
        for value in pool.imap(lambda x: x * 10, source(), ordered=ordered, window=8):
            seen.append(value)
    assert sorted(seen) == [0, 10, 20, 30, 40]
    assert pool.stats().cancelled == 0


def test_imap_stopped_early_cancels_in_flight_and_reads_no_more(make_pool):
    pool = make_pool(1)
    pulled = []
    job, started, release = blocker()
    pool.submit(job)
    results = pool.imap(lambda x: x, (pulled.append(i) or i for i in range(100)), window=5)
    assert started.wait(WAIT)
    release.set()
    assert next(results) == 0
    results.close()
    pool.shutdown()
    assert len(pulled) <= 6  # the window (5), plus at most one refill
    assert pool.stats().completed + pool.stats().cancelled == len(pulled) + 1


@pytest.mark.parametrize("ordered", [True, False])
def test_imap_ends_with_ctx_err_when_its_ctx_is_cancelled(make_pool, ordered):
    pool = make_pool(2)
    ctx, cancel = with_cancel(background())
    seen_ctx = []

    def fn(x, ctx):
        seen_ctx.append(ctx)
        ctx.done().wait(WAIT)
        return x

    threading.Timer(0.1, cancel).start()
    with pytest.raises(Canceled):
        list(pool.imap(fn, range(10), ordered=ordered, ctx=ctx))
    assert seen_ctx and all(c is ctx for c in seen_ctx)


def test_imap_ends_when_the_pool_is_cancelled(make_pool):
    pool = make_pool(1)

    def fn(x, ctx):
        ctx.done().wait(WAIT)
        return x

    threading.Timer(0.1, pool.cancel).start()
    results = []
    with pytest.raises(Canceled):
        for value in pool.imap(fn, range(10)):
            results.append(value)
    assert results == [0]  # the running job finished; the queued ones were cancelled


# -- run: Go's shape over Channels


def test_run_reads_a_jobs_channel_and_closes_results_when_done(make_pool):
    pool = make_pool(4)
    jobs = Channel(8)

    def feed():
        for i in range(500):
            jobs.send(i)
        jobs.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    run = pool.run(lambda x: x * 2, jobs)
    assert sorted(run.results) == [i * 2 for i in range(500)]  # iteration ends: results closed
    assert run.results.closed
    run.wait(WAIT)
    feeder.join()


def test_run_over_an_iterable_and_iterating_the_run(make_pool):
    pool = make_pool(3)
    assert sorted(pool.run(lambda x: -x, range(300))) == sorted(-x for x in range(300))


def test_run_stops_on_the_first_error_and_raises_it(make_pool):
    pool = make_pool(2)

    def fn(x):
        if x == 50:
            raise ValueError("bad job 50")
        return x

    run = pool.run(fn, itertools.count())  # endless: only the error stops it
    got = []
    with pytest.raises(ValueError, match="bad job 50"):
        for value in run:
            got.append(value)
    assert 50 not in got and len(got) >= 40
    assert run.ctx.err() is not None


def test_run_cancel_stops_taking_jobs(make_pool):
    pool = make_pool(2)
    run = pool.run(lambda x, ctx: x, itertools.count())
    first = [run.results.recv(timeout=WAIT) for _ in range(10)]
    run.cancel()
    rest = list(run.results)  # drains, then ends: the results channel closes
    assert len(first) == 10 and len(rest) < 1000
    run.wait(WAIT)


@pytest.mark.parametrize("how", ["shutdown", "cancel"])
def test_run_whose_workers_were_cancelled_in_the_queue_still_closes_results(make_pool, how):
    pool = make_pool(1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    run = pool.run(abs, [1, 2, 3])  # its worker loop waits in the queue behind the blocker
    if how == "shutdown":
        pool.shutdown(wait=False, cancel_futures=True)
    else:
        pool.cancel()
    release.set()
    with pytest.raises(ChannelClosed):  # not a TimeoutError: results closes, iteration ends
        run.results.recv(timeout=2)
    with pytest.raises(Canceled if how == "cancel" else cf.CancelledError):
        run.wait(2)


@pytest.mark.parametrize("how", ["shutdown", "cancel"])
def test_every_waiter_of_an_interrupted_run_raises_an_exception_of_its_own(make_pool, how):
    # one exception instance raised in many threads at once races on its __traceback__ (a
    # data race TSan reports): each wait() raises a fresh one, of the same type and message
    pool = make_pool(1)
    job, started, release = blocker()
    pool.submit(job)
    assert started.wait(WAIT)
    run = pool.run(abs, [1, 2, 3])
    pool.shutdown(wait=False, cancel_futures=True) if how == "shutdown" else pool.cancel()
    release.set()
    raised = []

    def waiter(_):
        try:
            run.wait(WAIT)
        except BaseException as exc:
            raised.append(exc)

    run_threads(8, waiter)
    assert len(raised) == 8 and len({id(exc) for exc in raised}) == 8
    assert {type(exc) for exc in raised} == {Canceled if how == "cancel" else cf.CancelledError}
    assert len({str(exc) for exc in raised}) == 1


# -- many threads at once (free-threaded build with PYTHON_GIL=0 in CI)


def test_many_submitters_exact_totals(make_pool):
    for _ in range(3):
        pool = make_pool(4)
        total = AtomicInt64()
        futures = [[] for _ in range(8)]

        def submitter(index):
            for i in range(2000):
                futures[index].append(pool.submit(total.add, i))

        run_threads(8, submitter)
        assert all(f.result(WAIT) is not None for fs in futures for f in fs)
        assert total.load() == 8 * sum(range(2000))
        stats = pool.stats()
        assert (stats.submitted, stats.completed, stats.failed) == (16000, 16000, 0)
        pool.shutdown()


def test_submit_racing_shutdown_loses_nothing(make_pool):
    for cancel_futures in (False, True, False, True):
        pool = make_pool(3)
        ran = AtomicInt64()
        accepted = [[] for _ in range(6)]
        refused = AtomicInt64()

        def submitter(index):
            for _ in range(3000):
                try:
                    accepted[index].append(pool.submit(ran.inc))
                except RuntimeError:
                    refused.inc()

        threads = [threading.Thread(target=submitter, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.005)
        pool.shutdown(cancel_futures=cancel_futures)
        for t in threads:
            t.join()
        futures = [f for fs in accepted for f in fs]
        assert len(futures) + refused.load() == 18000
        assert all(f.done() for f in futures)  # nothing left pending forever
        finished = sum(1 for f in futures if not f.cancelled())
        assert finished == ran.load()
        if not cancel_futures:
            assert finished == len(futures)


def test_concurrent_imaps_share_one_pool(make_pool):
    pool = make_pool(4)
    sums = [0] * 6

    def consumer(index):
        sums[index] = sum(pool.imap(lambda x: x + index, range(2000), ordered=index % 2 == 0))

    run_threads(6, consumer)
    assert sums == [sum(range(2000)) + 2000 * i for i in range(6)]


def test_many_threads_wait_on_one_future(make_pool):
    pool = make_pool(1)
    job, started, release = blocker()
    future = pool.submit(job)
    results = []
    waiters = [threading.Thread(target=lambda: results.append(future.result(WAIT))) for _ in range(16)]
    for t in waiters:
        t.start()
    time.sleep(0.05)
    release.set()
    for t in waiters:
        t.join()
    assert results == ["released"] * 16


def test_a_pool_dropped_without_shutdown_lets_its_workers_exit():
    pool = WorkerPool(2, name="dropped")
    futures = [pool.submit(time.sleep, 0.01) for _ in range(4)]
    threads = list(pool._core.threads)
    del pool
    gc.collect()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert all(f.done() and not f.cancelled() for f in futures)  # the queue still ran


def test_a_pool_that_ends_without_a_joined_shutdown_lets_go_of_its_parent_ctx():
    # The pool's ctx is a child of the parent: it must not stay linked there once the pool is
    # over, or a long-lived parent collects one dead pool per shutdown(wait=False) or drop.
    parent, cancel = with_cancel(background())
    pools = [WorkerPool(1, ctx=parent) for _ in range(3)]
    pools[0].submit(int).result(WAIT)
    pools[0].shutdown(wait=False)
    pools[1].submit(int).result(WAIT)
    threads = list(pools[0]._core.threads) + list(pools[1]._core.threads)
    del pools[:]  # pools[1] dropped after use, pools[2] dropped unused
    gc.collect()
    for thread in threads:
        thread.join(WAIT)
    assert parent._canceler._child_count() == 0
    assert parent.err() is None
    cancel()


def test_a_finished_run_waits_cleanly_after_the_pool_has_ended(make_pool):
    pool = make_pool(2)
    run = pool.run(lambda x: x + 1, range(50))
    assert sorted(run.results) == list(range(1, 51))
    assert pool.shutdown().joined
    deadline = time.monotonic() + WAIT
    while pool.ctx.err() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.ctx.err() is not None  # the pool tidied its context away
    run.wait(WAIT)  # the run had finished: that tidying is not its error


# -- ThreadPoolExecutor's behaviours that a drop-in needs (issue 14)


def test_the_default_worker_count_is_thread_pool_executors():
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    pool = WorkerPool()
    try:
        assert pool.workers == min(32, (count or 1) + 4)
        assert pool.workers == cf.ThreadPoolExecutor()._max_workers
    finally:
        pool.shutdown()


def test_the_initializer_runs_once_in_every_worker_thread_with_its_arguments(make_pool):
    seen = []
    local = threading.local()

    def init(tag):
        local.tag = tag
        seen.append(threading.current_thread().name)

    pool = make_pool(3, name="init", initializer=init, initargs=("ready",))
    gates = [blocker() for _ in range(3)]
    for job, _, _ in gates:
        pool.submit(job)
    for _, started, _ in gates:
        assert started.wait(WAIT)
    for _, _, release in gates:
        release.set()
    assert [pool.submit(lambda: local.tag).result(WAIT) for _ in range(6)] == ["ready"] * 6
    assert sorted(seen) == ["init_0", "init_1", "init_2"]


def test_a_failing_initializer_breaks_the_pool_like_thread_pool_executor(make_pool, caplog):
    entered = threading.Event()
    go_on = threading.Event()

    def init():
        entered.set()
        assert go_on.wait(WAIT)
        raise ValueError("no database")

    pool = make_pool(1, initializer=init)
    pending = [pool.submit(abs, -i) for i in range(5)]
    assert entered.wait(WAIT)
    go_on.set()
    for future in pending:
        with pytest.raises(cf.BrokenExecutor, match="initializer failed"):
            future.result(WAIT)
        assert isinstance(future.exception(), cf.thread.BrokenThreadPool)
    with pytest.raises(cf.thread.BrokenThreadPool, match="initializer failed"):
        pool.submit(abs, 1)
    assert "Exception in initializer" in caplog.text and "no database" in caplog.text
    assert pool.shutdown(timeout=WAIT).joined
    stats = pool.stats()
    assert (stats.submitted, stats.failed, stats.queued, stats.running) == (5, 5, 0, 0)


def test_map_with_buffersize_submits_the_first_window_at_call_time(make_pool):
    pool = make_pool(2)
    calls = []
    results = pool.map(calls.append, range(10), buffersize=3)
    assert pool.stats().submitted == 3  # before the first next(), as Python 3.14 does
    assert list(results) == [None] * 10
    assert sorted(calls) == list(range(10))
    assert pool.stats().submitted == 10


def test_settling_a_finished_future_again_names_the_future():
    future = Future()
    future.set_result(5)
    with pytest.raises(cf.InvalidStateError, match=r"FINISHED: <Future at 0x[0-9a-f]+ state=finished returned int>"):
        future.set_result(6)
    with pytest.raises(cf.InvalidStateError, match=r"FINISHED: <Future at 0x[0-9a-f]+ state=finished returned int>"):
        future.set_exception(ValueError())
    cancelled = Future()
    cancelled.cancel()
    with pytest.raises(cf.InvalidStateError, match=r"CANCELLED: <Future at 0x[0-9a-f]+ state=cancelled>"):
        cancelled.set_result(1)


def test_a_future_settled_by_hand_wakes_its_waiters_through_condition_notify_all():
    # What code written for concurrent.futures.Future does (CPython's test_exception_with_success).
    future = Future()
    got = []
    waiter = threading.Thread(target=lambda: got.append(future.exception(timeout=WAIT)))
    waiter.start()
    while not future._sleepers:
        time.sleep(0.001)
    started = time.monotonic()
    with future._condition:
        future._state = "FINISHED"
        future._exception = OSError("by hand")
        future._condition.notify_all()
    waiter.join(WAIT)
    assert isinstance(got[0], OSError)
    assert time.monotonic() - started < WAIT / 2  # woken, not timed out


def test_a_pool_can_be_asyncios_default_executor(make_pool):
    pool = make_pool(2, name="loop-pool")
    view = pool.as_thread_pool_executor()
    assert isinstance(view, cf.ThreadPoolExecutor)

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(view)
        names = await asyncio.gather(*(loop.run_in_executor(None, lambda: threading.current_thread().name)
                                       for _ in range(8)))
        return names, await asyncio.to_thread(pow, 2, 10)

    names, power = asyncio.run(main())  # asyncio.run shuts the default executor down at the end
    assert power == 2**10  # to_thread uses its own context-copying path, on the same loop
    assert set(names) <= {"loop-pool_0", "loop-pool_1"}
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int)  # the view's shutdown is the pool's


def test_submit_after_cancel_says_cancelled_and_after_shutdown_says_shutdown(make_pool):
    cancelled = make_pool(1)
    cancelled.cancel()
    with pytest.raises(RuntimeError, match="after the pool was cancelled"):
        cancelled.submit(int)
    shut = make_pool(1)
    shut.submit(int).result(WAIT)
    shut.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        shut.submit(int)
    shut.cancel()
    with pytest.raises(RuntimeError, match="after shutdown"):
        shut.submit(int)  # the first reason stays


def test_run_and_imap_on_a_cancelled_pool_raise_its_ctx_error():
    """After pool.cancel(), run() and imap() raise the pool ctx's Canceled (like every
    ctx-aware call), while submit() says the pool was cancelled (a RuntimeError, as
    ThreadPoolExecutor says after shutdown)."""
    pool = WorkerPool(2)
    pool.cancel()
    with pytest.raises(Canceled):
        list(pool.run(abs, range(10)))
    with pytest.raises(Canceled):
        list(pool.imap(abs, range(10)))
    with pytest.raises(RuntimeError, match="cancelled"):
        pool.submit(abs, 1)
    pool.shutdown()
