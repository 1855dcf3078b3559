"""Semaphore vs threading.Semaphore: one acquire+release, alone and contended.

- Single thread: one round = 1000 ``acquire()`` + ``release()`` pairs (``_timing.make_loop``), so
  a round's time in microseconds reads as nanoseconds per pair.  The target: ftsync's
  ``Semaphore`` at most 0.2x ``threading.Semaphore``.
- Contended: THREADS threads share a ``Semaphore(2)``, each doing PAIRS acquire+release pairs
  from a common start (a barrier); extra_info has pairs/s.  Compare rows within a group.

ft_utils is a peer where it installs, but (0.2) it has no thread semaphore, only the asyncio
``ProcessSemaphore``: its row skips and says so.
"""

import threading
import time

import pytest

from _timing import make_loop
from patterns import Semaphore, WeightedSemaphore

GROUP_SINGLE = "semaphore acquire+release (1 thread)"
GROUP_CONTENDED = "semaphore acquire+release, 4 threads on Semaphore(2)"
THREADS = 4
PAIRS = 20_000  # per thread
ROUNDS = 5


def ft_utils_semaphore():
    concurrency = pytest.importorskip(
        "ft_utils.concurrency",
        reason="ft_utils is not installed here (it supports Python >= 3.13 only; scripts/bench-peers.sh)",
    )
    cls = getattr(concurrency, "Semaphore", None)
    if cls is None:
        pytest.skip("ft_utils has no thread semaphore (only the asyncio ProcessSemaphore)")
    return cls


SEMAPHORES = {
    "ftsync: Semaphore": (True, lambda value: Semaphore(value)),
    "ftsync: WeightedSemaphore": (True, lambda value: WeightedSemaphore(value)),
    "threading.Semaphore": (False, lambda value: threading.Semaphore(value)),
    "threading.BoundedSemaphore": (False, lambda value: threading.BoundedSemaphore(value)),
    "ft_utils: Semaphore": (False, lambda value: ft_utils_semaphore()(value)),
}


@pytest.mark.parametrize("label", SEMAPHORES)
def test_acquire_release_single_thread(bench_calls, label):
    ours, make = SEMAPHORES[label]
    sem = make(1)
    loop = make_loop("s.acquire()\ns.release()", {"s": sem})
    bench_calls(GROUP_SINGLE, f"{label}: acquire()+release()", loop, key=f"sem.{label}", ours=ours)


@pytest.mark.parametrize("label", ["ftsync: Semaphore", "threading.Semaphore"])
def test_with_single_thread(bench_calls, label):
    ours, make = SEMAPHORES[label]
    loop = make_loop("with s:\n    pass", {"s": make(1)})
    bench_calls("semaphore with (1 thread)", f"{label}: with s: pass", loop, key=f"sem_with.{label}", ours=ours)


def _contended(sem):
    """Seconds for THREADS threads to do PAIRS acquire+release pairs each; checks the bound."""
    start = threading.Barrier(THREADS + 1)
    held, over = [0], []
    count = threading.Lock()  # only to check the bound now and then, outside the timed pairs

    def work():
        acquire, release = sem.acquire, sem.release
        start.wait()
        for i in range(PAIRS):
            acquire()
            if i % 1024 == 0:
                with count:
                    held[0] += 1
                    if held[0] > 2:
                        over.append(held[0])
                    held[0] -= 1
            release()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    assert not over
    return time.perf_counter() - began


@pytest.mark.parametrize("label", ["ftsync: Semaphore", "ftsync: WeightedSemaphore", "threading.Semaphore"])
def test_acquire_release_contended(benchmark, label):
    _, make = SEMAPHORES[label]
    benchmark.group = GROUP_CONTENDED
    benchmark.name = label
    seconds = benchmark.pedantic(lambda: _contended(make(2)), rounds=ROUNDS, iterations=1)
    stats = benchmark.stats.stats
    benchmark.extra_info["pairs_per_s_best"] = round(THREADS * PAIRS / stats.min)
    benchmark.extra_info["pairs_per_s_median"] = round(THREADS * PAIRS / stats.median)
    assert seconds > 0
