"""Many threads on one atomic: totals must be exact on every build, free-threaded above all.

Each test runs several rounds so that a lost update has many chances to show.
"""

import pytest

from atomics import AtomicBool, AtomicCounter, AtomicInt64
from conftest import run_threads, stress_rounds

THREADS = 8
OPS_PER_THREAD = stress_rounds(200_000)
ROUNDS = 3


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_mixed_operations_on_one_atomic_int64(round_):
    counter = AtomicInt64()
    high = AtomicInt64(-1)
    iterations = OPS_PER_THREAD // 4  # four operations each

    def work(index):
        inc, add, cas, fetch_max = counter.inc, counter.add, counter.compare_exchange, high.fetch_max
        seen = 0
        base = index * iterations
        for i in range(iterations):
            seen = inc()
            add(3)
            expected = seen
            while True:
                swapped, expected = cas(expected, expected + 1)
                if swapped:
                    break
            fetch_max(base + i)

    run_threads(THREADS, work)
    assert counter.load() == THREADS * iterations * 5
    assert high.load() == THREADS * iterations - 1


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_update_cas_loop_is_exact(round_):
    a = AtomicInt64()
    n = stress_rounds(20_000)

    def work(index):
        for _ in range(n):
            a.update(lambda v: v + 2)

    run_threads(THREADS, work)
    assert a.load() == THREADS * n * 2


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize("through", ["counter", "handles", "both"])
def test_atomic_counter_is_exact(round_, through):
    counter = AtomicCounter()

    def work(index):
        handle = counter.handle()
        use_handle = through == "handles" or (through == "both" and index % 2)
        add = handle.inc if use_handle else counter.inc
        for _ in range(OPS_PER_THREAD):
            add()
        # the handle is dropped here: its count must move into the counter

    run_threads(THREADS, work)
    assert counter.value() == THREADS * OPS_PER_THREAD


def test_counter_reads_and_resets_while_threads_add():
    counter = AtomicCounter()
    taken = AtomicInt64()
    n = stress_rounds(50_000)

    def work(index):
        if index == 0:  # the reader resets as it goes; the rest add
            for _ in range(200):
                taken.add(counter.reset())
                counter.value()
        else:
            h = counter.handle()
            for i in range(n):
                (h.inc if i % 2 else counter.inc)()

    run_threads(THREADS, work)
    assert taken.load() + counter.value() == (THREADS - 1) * n


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_atomic_bool_test_and_set_is_a_lock(round_):
    flag = AtomicBool()
    box = [0]
    n = stress_rounds(20_000)

    def work(index):
        for _ in range(n):
            while flag.test_and_set():
                pass
            box[0] += 1  # a plain read-modify-write, safe only under the spinlock
            flag.clear()

    run_threads(THREADS, work)
    assert box[0] == THREADS * n and flag.load() is False


def test_compare_and_swap_admits_exactly_one_winner_per_value():
    a = AtomicInt64()
    wins = AtomicCounter()
    target = stress_rounds(10_000)

    def work(index):
        h = wins.handle()
        while (current := a.load()) < target:
            if a.compare_and_swap(current, current + 1):
                h.inc()

    run_threads(THREADS, work)
    assert a.load() == target and wins.value() == target
