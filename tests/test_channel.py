"""patterns.Channel and select: Go's channel semantics, and exactly-once delivery under races.

Every test runs on both twins: the Cython one (the default) and the pure-Python one.
"""

import collections
import threading
import time

import pytest

from conftest import TSAN_BUILD, run_threads
import patterns._channel as compiled_twin
import channel_reference as python_twin
from patterns import Canceled, ChannelClosed, Recv, Selected, Send, background, with_cancel, with_timeout
from patterns import channel as public


@pytest.fixture(params=[compiled_twin, python_twin], ids=["cython", "python"])
def impl(request):
    """Both twins of Channel/select run every test."""
    return request.param


def test_public_module_uses_the_compiled_twin():
    assert public.Channel is compiled_twin.Channel and public.select is compiled_twin.select


def later(seconds, fn, *args):
    """Run fn(*args) in a thread after ``seconds``; returns the thread (join it)."""
    t = threading.Timer(seconds, fn, args)
    t.start()
    return t


def test_buffered_fifo_len_and_capacity(impl):
    ch = impl.Channel(3)
    assert ch.capacity == 3 and len(ch) == 0 and not ch.closed
    for i in range(3):
        ch.send(i)
    assert len(ch) == 3 and ch.try_send(99) is False
    assert [ch.recv() for _ in range(3)] == [0, 1, 2]
    assert ch.try_recv() == (None, False)
    assert repr(ch) == "<Channel open 0/3>"


def test_unbuffered_send_waits_for_its_receiver(impl):
    ch = impl.Channel()
    assert ch.try_send(1) is False  # nobody receiving: a rendezvous cannot complete
    got = []
    t = later(0.05, lambda: got.append(ch.recv()))
    start = time.monotonic()
    ch.send("hello")
    t.join()
    assert got == ["hello"] and time.monotonic() - start >= 0.04
    t = later(0.02, ch.send, "world")
    assert ch.recv(timeout=5) == "world"
    t.join()


def test_close_drains_then_reports_closed(impl):
    ch = impl.Channel(2)
    ch.send(1)
    ch.send(2)
    ch.close()
    assert ch.closed
    with pytest.raises(ChannelClosed, match="send on closed channel"):
        ch.send(3)
    with pytest.raises(ChannelClosed, match="send on closed channel"):
        ch.try_send(3)
    with pytest.raises(ChannelClosed, match="close of closed channel"):
        ch.close()
    assert ch.recv_ok() == (1, True) and ch.recv() == 2
    assert ch.recv_ok() == (None, False)
    with pytest.raises(ChannelClosed, match="receive from closed channel"):
        ch.recv()
    with pytest.raises(ChannelClosed):
        ch.try_recv()


def test_iteration_ends_when_closed_and_drained(impl):
    ch = impl.Channel(10)
    for i in range(5):
        ch.send(i)
    ch.close()
    assert list(ch) == [0, 1, 2, 3, 4]


def test_close_wakes_blocked_receivers_and_senders(impl):
    rx, tx = impl.Channel(), impl.Channel()
    results = []

    def receiver(_):
        results.append(rx.recv_ok())

    def sender(_):
        try:
            tx.send("x")
        except ChannelClosed:
            results.append("closed")

    threads = [threading.Thread(target=receiver, args=(0,)) for _ in range(3)]
    threads += [threading.Thread(target=sender, args=(0,)) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    rx.close()
    tx.close()
    for t in threads:
        t.join(5)
    assert sorted(map(str, results)) == sorted(["(None, False)"] * 3 + ["closed"] * 3)


def test_timeouts_leave_nothing_behind(impl):
    ch = impl.Channel(1)
    ch.send("a")
    with pytest.raises(TimeoutError, match="send timed out"):
        ch.send("b", timeout=0.02)
    with pytest.raises(TimeoutError):
        ch.send("b", timeout=0)
    assert ch.recv() == "a"
    with pytest.raises(TimeoutError, match="recv timed out"):
        ch.recv(timeout=0.02)
    assert len(ch) == 0 and ch.try_recv() == (None, False)  # the timed-out "b" was never sent
    rendezvous = impl.Channel()
    with pytest.raises(TimeoutError):
        rendezvous.send("lost?", timeout=0.02)
    assert rendezvous.try_recv() == (None, False)


def test_context_cancel_interrupts_and_a_cancelled_context_wins(impl):
    ch = impl.Channel()
    ctx, cancel = with_cancel(background())
    t = later(0.05, cancel)
    with pytest.raises(Canceled):
        ch.recv(ctx=ctx)
    t.join()
    ready = impl.Channel(1)
    ready.send(1)
    with pytest.raises(Canceled):
        ready.recv(ctx=ctx)  # cancelled before the call: raise, even though a value is ready
    assert ready.recv() == 1
    timed, _ = with_timeout(background(), 0.03)
    with pytest.raises(TimeoutError):  # DeadlineExceeded is a TimeoutError
        ch.send(1, ctx=timed)
    assert ch.try_recv() == (None, False)


def test_an_instance_whose_init_never_ran_is_unbuffered_not_a_crash():
    # __new__ without __init__: the compiled twin's wait queues exist from allocation on.
    ch = compiled_twin.Channel.__new__(compiled_twin.Channel)
    assert (ch.capacity, len(ch)) == (0, 0)
    with pytest.raises(TimeoutError):
        ch.send(1, timeout=0)
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0)
    ch.close()
    assert ch.recv_ok() == (None, False)


