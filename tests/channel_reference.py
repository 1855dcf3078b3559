"""Channel and select in Python: the reference the compiled ``patterns._channel`` is tested against.

The same algorithm, written to be read: tests/test_channel.py runs every test on both, so a
change to one that the other does not share shows up as a failing twin.  It is not shipped:
it uses ftsync's compiled atomics, so it could never stand in for a build without extensions.

How it works: each blocked operation parks on a waiter of its own (a lock it sleeps on) and
queues that waiter on the channel.  The thread that completes it first *claims* the waiter by
an atomic compare-and-swap (``atomics.AtomicInt64``), then hands the value over directly and
wakes it: no thread wakes just to find its value taken, and a ``select`` waiter queued on many
channels is completed by exactly one of them.  Timeouts and context cancellation claim the
waiter the same way, so an operation either completes or fails, never both.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any, Iterator

from atomics import AtomicInt64

from patterns._channel_base import NO_DEFAULT as _NO_DEFAULT
from patterns._channel_base import ChannelClosed, Recv, Selected, Send, check_capacity, check_cases
from patterns._parking import OUTCOMES
from patterns._validate import check_wait
from patterns._waiting import wait_until
from patterns.context import Context

__all__ = ["Channel", "select"]

_WAITING, _TIMED_OUT, _CANCELED = OUTCOMES


class _Waiter:
    """One blocked operation (or one blocked select): a parking lock and a claimable state.

    Each thread reuses one waiter (see _waiter_for_this_thread) once nothing can reach it any
    more: it was dequeued everywhere under the channels' locks, and no context waker for it
    is still pending.
    """

    __slots__ = ("_parker", "_state", "value", "ok", "closed", "reusable")

    def __init__(self) -> None:
        self._parker = threading.Lock()
        self._parker.acquire()
        self._state = AtomicInt64(_WAITING)
        self.value: Any = None
        self.ok = False
        self.closed = False  # the case completed because its channel was closed
        self.reusable = True

    def reset(self) -> None:
        self._state.store(_WAITING)
        self.value = None
        self.ok = False
        self.closed = False

    def claim(self, case: int) -> bool:
        """Win the right to complete this waiter with ``case``; False if someone else did."""
        return self._state.compare_and_swap(_WAITING, case)

    @property
    def case(self) -> int:
        return self._state.load()

    def wake(self) -> None:
        self._parker.release()

    def park(self, timeout: float | None, ctx: Context | None) -> int:
        """Sleep until claimed; return the winning case, or _TIMED_OUT / _CANCELED."""
        token = None
        if ctx is not None and ctx._cancellable:
            token = object()
            if not ctx._add_waker(token, self._cancel):
                self._cancel()
        try:
            if not wait_until(self._acquire_for, None if timeout is None else max(timeout, 0.0)):
                if self.claim(_TIMED_OUT):
                    return _TIMED_OUT
                self._parker.acquire()  # claimed meanwhile: the claimer is about to wake us
        finally:
            if token is not None and not ctx._remove_waker(token):
                self.reusable = False  # a canceller may still call self._cancel later
        return self._state.load()

    def _acquire_for(self, piece: float | None) -> bool:
        return self._parker.acquire(timeout=-1 if piece is None else piece)

    def _cancel(self) -> None:
        if self.claim(_CANCELED):
            self._parker.release()


_local = threading.local()


def _waiter_for_this_thread() -> _Waiter:
    """This thread's reusable waiter, reset (a new one if the last cannot be reused)."""
    waiter = getattr(_local, "waiter", None)
    if waiter is None or not waiter.reusable:
        waiter = _local.waiter = _Waiter()
    else:
        waiter.reset()
    return waiter


