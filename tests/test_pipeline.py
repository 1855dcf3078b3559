"""patterns.pipeline: stages over bounded Channels, ordering, backpressure, errors, teardown."""

import gc
import random
import threading
import time

import pytest

from atomics import AtomicInt64
from conftest import run_threads
from patterns import Canceled, Channel, Pipeline, PipelineRun, background, fan_in, fan_out, with_cancel

WAIT = 10


def pipeline_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("ftsync-pipeline-", "ftsync-fan-in-"))]


def test_three_stages_transform_every_item_in_order():
    run = Pipeline().stage(lambda x: x + 1).stage(lambda x: x * 2).stage(str).run(range(1000))
    assert isinstance(run, PipelineRun)
    assert list(run) == [str((x + 1) * 2) for x in range(1000)]
    assert not pipeline_threads()


def test_many_workers_unordered_lose_and_duplicate_nothing():
    for _ in range(3):
        run = Pipeline().stage(lambda x: x * 3, workers=8).stage(lambda x: x + 1, workers=4).run(range(20000))
        assert sorted(run) == [x * 3 + 1 for x in range(20000)]


def test_ordered_stage_keeps_input_order_with_many_workers():
    def jitter(x):
        time.sleep(random.random() / 2000)
        return x

    for _ in range(3):
        run = Pipeline().stage(jitter, workers=6, ordered=True, capacity=4).stage(lambda x: -x).run(range(2000))
        assert list(run) == [-x for x in range(2000)]


def test_a_channel_source_is_read_until_closed_and_out_is_a_channel():
    source = Channel(4)

    def produce():
        for i in range(300):
            source.send(i)
        source.close()

    producer = threading.Thread(target=produce)
    producer.start()
    run = Pipeline().stage(lambda x: x * x, workers=3).run(source)
    assert isinstance(run.out, Channel)
    assert sorted(run.out) == [x * x for x in range(300)]
    run.wait(WAIT)
    producer.join()
    assert not pipeline_threads()


def test_backpressure_bounds_how_far_the_source_is_read_ahead():
    pulled = AtomicInt64()

    def source():
        for i in range(5000):
            pulled.inc()
            yield i

    run = Pipeline().stage(lambda x: x, capacity=4).stage(lambda x: x, capacity=4).run(source())
    # feeder channel 4 + stage channels 4 + 4, plus one item in each of 3 threads' hands
    bound = 4 + 4 + 4 + 3
    ahead = 0
    for taken, _ in enumerate(run, start=1):
        if taken % 250 == 0:
            time.sleep(0.01)  # a slow consumer: let the stages fill up
            ahead = max(ahead, pulled.load() - taken)
    assert ahead <= bound
    assert pulled.load() == 5000


def test_ordered_stage_does_not_run_ahead_of_a_slow_item():
    gate = threading.Event()
    started = AtomicInt64()

    def fn(x):
        started.inc()
        if x == 0:
            gate.wait(WAIT)
        return x

    with Pipeline().stage(fn, workers=4, ordered=True, capacity=2).run(range(1000)) as run:
        time.sleep(0.2)
        assert started.load() <= 4 + 2  # the reorder window: workers + capacity
        gate.set()
        assert list(run) == list(range(1000))


def test_an_error_cancels_every_stage_and_reaches_the_consumer():
    def middle(x):
        if x == 500:
            raise ValueError("item 500 is bad")
        return x

    run = Pipeline().stage(lambda x: x, workers=2).stage(middle, workers=3).stage(lambda x: x).run(range(10**9))
    got = []
    with pytest.raises(ValueError, match="item 500 is bad"):
        for value in run:
            got.append(value)
    assert 500 not in got
    assert run.ctx.err() is not None
    assert not pipeline_threads()  # the endless source was abandoned, every thread ended


def test_an_error_in_the_source_iterable_is_raised():
    def source():
        yield from range(10)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Pipeline().stage(lambda x: x).run(source()))
    assert not pipeline_threads()