@pytest.mark.parametrize("bad,error", [(-1, ValueError), ("3", TypeError), (1.5, TypeError), (True, TypeError)])
def test_bad_capacity(impl, bad, error):
    with pytest.raises(error, match="capacity"):
        impl.Channel(bad)


@pytest.mark.parametrize("huge", [2**62, 2**64, 10**30])
def test_a_capacity_beyond_what_a_buffer_can_address_names_the_limit(impl, huge):
    # not a bare MemoryError or "Python int too large to convert to C ssize_t"
    with pytest.raises(ValueError, match=rf"^capacity must be <= \d+ \(the most slots a buffer can address\), got {huge}$"):
        impl.Channel(huge)


@pytest.mark.skipif(TSAN_BUILD, reason="TSan's allocator aborts on an impossible size instead of failing it")
def test_a_buffer_that_does_not_fit_in_memory_names_the_capacity():
    huge = 2**59  # addressable, but far beyond any machine's memory: refused before touching it
    with pytest.raises(MemoryError, match=rf"Channel\(capacity={huge}\): not enough memory"):
        compiled_twin.Channel(huge)


def test_bad_timeout_and_ctx_rejected_before_anything_happens(impl):
    ch = impl.Channel(1)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        ch.send(1, timeout=-1)
    with pytest.raises(TypeError, match="ctx must be a Context"):
        ch.send(1, ctx="soon")
    assert len(ch) == 0
    ch.send(1)
    with pytest.raises(TypeError, match="timeout must be a number"):
        ch.recv(timeout="1")
    assert len(ch) == 1


def test_select_takes_a_ready_case(impl):
    a, b = impl.Channel(1), impl.Channel(1)
    b.send("from b")
    assert impl.select(Recv(a), Recv(b)) == Selected(1, "from b", True)
    assert impl.select(Send(a, 5), Recv(b), timeout=1) == Selected(0, None, True)
    assert a.recv() == 5


def test_select_default_and_timeout(impl):
    a = impl.Channel()
    assert impl.select(Recv(a), default=None) is None
    assert impl.select(Recv(a), default="nothing") == "nothing"
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        impl.select(Recv(a), timeout=0.05)
    assert time.monotonic() - start >= 0.04
    with pytest.raises(TimeoutError):
        impl.select(Recv(a), timeout=0)


def test_select_blocks_until_another_thread_completes_one_case(impl):
    a, b = impl.Channel(), impl.Channel()
    t = later(0.05, b.send, "late")
    assert impl.select(Recv(a), Recv(b), timeout=5) == Selected(1, "late", True)
    t.join()
    t = later(0.05, a.recv)
    assert impl.select(Recv(b), Send(a, "out"), timeout=5) == Selected(1, None, True)
    t.join()
    assert a.try_recv() == (None, False) and b.try_recv() == (None, False)  # nothing left queued


def test_select_on_closed_channels(impl):
    a = impl.Channel()
    a.close()
    assert impl.select(Recv(a), timeout=1) == Selected(0, None, False)
    with pytest.raises(ChannelClosed):
        impl.select(Send(a, 1))
    b = impl.Channel()
    t = later(0.05, b.close)
    assert impl.select(Recv(b), timeout=5) == Selected(0, None, False)
    t.join()


def test_select_context_cancel(impl):
    ctx, cancel = with_cancel(background())
    t = later(0.05, cancel)
    with pytest.raises(Canceled):
        impl.select(Recv(impl.Channel()), ctx=ctx)
    t.join()