class Channel:
    """A Go channel for threads: bounded FIFO, close(), iteration, and :func:`select`.

    Every blocking call takes ``timeout=`` (TimeoutError when it passes) and ``ctx=`` (raises
    ``ctx.err()`` when the context is cancelled); neither ever loses or duplicates a value.
    """

    __slots__ = ("_lock", "_buffer", "_capacity", "_closed", "_receivers", "_senders", "__weakref__")

    def __init__(self, capacity: int = 0) -> None:
        check_capacity(capacity)
        self._lock = threading.Lock()
        self._buffer: deque[Any] = deque()
        self._capacity = capacity
        self._closed = False
        # queued (waiter, case, value) of blocked receivers and senders
        self._receivers: deque[tuple[_Waiter, int, Any]] = deque()
        self._senders: deque[tuple[_Waiter, int, Any]] = deque()

    @property
    def capacity(self) -> int:
        """How many values the buffer holds (0: unbuffered, a rendezvous)."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """Whether close() was called (values may still be buffered)."""
        return self._closed

    def __len__(self) -> int:
        """How many values are buffered now."""
        return len(self._buffer)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {state} {len(self._buffer)}/{self._capacity}>"

    # -- the operations, each tried under the lock without blocking ----------------------------

    def _send_now(self, value: Any) -> bool:
        """With the lock held: hand ``value`` to a receiver or buffer it; False if neither."""
        if self._closed:
            raise ChannelClosed("send on closed channel")
        receivers = self._receivers
        while receivers:
            waiter, case, _ = receivers.popleft()
            if waiter._state.compare_and_swap(_WAITING, case):  # claim, inlined: the hot path
                waiter.value = value
                waiter.ok = True
                waiter._parker.release()
                return True
        if len(self._buffer) < self._capacity:
            self._buffer.append(value)
            return True
        return False

    def _recv_now(self) -> tuple[Any, bool] | None:
        """With the lock held: ``(value, True)``, ``(None, False)`` when closed and drained, or None."""
        senders = self._senders
        if self._buffer:
            value = self._buffer.popleft()
            while senders:  # a blocked sender's value takes the freed slot
                waiter, case, sent = senders.popleft()
                if waiter.claim(case):
                    self._buffer.append(sent)
                    waiter.wake()
                    break
            return value, True
        while senders:
            waiter, case, sent = senders.popleft()
            if waiter.claim(case):
                waiter.wake()
                return sent, True
        if self._closed:
            return None, False
        return None

    def _dequeue(self, waiter: _Waiter) -> None:
        """Remove a waiter that gave up (timeout, cancel, another select case) from the queues."""
        with self._lock:
            for queue in (self._receivers, self._senders):
                for entry in [e for e in queue if e[0] is waiter]:
                    queue.remove(entry)

    # -- sending -------------------------------------------------------------------------------

    def send(self, value: Any, timeout: float | None = None, ctx: Context | None = None) -> None:
        """Send ``value``, blocking while the channel is full (unbuffered: until received).

        Raises ChannelClosed if the channel is or becomes closed, TimeoutError after
        ``timeout`` seconds, ``ctx.err()`` if ``ctx`` is (or gets) cancelled: a cancelled
        context wins even over a ready channel.  On any of these the value is not sent.
        """
        if timeout is not None or ctx is not None:
            timeout, ctx = check_wait(timeout, ctx)
        with self._lock:
            buffer = self._buffer
            if len(buffer) < self._capacity and not self._receivers and not self._closed:
                buffer.append(value)  # the common case, inlined
                return
            if self._send_now(value):
                return
            if timeout == 0:
                raise TimeoutError("send timed out: channel full")
            waiter = _waiter_for_this_thread()
            self._senders.append((waiter, 0, value))
        self._finish_blocked(waiter, timeout, ctx, "send")

    def try_send(self, value: Any) -> bool:
        """Send without blocking; False if it would block.  Raises ChannelClosed if closed."""
        with self._lock:
            return self._send_now(value)

    # -- receiving -----------------------------------------------------------------------------

    def recv_ok(self, timeout: float | None = None, ctx: Context | None = None) -> tuple[Any, bool]:
        """Receive: ``(value, True)``, or ``(None, False)`` once the channel is closed and drained.

        Blocks while empty; TimeoutError after ``timeout`` seconds; ``ctx.err()`` on cancel.
        """
        if timeout is not None or ctx is not None:
            timeout, ctx = check_wait(timeout, ctx)
        with self._lock:
            got = self._recv_now()
            if got is not None:
                return got
            if timeout == 0:
                raise TimeoutError("recv timed out: channel empty")
            waiter = _waiter_for_this_thread()
            self._receivers.append((waiter, 0, None))
        self._finish_blocked(waiter, timeout, ctx, "recv")
        value, ok = waiter.value, waiter.ok
        waiter.value = None  # do not keep the value alive in the cached waiter
        return value, ok

    def recv(self, timeout: float | None = None, ctx: Context | None = None) -> Any:
        """Receive a value; raises ChannelClosed once the channel is closed and drained."""
        if timeout is None and ctx is None:
            with self._lock:
                if self._buffer and not self._senders:
                    return self._buffer.popleft()  # the common case, inlined
        value, ok = self.recv_ok(timeout, ctx)
        if not ok:
            raise ChannelClosed("receive from closed channel")
        return value

    def try_recv(self) -> tuple[Any, bool]:
        """Receive without blocking: ``(value, True)``, or ``(None, False)`` if nothing is ready.

        Raises ChannelClosed once the channel is closed and drained.
        """
        with self._lock:
            got = self._recv_now()
        if got is None:
            return None, False
        if not got[1]:
            raise ChannelClosed("receive from closed channel")
        return got

    def __iter__(self) -> Iterator[Any]:
        """Receive until the channel is closed and drained."""
        while True:
            value, ok = self.recv_ok()
            if not ok:
                return
            yield value

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """No more sends: wake every blocked receiver (closed) and sender (ChannelClosed)."""
        with self._lock:
            if self._closed:
                raise ChannelClosed("close of closed channel")
            self._closed = True
            # claim under the lock: once a waiter is dequeued nobody may claim it any more
            for queue in (self._receivers, self._senders):
                for waiter, case, _ in queue:
                    if waiter.claim(case):
                        waiter.closed = True
                        waiter.wake()
                queue.clear()

    # -- blocking ------------------------------------------------------------------------------

    def _finish_blocked(self, waiter: _Waiter, timeout: float | None, ctx: Context | None, what: str) -> None:
        outcome = waiter.park(timeout, ctx)
        if outcome == _TIMED_OUT:
            self._dequeue(waiter)
            raise TimeoutError(f"{what} timed out after {timeout} s")
        if outcome == _CANCELED:
            self._dequeue(waiter)
            ctx.raise_if_done()
        if waiter.closed and what == "send":
            raise ChannelClosed("send on closed channel")


def _attempt(case: Recv | Send, index: int) -> Selected | None:
    """With the channel's lock held: perform ``case`` now if it can run without blocking."""
    channel = case.channel
    if type(case) is Send:
        return Selected(index, None, True) if channel._send_now(case.value) else None
    got = channel._recv_now()
    return None if got is None else Selected(index, got[0], got[1])


