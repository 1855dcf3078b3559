"""Pipelines, fan-out and fan-in: Go's stages of threads joined by bounded Channels.

::

    with Pipeline().stage(fetch, workers=8).stage(parse, workers=2).stage(store).run(urls) as run:
        for saved in run:          # results of the last stage, as they come
            ...

- Every stage has its own threads and reads a bounded Channel (``capacity``), so a slow stage
  holds back the ones before it (backpressure) instead of letting work pile up in memory.
- ``ordered=True`` keeps a many-worker stage's output in input order; a reorder window of
  ``workers + capacity`` items bounds the memory this takes.
- The first exception in any stage (or in the source iterable) cancels the whole pipeline:
  every stage stops, every thread ends, and the consumer gets that exception once it has
  taken the results produced before it.  Cancelling the run's ``ctx`` (or its parent) ends
  it with ``ctx.err()``.
- ``run(source)`` takes any iterable (read by a feeder thread) or a Channel (read until
  closed); iterate the :class:`PipelineRun`, or read ``run.out`` as a Channel and call
  ``run.wait()`` for the first error.  ``close()`` (or leaving ``with``) cancels and joins.

:func:`fan_out` is a one-stage pipeline; :func:`fan_in` merges channels into one.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ._pipeline import feed_loop, stage_loop
from ._semaphore import Semaphore
from ._validate import check_count, check_ctx, check_timeout
from ._waiting import join_thread
from .channel import Channel, ChannelClosed
from .context import Context, ContextError, background, with_cancel

__all__ = ["Pipeline", "PipelineRun", "fan_in", "fan_out"]

DEFAULT_CAPACITY = 128


def _check_capacity(capacity: object) -> int:
    if capacity is None:
        return DEFAULT_CAPACITY
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity must be an int >= 0 or None, got {capacity!r}")
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    return capacity


def _ctx_or_background(ctx: object) -> Context:
    return check_ctx(ctx) or background()


@dataclass(frozen=True)
class _Stage:
    fn: Callable[[Any], Any]
    workers: int
    capacity: int
    ordered: bool
    name: str


class Pipeline:
    """A chain of stages; :meth:`run` starts one run of it over a source.  Reusable."""

    def __init__(self, ctx: Context | None = None) -> None:
        self._ctx = _ctx_or_background(ctx)
        self._stages: list[_Stage] = []

    def stage(self, fn: Callable[[Any], Any], workers: int = 1, *, capacity: int | None = None,
              ordered: bool = False, name: str | None = None) -> Pipeline:
        """Add a stage of ``workers`` threads calling ``fn(item)``; returns the pipeline.

        ``capacity``: size of the Channel this stage writes to (default 128; 0 is a
        rendezvous).  ``ordered``: emit results in input order even with many workers.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        stage_name = name if name is not None else getattr(fn, "__name__", f"stage{len(self._stages)}")
        self._stages.append(_Stage(fn, check_count("workers", workers), _check_capacity(capacity),
                                   bool(ordered), str(stage_name)))
        return self

    def run(self, source: Iterable[Any] | Channel) -> PipelineRun:
        """Start the stages over ``source`` (an iterable or a Channel)."""
        if not self._stages:
            raise ValueError("a pipeline needs at least one stage")
        if not isinstance(source, Channel):
            source = iter(source)  # TypeError now, not in the feeder thread
        return PipelineRun(self._stages, source, self._ctx)

    def __repr__(self) -> str:
        stages = " -> ".join(f"{s.name}x{s.workers}" for s in self._stages)
        return f"<Pipeline {stages or '(empty)'}>"


class PipelineRun:
    """One running pipeline: iterate it for the results; ``out`` is the last Channel."""

    def __init__(self, stages: list[_Stage], source: Iterator[Any] | Channel, parent: Context) -> None:
        self._parent = parent
        self._crew = crew = _Crew(parent)
        self.ctx = crew.ctx
        try:
            if isinstance(source, Channel):
                inbox = source
            else:
                inbox = Channel(stages[0].capacity)
                crew.start("source", 0, crew.feed, source, inbox)
            for stage in stages:
                out = Channel(stage.capacity)
                crew.start_stage(stage, inbox, out)
                inbox = out
        except BaseException:
            crew.cancel()
            crew.join(None)
            raise
        self.out: Channel = inbox
        # The threads hold the crew, never this object: a run dropped unfinished is collected
        # and its finalizer stops the threads.
        weakref.finalize(self, crew.cancel)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self.out.recv()
        except ChannelClosed:
            self.wait()
            raise StopIteration from None

    def wait(self, timeout: float | None = None) -> None:
        """Join every stage; raise the first stage error, else the parent ctx's error if it ended us.

        TimeoutError if the stages are still running after ``timeout`` seconds.
        """
        timeout = check_timeout(timeout)
        if not self._crew.join(timeout):
            raise TimeoutError(f"pipeline still running after {timeout} s")
        errors = self._crew.errors
        if errors:
            raise errors[0]
        err = self._parent.err()
        if err is not None:
            raise err

    def cancel(self) -> None:
        """Stop every stage now (results in flight are dropped); does not wait."""
        self._crew.cancel()

    def close(self, timeout: float | None = None) -> bool:
        """Cancel and join every thread; True when all ended within ``timeout``."""
        timeout = check_timeout(timeout)
        self._crew.cancel()
        return self._crew.join(timeout)

    def __enter__(self) -> PipelineRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def errors(self) -> list[BaseException]:
        """Every stage error so far, first first (later ones are usually consequences)."""
        return self._crew.errors