def test_cancelling_the_parent_context_ends_the_run_with_its_error():
    ctx, cancel = with_cancel(background())
    run = Pipeline(ctx).stage(lambda x: x, workers=2).run(iter(int, 1))  # endless zeros
    assert next(run) == 0
    cancel()
    with pytest.raises(Canceled):
        for _ in run:
            pass
    assert not pipeline_threads()


def test_leaving_the_with_block_early_tears_everything_down():
    with Pipeline().stage(lambda x: x, workers=4).stage(lambda x: x, workers=2).run(iter(int, 1)) as run:
        for i, _ in enumerate(run):
            if i == 100:
                break
    assert not pipeline_threads()


def test_close_cancels_and_joins():
    run = Pipeline().stage(time.sleep, workers=2).run([0.01] * 1000)
    assert run.close(timeout=WAIT)
    assert not pipeline_threads()


def test_a_dropped_run_stops_its_threads():
    run = Pipeline().stage(lambda x: x).run(iter(int, 1))
    next(run)
    del run
    gc.collect()
    deadline = time.monotonic() + WAIT
    while pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pipeline_threads()


def test_a_pipeline_is_reusable():
    pipe = Pipeline().stage(lambda x: x + 1, workers=2)
    assert sorted(pipe.run(range(10))) == list(range(1, 11))
    assert sorted(pipe.run(range(5))) == list(range(1, 6))
    assert "<lambda>x2" in repr(pipe)


def test_fan_out_runs_one_stage_in_many_threads():
    assert sorted(fan_out(lambda x: x * 2, range(1000), 8)) == [x * 2 for x in range(1000)]
    assert list(fan_out(lambda x: x * 2, range(1000), 8, ordered=True)) == [x * 2 for x in range(1000)]


def test_fan_in_merges_and_closes_when_every_input_closed():
    inputs = [Channel(2) for _ in range(3)]
    merged = fan_in(*inputs)

    def produce(index):
        for i in range(200):
            inputs[index].send((index, i))
        inputs[index].close()

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(3)]
    for t in producers:
        t.start()
    values = list(merged)
    for t in producers:
        t.join()
    assert sorted(values) == sorted((c, i) for c in range(3) for i in range(200))
    for c in range(3):  # each input's values keep their order
        assert [i for ch, i in values if ch == c] == list(range(200))
    assert not pipeline_threads()


def test_fan_in_closes_its_output_when_ctx_is_cancelled():
    ctx, cancel = with_cancel(background())
    never = Channel()
    merged = fan_in(never, ctx=ctx)
    cancel()
    assert list(merged) == []
    deadline = time.monotonic() + WAIT
    while pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pipeline_threads()
    assert list(fan_in()) == []


def test_many_consumers_of_one_run_out_channel_get_each_item_once():
    run = Pipeline().stage(lambda x: x, workers=4).run(range(30000))
    totals = [0] * 6

    def consume(index):
        totals[index] = sum(run.out)

    run_threads(6, consume)
    run.wait(WAIT)
    assert sum(totals) == sum(range(30000))


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: Pipeline().stage(3), TypeError, "fn must be callable, got int"),
        (lambda: Pipeline().stage(abs, workers=0), ValueError, "workers must be >= 1, got 0"),
        (lambda: Pipeline().stage(abs, workers=2.0), TypeError, "workers must be a positive int"),
        (lambda: Pipeline().stage(abs, capacity=-1), ValueError, "capacity must be >= 0, got -1"),
        (lambda: Pipeline(ctx="x"), TypeError, "ctx must be a Context or None, got str"),
        (lambda: Pipeline().run([1]), ValueError, "a pipeline needs at least one stage"),
        (lambda: Pipeline().stage(abs).run(5), TypeError, "not iterable"),
        (lambda: fan_in([1, 2]), TypeError, "fan_in takes Channels, got list"),
    ],
)
def test_bad_arguments_are_refused_before_any_thread_starts(build, error, message):
    with pytest.raises(error, match=message):
        build()
    assert not pipeline_threads()
