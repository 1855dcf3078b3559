"""Shutdown: ordered graceful shutdown, stop ingress -> drain -> close, each step time-bounded.

A service stops in three phases, always in this order::

    shutdown = Shutdown()
    shutdown.on_stop_ingress(server.stop_accepting)   # 1. no new work comes in
    shutdown.on_drain(workers, timeout=30)            # 2. work already accepted finishes
    shutdown.on_close(db.close)                       # 3. resources close, newest first
    report = shutdown.run_on_signal()                 # waits for SIGINT/SIGTERM, then runs
    sys.exit(0 if report.ok else 1)

Rules:

- Steps run one at a time: stop-ingress and drain steps in registration order, close steps in
  *reverse* registration order (like ``contextlib.ExitStack``: what was opened last closes
  first).  A phase starts only once every step of the previous one finished or timed out.
- Each step runs in a worker thread, bounded by its own ``timeout`` and by what is left of
  ``run(timeout=)``.  A step that overruns is reported as ``"timeout"`` and the shutdown moves
  on; Python cannot kill a thread, so the step keeps running in its (daemon) thread.  Once the
  overall timeout has passed, the remaining steps are not started and are reported as timed out.
- A step that raises is reported as ``"error"`` (with the exception) and the shutdown goes on.
- A drain target is used through the first of these it has: ``shutdown(wait=True)`` (an
  Executor or WorkerPool: it stops and waits; only a ``shutdown`` with a ``wait`` parameter,
  so not ``queue.Queue.shutdown``), ``wait(timeout)`` (a Group, an Event), ``join(timeout)``
  (a Thread, a Queue), else it is called.  ``timeout`` is passed when the method's signature
  has one; a ``wait`` that returns False, a ``join`` after which the thread is still alive,
  or a TimeoutError from ``wait``/``join`` means the step timed out.
- ``run()`` runs the shutdown at most once; later (or concurrent) calls return the same report.
- Every step is logged (logger ``"patterns.shutdown"`` unless one is given): start, then ok,
  failed or timed out, with its duration.

``run_on_signal()`` waits in the main thread for SIGINT/SIGTERM (Go's ``signal.NotifyContext``),
then runs the shutdown; while it runs, a second signal exits at once with ``os._exit`` and
exit code ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM, the shell's convention for
"killed by a signal") unless ``force_exit_code`` says otherwise.  ``os._exit`` flushes nothing:
buffered output that matters must be flushed as it is written.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import signal as _signal
import threading
import time
from _thread import allocate_lock as _allocate_lock
from typing import Any, Callable

from ._validate import check_timeout
from ._waiting import SLICE
from .context import Context, after_func, background, cause, signal_context

__all__ = ["Shutdown", "ShutdownReport", "StepResult"]

_PHASES = ("stop_ingress", "drain", "close")


@dataclasses.dataclass(frozen=True)
class StepResult:
    """How one step ended: ``status`` is "ok", "error" or "timeout"; ``error`` the exception, if any."""

    phase: str
    name: str
    status: str
    seconds: float
    error: BaseException | None = None

    def __str__(self) -> str:
        text = f"{self.phase:<12}  {self.name:<24}  {self.status:<7}  {self.seconds:7.3f} s"
        if self.error is not None:
            message = str(self.error)
            text += f"  {type(self.error).__name__}: {message}" if message else f"  {type(self.error).__name__}"
        return text


@dataclasses.dataclass(frozen=True)
class ShutdownReport:
    """What :meth:`Shutdown.run` did: every step in the order it ran, and the total time."""

    steps: tuple[StepResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """True if every step finished without error in time."""
        return all(step.status == "ok" for step in self.steps)

    @property
    def timed_out(self) -> tuple[StepResult, ...]:
        """The steps that overran their timeout (or were not started for lack of time)."""
        return tuple(step for step in self.steps if step.status == "timeout")

    @property
    def failed(self) -> tuple[StepResult, ...]:
        """The steps that raised."""
        return tuple(step for step in self.steps if step.status == "error")

    def __str__(self) -> str:
        if self.ok:
            head = f"shutdown ok in {self.seconds:.3f} s"
        else:
            head = (f"shutdown finished in {self.seconds:.3f} s with {len(self.failed)} failed "
                    f"and {len(self.timed_out)} timed out step(s)")
        return "\n".join([head, *(f"  {step}" for step in self.steps)])


@dataclasses.dataclass(frozen=True)
class _Step:
    phase: str
    name: str
    call: Callable[[float | None], str]  # call(timeout) -> "ok" or "timeout", or raises
    timeout: float | None


def _check_name(name: object, target: object) -> str:
    if name is None:
        name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
        return name if isinstance(name, str) else type(target).__name__
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    return name


def _has_parameter(method: Callable[..., object], name: str) -> bool:
    """Whether ``method``'s signature has a parameter ``name`` (False if it cannot be read)."""
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _call(fn: Callable[[], object]) -> Callable[[float | None], str]:
    def call(timeout: float | None) -> str:
        fn()
        return "ok"

    return call