class _Crew:
    """The threads of one run and what they share: its context and its errors."""

    def __init__(self, parent: Context) -> None:
        self.ctx, self.cancel = with_cancel(parent)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def errors(self) -> list[BaseException]:
        with self._errors_lock:
            return list(self._errors)

    def start(self, name: str, index: int, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"ftsync-pipeline-{name}-{index}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def start_stage(self, stage: _Stage, inbox: Channel, out: Channel) -> None:
        left = [stage.workers]
        left_lock = threading.Lock()

        def finished() -> None:
            with left_lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                out.close()

        if stage.ordered and stage.workers > 1:
            reorder = _Reorder(stage.workers + stage.capacity, inbox, out, self.ctx)
            for i in range(stage.workers):
                self.start(stage.name, i, self.work_ordered, stage.fn, reorder, finished)
        else:
            for i in range(stage.workers):
                self.start(stage.name, i, self.work, stage.fn, inbox, out, finished)

    def feed(self, source: Iterator[Any], inbox: Channel) -> None:
        try:
            feed_loop(source, inbox.send, self.ctx)
        except BaseException as exc:
            self.fail(exc)
        finally:
            inbox.close()

    def work(self, fn: Callable[[Any], Any], inbox: Channel, out: Channel,
             finished: Callable[[], None]) -> None:
        try:
            stage_loop(fn, inbox.recv, out.send, self.ctx, ChannelClosed)
        except BaseException as exc:
            self.fail(exc)
        finally:
            finished()

    def work_ordered(self, fn: Callable[[Any], Any], reorder: _Reorder,
                     finished: Callable[[], None]) -> None:
        try:
            while True:
                taken = reorder.take()
                if taken is None:
                    return
                seq, item = taken
                reorder.put(seq, fn(item))
        except BaseException as exc:
            self.fail(exc)
        finally:
            finished()

    def fail(self, exc: BaseException) -> None:
        if self.ctx._ended_with(exc):
            return  # the run is ending by cancellation: not a new error
        with self._errors_lock:
            self._errors.append(exc)
        self.cancel()

    def join(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread is threading.current_thread():
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not join_thread(thread, left):
                return False
        return True


class _Reorder:
    """Numbers items as workers take them and releases results in that order.

    At most ``window`` items are between "taken" and "released", so one slow item holds back
    the stage instead of letting finished results pile up behind it.
    """

    def __init__(self, window: int, inbox: Channel, out: Channel, ctx: Context) -> None:
        self._window = Semaphore(window)
        self._inbox, self._out, self._ctx = inbox, out, ctx
        self._take_lock = threading.Lock()
        self._taken = 0
        self._emit_lock = threading.Lock()
        self._next = 0
        self._done: dict[int, Any] = {}

    def take(self) -> tuple[int, Any] | None:
        """The next ``(seq, item)``, or None when the input is closed."""
        self._window.acquire(ctx=self._ctx)
        with self._take_lock:
            try:
                item = self._inbox.recv(ctx=self._ctx)
            except ChannelClosed:
                self._window.release()
                return None
            seq = self._taken
            self._taken += 1
        return seq, item

    def put(self, seq: int, result: Any) -> None:
        """Hand in the result of ``seq``; send every result that is now next in line."""
        with self._emit_lock:
            self._done[seq] = result
            while self._next in self._done:
                self._out.send(self._done.pop(self._next), ctx=self._ctx)
                self._next += 1
                self._window.release()


def fan_out(fn: Callable[[Any], Any], source: Iterable[Any] | Channel, workers: int, *,
            ctx: Context | None = None, capacity: int | None = None,
            ordered: bool = False) -> PipelineRun:
    """``fn`` over ``source`` in ``workers`` threads: a one-stage :class:`Pipeline` run."""
    return Pipeline(ctx).stage(fn, workers, capacity=capacity, ordered=ordered).run(source)


def fan_in(*channels: Channel, ctx: Context | None = None, capacity: int | None = None) -> Channel:
    """Merge ``channels`` into one Channel, closed once all of them are closed (or ``ctx`` ends).

    One forwarding thread per input, as in Go; values of one input keep their order.  After
    a cancellation the output just closes: check ``ctx.err()`` to tell it from the end.
    """
    for channel in channels:
        if not isinstance(channel, Channel):
            raise TypeError(f"fan_in takes Channels, got {type(channel).__name__}")
    ctx = _ctx_or_background(ctx)
    out = Channel(_check_capacity(capacity))
    if not channels:
        out.close()
        return out
    left = [len(channels)]
    left_lock = threading.Lock()

    def forward(inbox: Channel) -> None:
        recv, send = inbox.recv, out.send
        try:
            while True:
                send(recv(ctx=ctx), ctx=ctx)
        except (ChannelClosed, ContextError):
            pass  # input (or output) closed, or ctx cancelled: this forwarder is done
        finally:
            with left_lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                out.close()

    for i, channel in enumerate(channels):
        threading.Thread(target=forward, args=(channel,), name=f"ftsync-fan-in-{i}", daemon=True).start()
    return out