def select(*cases: Recv | Send, timeout: float | None = None, ctx: Context | None = None,
           default: Any = _NO_DEFAULT) -> Selected | Any:
    """Perform exactly one of ``cases`` (``Recv(ch)`` / ``Send(ch, value)``), Go's ``select``.

    Among cases ready at once, one is chosen at random (fairly).  With ``default=`` given,
    return it at once when no case is ready (Go's ``default:`` clause); otherwise block until
    one is, raising TimeoutError after ``timeout`` seconds or ``ctx.err()`` on cancel.  A
    receive from a closed channel is ready with ``ok=False``; a send to one raises
    ChannelClosed.  Returns ``Selected(index, value, ok)``.
    """
    check_cases(cases, Channel)
    timeout, ctx = check_wait(timeout, ctx)
    if not cases and default is _NO_DEFAULT and timeout is None and ctx is None:
        raise ValueError("select() with no cases, no default, no timeout and no ctx would block forever")
    order = random.sample(range(len(cases)), len(cases))
    # Hold every channel's lock, taken in one global order (by id) so that selects cannot
    # deadlock each other, while looking for a ready case and then queueing on all of them:
    # nobody can complete this select before it is queued everywhere.
    channels = sorted({id(c.channel): c.channel for c in cases}.values(), key=id)
    for channel in channels:
        channel._lock.acquire()
    try:
        for i in order:
            chosen = _attempt(cases[i], i)
            if chosen is not None:
                return chosen
        if default is not _NO_DEFAULT:
            return default
        if timeout == 0:
            raise TimeoutError("select timed out: no case ready")
        waiter = _waiter_for_this_thread()
        for i in order:
            case = cases[i]
            if type(case) is Send:
                case.channel._senders.append((waiter, i, case.value))
            else:
                case.channel._receivers.append((waiter, i, None))
    finally:
        for channel in reversed(channels):
            channel._lock.release()

    try:
        outcome = waiter.park(timeout, ctx)
    finally:
        for channel in channels:
            channel._dequeue(waiter)
    if outcome == _TIMED_OUT:
        raise TimeoutError(f"select timed out after {timeout} s")
    if outcome == _CANCELED:
        ctx.raise_if_done()
    if type(cases[outcome]) is Send:
        if waiter.closed:
            raise ChannelClosed("send on closed channel")
        return Selected(outcome, None, True)
    value, waiter.value = waiter.value, None
    return Selected(outcome, value, waiter.ok)