def _drain_call(target: object) -> Callable[[float | None], str]:
    """How to drain ``target``: shutdown(wait=True) > wait(timeout) > join(timeout) > target()."""
    shutdown = getattr(target, "shutdown", None)
    if callable(shutdown) and _has_parameter(shutdown, "wait"):  # not Queue.shutdown(immediate)
        def call(timeout: float | None) -> str:
            shutdown(wait=True)
            return "ok"
        return call
    for attribute in ("wait", "join"):
        method = getattr(target, attribute, None)
        if callable(method):
            takes_timeout = _has_parameter(method, "timeout")
            alive = getattr(target, "is_alive", None) if attribute == "join" else None

            def call(timeout: float | None, method: Callable[..., Any] = method,
                     takes_timeout: bool = takes_timeout, alive: Any = alive) -> str:
                try:
                    result = method(timeout=timeout) if takes_timeout else method()
                except TimeoutError:
                    return "timeout"
                if result is False or (callable(alive) and alive()):
                    return "timeout"
                return "ok"
            return call
    if callable(target):
        return _call(target)
    raise TypeError(
        f"target must be callable or have shutdown(), wait() or join(), got {type(target).__name__}")


class Shutdown:
    """An ordered graceful shutdown: register steps, then :meth:`run` or :meth:`run_on_signal`."""

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        if logger is not None and not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
            raise TypeError(f"logger must be a logging.Logger or None, got {type(logger).__name__}")
        self._log = logger if logger is not None else logging.getLogger("patterns.shutdown")
        self._lock = threading.Lock()
        self._steps: dict[str, list[_Step]] = {phase: [] for phase in _PHASES}
        self._started = False
        self._finished = False
        self._baton = _allocate_lock()  # held until the first run() ends; later callers wait on it
        self._baton.acquire()
        self._report: ShutdownReport | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`run` has been called (registration is then closed)."""
        return self._started

    # -- registration ------------------------------------------------------------------------

    def on_stop_ingress(self, fn: Any = None, *, timeout: float | None = None, name: str | None = None) -> Any:
        """Register ``fn()`` to stop accepting new work; returns ``fn`` (usable as a decorator)."""
        if fn is None:
            return lambda f: self.on_stop_ingress(f, timeout=timeout, name=name)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self._register("stop_ingress", fn, _call(fn), timeout, name)
        return fn

    def on_drain(self, target: Any = None, *, timeout: float | None = None, name: str | None = None) -> Any:
        """Register ``target`` to wait for accepted work to finish (see the module doc); returns it."""
        if target is None:
            return lambda t: self.on_drain(t, timeout=timeout, name=name)
        self._register("drain", target, _drain_call(target), timeout, name)
        return target

    def on_close(self, fn: Any = None, *, timeout: float | None = None, name: str | None = None) -> Any:
        """Register ``fn()`` to release a resource, run in reverse registration order; returns ``fn``."""
        if fn is None:
            return lambda f: self.on_close(f, timeout=timeout, name=name)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self._register("close", fn, _call(fn), timeout, name)
        return fn

    def _register(self, phase: str, target: object, call: Callable[[float | None], str],
                  timeout: object, name: object) -> None:
        step = _Step(phase, _check_name(name, target), call, check_timeout(timeout, positive=True))
        with self._lock:
            if self._started:
                raise RuntimeError(f"cannot register a {phase} step: this Shutdown has already started")
            self._steps[phase].append(step)

    # -- running -----------------------------------------------------------------------------

    def run(self, timeout: float | None = None) -> ShutdownReport:
        """Run every step, phase by phase, within ``timeout`` seconds overall; return the report.

        Runs at most once: a later or concurrent call waits for the first and returns its report.
        """
        timeout = check_timeout(timeout, positive=True)
        with self._lock:
            first = not self._started
            self._started = True
        if not first:
            while not self._finished:  # checked too: the baton below is best effort
                if self._baton.acquire(True, SLICE):
                    self._baton.release()  # pass it on to the next waiting caller
            assert self._report is not None
            return self._report
        try:
            self._report = self._run_all(timeout)
        finally:
            if self._report is None:  # interrupted: keep "at most once" and unblock other callers
                self._report = ShutdownReport((), 0.0)
            self._finished = True
            self._baton.release()
        return self._report

    def _run_all(self, timeout: float | None) -> ShutdownReport:
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        order = (*self._steps["stop_ingress"], *self._steps["drain"], *reversed(self._steps["close"]))
        self._log.info("shutdown: starting (%d steps%s)", len(order),
                       "" if timeout is None else f", {timeout:g} s overall")
        results = [self._run_step(step, deadline) for step in order]
        report = ShutdownReport(tuple(results), time.monotonic() - start)
        log = self._log.info if report.ok else self._log.warning
        log("shutdown: %s", str(report).partition("\n")[0])
        return report

    def _run_step(self, step: _Step, deadline: float | None) -> StepResult:
        budget = step.timeout
        if deadline is not None:
            remaining = deadline - time.monotonic()
            budget = remaining if budget is None else min(budget, remaining)
            if budget <= 0:
                error = TimeoutError("not started: the shutdown's overall timeout had passed")
                self._log.warning("shutdown: %s %s: not started, overall timeout passed", step.phase, step.name)
                return StepResult(step.phase, step.name, "timeout", 0.0, error)
        self._log.info("shutdown: %s %s: start", step.phase, step.name)
        outcome: list[Any] = []
        finished = _allocate_lock()  # a plain lock, released by the worker: safe to wait on under Ctrl-C
        finished.acquire()

        def work() -> None:
            try:
                outcome.append(step.call(budget))
            except BaseException as exc:  # noqa: BLE001 - reported
                outcome.append(exc)
            finally:
                finished.release()

        began = time.monotonic()
        worker = threading.Thread(target=work, name=f"ftsync-shutdown-{step.phase}-{step.name}", daemon=True)
        worker.start()
        finish = None if budget is None else began + budget
        done = False
        while not done:
            wait = SLICE if finish is None else min(SLICE, finish - time.monotonic())
            if wait <= 0:
                break
            done = finished.acquire(True, wait)
        seconds = time.monotonic() - began
        if not done:
            self._log.warning("shutdown: %s %s: timed out after %.3f s (left running)", step.phase, step.name, seconds)
            error = TimeoutError(f"{step.phase} step {step.name!r} timed out after {budget:g} s")
            return StepResult(step.phase, step.name, "timeout", seconds, error)
        worker.join()  # it has finished its work: make sure the thread is gone too
        result = outcome[0]
        if isinstance(result, BaseException):
            self._log.error("shutdown: %s %s: failed after %.3f s: %s: %s", step.phase, step.name, seconds,
                            type(result).__name__, result, exc_info=result)
            return StepResult(step.phase, step.name, "error", seconds, result)
        if result == "timeout":
            self._log.warning("shutdown: %s %s: timed out after %.3f s", step.phase, step.name, seconds)
            error = TimeoutError(f"{step.phase} step {step.name!r} did not finish in time")
            return StepResult(step.phase, step.name, "timeout", seconds, error)
        self._log.info("shutdown: %s %s: ok in %.3f s", step.phase, step.name, seconds)
        return StepResult(step.phase, step.name, "ok", seconds)

    def run_on_signal(self, *signals: int, ctx: Context | None = None, timeout: float | None = None,
                      force_exit_code: int | None = None) -> ShutdownReport:
        """Wait for one of ``signals`` (default SIGINT, SIGTERM) or for ``ctx`` to be done, then run.

        While the shutdown runs, a second signal calls ``os._exit(force_exit_code)``, by default
        ``128 + signum``; one that arrives before the shutdown has started (a few milliseconds
        after the first) is absorbed.  The previous signal handlers are restored before returning.
        ``timeout`` is :meth:`run`'s.  Main thread only: Python runs signal handlers there.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("Shutdown.run_on_signal() must be called from the main thread "
                               "(Python delivers signals there); call run() from other threads")
        if ctx is not None and not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a Context or None, got {type(ctx).__name__}")
        if force_exit_code is not None and (isinstance(force_exit_code, bool) or not isinstance(force_exit_code, int)):
            raise TypeError(f"force_exit_code must be an int or None, got {force_exit_code!r}")
        timeout = check_timeout(timeout, positive=True)
        wanted = tuple(_signal.Signals(s) for s in signals) or (_signal.SIGINT, _signal.SIGTERM)
        sctx, stop = signal_context(background() if ctx is None else ctx, *wanted)
        try:
            woken = _allocate_lock()  # plain lock, not an Event: safe to wait on in the main thread
            woken.acquire()
            stop_waking = after_func(sctx, woken.release)
            self._log.info("shutdown: waiting for %s", ", ".join(s.name for s in wanted))
            try:
                while not woken.acquire(True, SLICE):
                    pass
            finally:
                stop_waking()

            def force(signum: int, frame: object) -> None:
                code = 128 + signum if force_exit_code is None else force_exit_code
                name = _signal.Signals(signum).name
                try:  # no logging here: a handler must not wait for a lock another thread holds
                    os.write(2, f"shutdown: {name} received again, forcing exit with code {code}\n".encode())
                finally:
                    os._exit(code)

            for s in wanted:  # replaces signal_context's handlers; stop() restores the originals
                _signal.signal(s, force)
            why = cause(sctx)
            self._log.info("shutdown: %s; starting graceful shutdown (a second signal forces exit)", why)
            return self.run(timeout)
        finally:
            stop()
