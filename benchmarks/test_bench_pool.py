"""WorkerPool and Pipeline vs the stdlib: tasks (or items) per second, peers in the same run.

The shapes, each round timed from the first submit to the last result:

- ``pool submit+result``: TASKS trivial tasks submitted to a 4-worker pool, then every
  ``result()`` taken (WorkerPool vs ThreadPoolExecutor).
- ``pool map``: the same tasks through ``WorkerPool.imap`` (ordered and not), ``WorkerPool.map``
  and ``ThreadPoolExecutor.map``.
- ``pipeline 3 stages``: ITEMS items through three one-thread stages joined by bounded
  buffers of 128: ``Pipeline`` vs threads over ``queue.Queue(128)`` (and ft_utils'
  ``StdConcurrentQueue(128)``, its drop-in for queue.Queue, where it installs).
- ``pool CPU-bound``: CPU_TASKS pure-Python tasks on WorkerPool(1) and WorkerPool(2): on a
  free-threaded build with PYTHON_GIL=0 two workers should use both cores.

ft_utils' ``BatchExecutor`` is not a peer: it batches calls of one function in the calling
thread (``ft_utils.local``), it runs nothing in other threads.
"""

import concurrent.futures as cf
import queue
import threading

import pytest

from conftest import record_throughput
from patterns import Pipeline, WorkerPool

TASKS = 20_000
ITEMS = 50_000
CPU_TASKS = 16
ROUNDS = 5
WORKERS = 4
_STOP = object()


def trivial(x):
    return x


def cpu_bound(n):
    """About 10 ms of pure-Python arithmetic."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _throughput(benchmark, group, label, one_round, count, *, key, ours):
    benchmark.group = group
    benchmark.name = label
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    stats = benchmark.stats.stats
    best, median = count / stats.min, count / stats.median
    benchmark.extra_info.update(per_s_best=round(best), per_s_median=round(median))
    record_throughput(group, label, best, median, key=key, ours=ours)


EXECUTORS = {
    "ftsync: WorkerPool(4)": (True, lambda: WorkerPool(WORKERS)),
    "ThreadPoolExecutor(4)": (False, lambda: cf.ThreadPoolExecutor(WORKERS)),
}


@pytest.mark.parametrize("label", EXECUTORS)
def test_submit_then_result(benchmark, label):
    ours, make = EXECUTORS[label]
    with make() as executor:
        executor.submit(trivial, 0).result()  # threads started outside the timing

        def one_round():
            futures = [executor.submit(trivial, i) for i in range(TASKS)]
            for future in futures:
                future.result()

        _throughput(benchmark, f"pool submit+result, {TASKS} trivial tasks", label, one_round, TASKS,
                    key=f"pool.submit.{'ours' if ours else 'tpe'}", ours=ours)


MAPS = {
    "ftsync: WorkerPool(4).imap": (True, lambda ex: ex.imap(trivial, range(TASKS))),
    "ftsync: WorkerPool(4).imap(ordered=False)": (True, lambda ex: ex.imap(trivial, range(TASKS), ordered=False)),
    "ftsync: WorkerPool(4).map": (True, lambda ex: ex.map(trivial, range(TASKS))),
    "ThreadPoolExecutor(4).map": (False, lambda ex: ex.map(trivial, range(TASKS))),
}


@pytest.mark.parametrize("label", MAPS)
def test_map(benchmark, label):
    ours, run = MAPS[label]
    make = EXECUTORS["ftsync: WorkerPool(4)" if ours else "ThreadPoolExecutor(4)"][1]
    with make() as executor:
        executor.submit(trivial, 0).result()

        def one_round():
            for _ in run(executor):
                pass

        key = {"ftsync: WorkerPool(4).imap": "pool.imap", "ThreadPoolExecutor(4).map": "pool.map.tpe",
               "ftsync: WorkerPool(4).imap(ordered=False)": "pool.imap_unordered"}.get(label)
        _throughput(benchmark, f"pool map, {TASKS} trivial tasks", label, one_round, TASKS, key=key, ours=ours)


def inc(x):
    return x + 1


def queue_pipeline(make_queue):
    """Three threads joined by bounded queues, fed by a fourth; the caller drains the last."""
    queues = [make_queue() for _ in range(4)]

    def stage(i):
        get, put = queues[i].get, queues[i + 1].put
        while True:
            item = get()
            if item is _STOP:
                put(_STOP)
                return
            put(inc(item))

    def feed():
        put = queues[0].put
        for i in range(ITEMS):
            put(i)
        put(_STOP)

    threads = [threading.Thread(target=stage, args=(i,)) for i in range(3)] + [threading.Thread(target=feed)]
    for t in threads:
        t.start()
    get, count = queues[3].get, 0
    while get() is not _STOP:
        count += 1
    for t in threads:
        t.join()
    assert count == ITEMS


def ft_utils_queue():
    concurrency = pytest.importorskip(
        "ft_utils.concurrency",
        reason="ft_utils is not installed here (it supports Python >= 3.13 only; scripts/bench-peers.sh)",
    )
    return lambda: concurrency.StdConcurrentQueue(128)


def ftsync_pipeline():
    run = Pipeline().stage(inc, capacity=128).stage(inc, capacity=128).stage(inc, capacity=128).run(range(ITEMS))
    assert sum(1 for _ in run) == ITEMS


PIPELINES = {
    "ftsync: Pipeline (Channel(128) between stages)": (True, lambda: ftsync_pipeline),
    "threads + queue.Queue(128)": (False, lambda: lambda: queue_pipeline(lambda: queue.Queue(128))),
    "threads + ft_utils StdConcurrentQueue(128)": (False, lambda: (lambda make: lambda: queue_pipeline(make))(ft_utils_queue())),
}


@pytest.mark.parametrize("label", PIPELINES)
def test_three_stage_pipeline(benchmark, label):
    ours, make = PIPELINES[label]
    one_round = make()
    key = {"threads + queue.Queue(128)": "pipeline.queue"}.get(label, "pipeline.ours" if ours else None)
    _throughput(benchmark, f"pipeline 3 stages, {ITEMS} items", label, one_round, ITEMS, key=key, ours=ours)


@pytest.mark.parametrize("workers", [1, 2])
def test_cpu_bound_scaling(benchmark, workers):
    with WorkerPool(workers) as pool:
        pool.submit(trivial, 0).result()

        def one_round():
            for future in [pool.submit(cpu_bound, 200_000) for _ in range(CPU_TASKS)]:
                future.result()

        _throughput(benchmark, f"pool CPU-bound, {CPU_TASKS} pure-Python tasks", f"ftsync: WorkerPool({workers})",
                    one_round, CPU_TASKS, key=f"pool.cpu.{workers}", ours=True)