def test_select_bad_cases(impl):
    with pytest.raises(TypeError, match="case 1 must be Recv"):
        impl.select(Recv(impl.Channel()), impl.Channel())
    with pytest.raises(ValueError, match="block forever"):
        impl.select()
    assert impl.select(default=7) == 7


def test_select_is_fair_among_ready_cases(impl):
    a, b = impl.Channel(1), impl.Channel(1)
    wins = collections.Counter()
    for _ in range(4000):
        a.try_send(1)
        b.try_send(1)
        wins[impl.select(Recv(a), Recv(b)).index] += 1
    assert 1700 < wins[0] < 2300 and wins[0] + wins[1] == 4000


@pytest.mark.parametrize("capacity", [0, 1, 64])
@pytest.mark.parametrize("round_", range(3))
def test_every_value_delivered_exactly_once(impl, capacity, round_):
    ch = impl.Channel(capacity)
    producers, consumers, per_producer = 4, 4, 3000
    received = [[] for _ in range(consumers)]
    produced = threading.Barrier(producers, action=ch.close)  # the last producer closes

    def work(index):
        if index < producers:
            for i in range(per_producer):
                ch.send((index, i))
            produced.wait()
        else:
            received[index - producers].extend(ch)

    run_threads(producers + consumers, work)
    everything = [v for part in received for v in part]
    assert len(everything) == producers * per_producer
    assert set(everything) == {(p, i) for p in range(producers) for i in range(per_producer)}
    for part in received:  # per producer, each consumer sees values in send order
        for p in range(producers):
            seq = [i for q, i in part if q == p]
            assert seq == sorted(seq)


@pytest.mark.parametrize("round_", range(3))
def test_select_exactly_once_with_racing_timeouts(impl, round_):
    """Receivers select over two channels with short timeouts while senders race them."""
    a, b = impl.Channel(), impl.Channel(2)
    per_sender = 2000
    got = collections.Counter()
    lock = threading.Lock()
    sent = collections.Counter()
    stop = threading.Event()

    def sender(index):
        target = a if index % 2 else b
        for i in range(per_sender):
            value = (index, i)
            while True:
                try:
                    target.send(value, timeout=0.001)
                    break
                except TimeoutError:
                    continue
            with lock:
                sent[value] += 1

    def receiver(index):
        while not stop.is_set() or len(b) or sent_total() > total_got():
            try:
                chosen = impl.select(Recv(a), Recv(b), timeout=0.001)
            except TimeoutError:
                if stop.is_set() and sent_total() == total_got():
                    return
                continue
            with lock:
                got[chosen.value] += 1

    def sent_total():
        with lock:
            return sum(sent.values())

    def total_got():
        with lock:
            return sum(got.values())

    receivers = [threading.Thread(target=receiver, args=(i,)) for i in range(3)]
    for t in receivers:
        t.start()
    run_threads(4, sender)
    stop.set()
    for t in receivers:
        t.join(30)
    assert not any(t.is_alive() for t in receivers)
    assert got == sent and all(n == 1 for n in got.values()) and len(got) == 4 * per_sender


def test_len_closed_and_repr_while_other_threads_send_and_receive(impl):
    """len(), .closed and repr() read the buffer state under the channel's lock (they were
    unlocked reads racing _push: a ThreadSanitizer report under `make tsan`), and stay
    within bounds while eight threads move values."""
    ch = impl.Channel(8)
    stop = threading.Event()
    seen = []

    def watch():
        while not stop.is_set():
            n = len(ch)
            seen.append(n)
            assert 0 <= n <= 8 and not ch.closed and repr(ch).startswith("<Channel open")

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_threads(8, lambda i: [ch.send(j) if i % 2 else ch.recv(timeout=10) for j in range(2000)])
    finally:
        stop.set()
        watcher.join()
    assert len(ch) == 0 and seen
    ch.close()
    assert ch.closed and list(ch) == []


def test_timeouts_beyond_timeout_max_wait_instead_of_overflowing(impl):
    """timeout=1e10 (beyond threading.TIMEOUT_MAX) waits like any long timeout."""
    huge = threading.TIMEOUT_MAX * 2
    ch = impl.Channel()
    sender = later(0.05, ch.send, "late")
    assert ch.recv(timeout=huge) == "late"
    sender.join()
    receiver = later(0.05, ch.recv)
    ch.send("to a late receiver", timeout=huge)
    receiver.join()
    other = impl.Channel()
    sender = later(0.05, other.send, 1)
    assert impl.select(impl.Recv(ch), impl.Recv(other), timeout=huge) == impl.Selected(1, 1, True)
    sender.join()
