"""Channel vs queue.Queue: items per second through one producer and several consumers.

The shapes: a buffered ``Channel(128)`` against ``queue.Queue(128)`` with 1 producer and
4 consumers, and an unbuffered ``Channel()`` hand-off against ``queue.Queue(1)`` with 1 and 1.
Each round moves ITEMS items (thread start-up not timed: a barrier releases the producer);
extra_info has items/s.  Compare rows within a group.
"""

import queue
import threading
import time

import pytest

from patterns import Channel

ITEMS = 50_000
ROUNDS = 5
_STOP = object()


def _move(send, recv, consumers):
    """Seconds to push ITEMS through ``send``/``recv`` with ``consumers`` receiving threads."""
    start = threading.Barrier(consumers + 1)

    def consume():
        start.wait()
        while recv() is not _STOP:
            pass

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for i in range(ITEMS):
        send(i)
    for _ in range(consumers):
        send(_STOP)
    for t in threads:
        t.join()
    return time.perf_counter() - began


SHAPES = {
    "buffered 128, 1 producer 4 consumers": (128, 128, 4),
    "unbuffered hand-off, 1 producer 1 consumer": (0, 1, 1),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["ftsync: Channel", "queue.Queue"])
def test_channel_throughput(benchmark, shape, kind):
    channel_capacity, queue_size, consumers = SHAPES[shape]

    def one_round():
        if kind == "queue.Queue":
            q = queue.Queue(queue_size)
            return _move(q.put, q.get, consumers)
        ch = Channel(channel_capacity)
        return _move(ch.send, ch.recv, consumers)

    benchmark.group = f"channel: {shape}"
    benchmark.name = f"{kind}({channel_capacity if kind.startswith('ftsync') else queue_size})"
    seconds = benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    stats = benchmark.stats.stats
    benchmark.extra_info["items_per_s_best"] = round(ITEMS / stats.min)
    benchmark.extra_info["items_per_s_median"] = round(ITEMS / stats.median)
    assert seconds > 0
