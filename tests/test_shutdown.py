"""patterns.Shutdown: phase order, timeouts, drain targets, logging, signals, and a server end to end."""

import concurrent.futures
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import TSAN_BUILD

# The server subprocess's own waits: under TSan a cold interpreter compiles the stdlib it imports
# (the TSan build installs no bytecode) and runs 5-20 times slower, so it gets ten times longer.
SERVER_PATIENCE = 10 if TSAN_BUILD else 1

from patterns import Group, Shutdown, ShutdownReport, StepResult, with_cancel

PROGRAM = Path(__file__).parent / "programs" / "shutdown_server.py"


def join_leftover_steps(timeout=10):
    """Join the worker threads of steps that timed out (after the test released them)."""
    for thread in threading.enumerate():
        if thread.name.startswith("ftsync-shutdown-"):
            thread.join(timeout)
            assert not thread.is_alive()


def join_signal_helpers(timeout=10):
    """Join the short-lived daemon threads a signal leaves (signal_context's cancel, after_func)."""
    for thread in threading.enumerate():
        if thread.name in ("ftsync-signal", "ftsync-after-func"):
            thread.join(timeout)
            assert not thread.is_alive(), thread


def test_phases_run_in_order_and_close_in_reverse():
    calls = []
    sd = Shutdown()
    record = lambda tag: (lambda: calls.append(tag))  # noqa: E731
    sd.on_close(record("close-db"), name="db")
    sd.on_drain(record("drain-1"))
    sd.on_stop_ingress(record("stop-1"))
    sd.on_close(record("close-cache"), name="cache")
    sd.on_drain(record("drain-2"))
    sd.on_stop_ingress(record("stop-2"))
    report = sd.run()
    assert calls == ["stop-1", "stop-2", "drain-1", "drain-2", "close-cache", "close-db"]
    assert report.ok and [s.status for s in report.steps] == ["ok"] * 6
    assert [(s.phase, s.name) for s in report.steps][-2:] == [("close", "cache"), ("close", "db")]
    assert all(s.seconds >= 0 and s.error is None for s in report.steps)


def test_registration_returns_its_argument_and_works_as_a_decorator():
    sd = Shutdown()
    calls = []

    @sd.on_stop_ingress
    def stop():
        calls.append("stop")

    @sd.on_close(name="files", timeout=5)
    def close():
        calls.append("close")

    assert callable(stop) and stop.__name__ == "stop"
    event = threading.Event()
    event.set()
    assert sd.on_drain(event, name="event") is event
    report = sd.run()
    assert calls == ["stop", "close"]
    assert [s.name for s in report.steps] == [stop.__qualname__, "event", "files"]


@pytest.mark.parametrize("round_", range(3))
def test_a_step_that_overruns_is_reported_and_the_shutdown_moves_on(round_):
    release = threading.Event()
    drain_left_running = []
    sd = Shutdown()
    sd.on_drain(lambda: release.wait(10), name="stuck", timeout=0.05)
    sd.on_drain(lambda: None, name="next")
    # close starts only after the stuck drain step timed out, while it is still running:
    sd.on_close(lambda: drain_left_running.append(not release.is_set()), name="close")
    report = sd.run()
    stuck, following, close = report.steps
    assert (stuck.status, following.status, close.status) == ("timeout", "ok", "ok")
    assert isinstance(stuck.error, TimeoutError) and stuck.seconds >= 0.05
    assert drain_left_running == [True] and not report.ok and report.timed_out == (stuck,)
    release.set()
    join_leftover_steps()


def test_a_failing_step_is_reported_and_the_others_still_run():
    calls = []
    boom = OSError("disk gone")
    sd = Shutdown()

    def fail():
        raise boom

    sd.on_stop_ingress(fail, name="listener")
    sd.on_drain(lambda: calls.append("drain"), name="pool")
    sd.on_close(lambda: calls.append("close"), name="db")
    report = sd.run()
    assert calls == ["drain", "close"] and not report.ok
    assert report.failed == (StepResult("stop_ingress", "listener", "error", report.steps[0].seconds, boom),)
    text = str(report)
    assert text.startswith("shutdown finished in ") and "1 failed and 0 timed out" in text
    assert "listener" in text and "OSError: disk gone" in text and "pool" in text


def test_overall_timeout_bounds_the_run_and_later_steps_are_not_started():
    release = threading.Event()
    closed = []
    sd = Shutdown()
    sd.on_drain(lambda: release.wait(10), name="slow")
    sd.on_close(lambda: closed.append(1), name="db")
    report = sd.run(timeout=0.1)
    slow, db = report.steps
    assert slow.status == "timeout" and 0.1 <= slow.seconds < 5
    assert db.status == "timeout" and db.seconds == 0 and "not started" in str(db.error) and closed == []
    release.set()
    join_leftover_steps()


@pytest.mark.parametrize("round_", range(3))
def test_run_happens_once_even_when_called_from_many_threads(round_):
    count = []
    sd = Shutdown()
    sd.on_close(lambda: count.append(1), name="once")
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(sd.run())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert count == [1] and len(reports) == 8 and all(r is reports[0] for r in reports)
    assert sd.run() is reports[0] and sd.started
    with pytest.raises(RuntimeError, match="cannot register a close step: this Shutdown has already started"):
        sd.on_close(print)


def test_drain_targets_group_executor_thread_queue_event():
    results = []
    group = Group()
    group.go(lambda: results.append("group"))
    pool = concurrent.futures.ThreadPoolExecutor(2)
    pool.submit(results.append, "pool")
    thread = threading.Thread(target=results.append, args=("thread",))
    thread.start()
    jobs = queue.Queue()
    jobs.put(1)
    consumer = threading.Thread(target=lambda: (jobs.get(), jobs.task_done()))
    consumer.start()
    done = threading.Event()
    done.set()
    sd = Shutdown()
    for target in (group, pool, thread, jobs, done):
        sd.on_drain(target)
    report = sd.run()
    assert report.ok, str(report)
    assert [s.name for s in report.steps] == ["Group", "ThreadPoolExecutor", "Thread", "Queue", "Event"]
    assert sorted(results) == ["group", "pool", "thread"]
    assert pool._shutdown and not thread.is_alive() and group.ctx.err() is not None
    consumer.join(10)


@pytest.mark.parametrize("round_", range(3))
def test_drain_targets_that_do_not_finish_in_time_are_timeouts(round_):
    release = threading.Event()
    group = Group()
    group.go(release.wait, 10)
    thread = threading.Thread(target=release.wait, args=(10,))
    thread.start()
    sd = Shutdown()
    sd.on_drain(group, timeout=0.05)  # wait(timeout) raises TimeoutError
    sd.on_drain(thread, timeout=0.05)  # join(timeout) returns, thread still alive
    sd.on_drain(threading.Event(), timeout=0.05, name="never set")  # wait(timeout) returns False
    report = sd.run()
    assert [s.status for s in report.steps] == ["timeout"] * 3
    release.set()
    group.wait(10)
    thread.join(10)
    join_leftover_steps()


def test_drain_prefers_shutdown_then_wait_then_join_then_call():
    calls = []

    class Everything:
        def shutdown(self, wait=True):
            calls.append(("shutdown", wait))

        def wait(self, timeout=None):
            calls.append("wait")

        def __call__(self):
            calls.append("call")

    class WaitAndJoin:
        def wait(self, timeout=None):
            calls.append(("wait", timeout))

        def join(self):
            calls.append("join")

    class CallableJoin:
        def join(self):  # no timeout parameter: called without one
            calls.append("join()")

        def __call__(self):
            calls.append("call")

    sd = Shutdown()
    sd.on_drain(Everything())
    sd.on_drain(WaitAndJoin(), timeout=7)
    sd.on_drain(CallableJoin())
    assert sd.run().ok
    assert calls == [("shutdown", True), ("wait", 7.0), "join()"]


def test_every_step_is_logged_with_its_outcome(caplog):
    release = threading.Event()
    sd = Shutdown()
    sd.on_stop_ingress(lambda: None, name="listener")
    sd.on_drain(lambda: release.wait(10), name="workers", timeout=0.05)
    sd.on_close(lambda: 1 / 0, name="db")
    with caplog.at_level(logging.INFO, logger="patterns.shutdown"):
        sd.run()
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert all(name == "patterns.shutdown" for name, _, _ in messages)
    text = "\n".join(m for _, _, m in messages)
    for expected in ("stop_ingress listener: start", "stop_ingress listener: ok in ",
                     "drain workers: start", "drain workers: timed out after ",
                     "close db: start", "close db: failed after ", "ZeroDivisionError"):
        assert expected in text
    level_of = {m: level for _, level, m in messages}
    assert {level_of[m] for m in level_of if ": ok in " in m or ": start" in m} == {"INFO"}
    assert [level_of[m] for m in level_of if "timed out after" in m] == ["WARNING"]
    assert [level_of[m] for m in level_of if "failed after" in m] == ["ERROR"]
    release.set()
    join_leftover_steps()


def test_a_custom_logger_is_used(caplog):
    sd = Shutdown(logger=logging.getLogger("my.service"))
    sd.on_close(lambda: None, name="db")
    with caplog.at_level(logging.INFO, logger="my.service"):
        sd.run()
    assert {r.name for r in caplog.records} == {"my.service"}


def test_arguments_are_checked_before_any_state_changes():
    sd = Shutdown()
    with pytest.raises(TypeError, match="fn must be callable, got int"):
        sd.on_close(3)
    with pytest.raises(TypeError, match="fn must be callable, got str"):
        sd.on_stop_ingress("x")
    with pytest.raises(TypeError, match=r"target must be callable or have shutdown\(\), wait\(\) or join\(\), got int"):
        sd.on_drain(3)
    with pytest.raises(ValueError, match="timeout must be > 0 or None, got -1"):
        sd.on_close(print, timeout=-1)
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None, got str"):
        sd.on_close(print, timeout="1")
    with pytest.raises(TypeError, match="name must be a str or None, got int"):
        sd.on_close(print, name=1)
    with pytest.raises(TypeError, match="logger must be a logging.Logger or None, got str"):
        Shutdown(logger="x")
    with pytest.raises(ValueError, match="timeout must be > 0 or None, got 0"):
        sd.run(timeout=0)
    assert not sd.started
    report = sd.run()
    assert report.ok and report.steps == () and isinstance(report, ShutdownReport)
    assert str(report).startswith("shutdown ok in ")


def test_run_on_signal_outside_the_main_thread_is_refused():
    errors = []

    def call():
        try:
            Shutdown().run_on_signal()
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=call)
    t.start()
    t.join(10)
    assert errors == ["Shutdown.run_on_signal() must be called from the main thread "
                      "(Python delivers signals there); call run() from other threads"]


class _Seen(logging.Handler):
    """Sets an event when a log message containing ``text`` is emitted."""

    def __init__(self, text):
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()


def _run_on_signal_with(trigger, *signals):
    """Run run_on_signal in this (main) thread; ``trigger()`` runs in a thread once it waits."""
    logger = logging.getLogger("test.shutdown.signal")
    logger.setLevel(logging.INFO)
    seen = _Seen("waiting for")
    logger.addHandler(seen)
    calls = []
    sd = Shutdown(logger=logger)
    sd.on_stop_ingress(lambda: calls.append("stop"), name="stop")
    sd.on_close(lambda: calls.append("close"), name="close")
    fire = threading.Thread(target=lambda: seen.event.wait(10) and trigger())
    fire.start()
    try:
        return sd.run_on_signal(*signals), calls
    finally:
        fire.join(10)
        logger.removeHandler(seen)
        join_signal_helpers()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("round_", range(3))
def test_run_on_signal_runs_after_the_signal_and_restores_handlers(round_):
    before = signal.getsignal(signal.SIGUSR1)
    report, calls = _run_on_signal_with(lambda: os.kill(os.getpid(), signal.SIGUSR1), signal.SIGUSR1)
    assert report.ok and calls == ["stop", "close"]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_run_on_signal_also_runs_when_ctx_is_done():
    ctx, cancel = with_cancel(Group().ctx)
    before = signal.getsignal(signal.SIGTERM)
    logger = logging.getLogger("test.shutdown.ctx")
    logger.setLevel(logging.INFO)
    seen = _Seen("waiting for SIGINT, SIGTERM")
    logger.addHandler(seen)
    sd = Shutdown(logger=logger)
    calls = []
    sd.on_close(lambda: calls.append("close"))
    fire = threading.Thread(target=lambda: seen.event.wait(10) and cancel())
    fire.start()
    report = sd.run_on_signal(ctx=ctx)
    fire.join(10)
    logger.removeHandler(seen)
    join_signal_helpers()
    assert report.ok and calls == ["close"] and signal.getsignal(signal.SIGTERM) == before


# -- end to end: a server process is sent SIGTERM under load -------------------------------------


class Server:
    """tests/programs/shutdown_server.py in a subprocess; its stdout lines arrive on a queue."""

    def __init__(self, tmp_path, *args):
        self.stderr_path = tmp_path / "stderr.txt"
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, str(PROGRAM), *args], stdout=subprocess.PIPE,
                                         stderr=stderr, text=True)
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="server-stdout")
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, timeout=10):
        """Collect lines until ``predicate(lines)`` holds (True) or the output ends (False)."""
        deadline = time.monotonic() + timeout * SERVER_PATIENCE
        while not predicate(self.lines):
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                return False
            self.lines.append(line)
        return True

    def finish(self, timeout=10):
        """Read to the end and reap the process; return its exit code."""
        try:
            self.wait_for(lambda lines: False, timeout)
            return self.proc.wait(timeout * SERVER_PATIENCE)
        finally:
            self.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        self.proc.stdout.close()

    def stderr(self):
        return self.stderr_path.read_text()


def _ready_and_loaded(lines, jobs=40):
    waiting = any(line.startswith("log shutdown: waiting for SIGINT, SIGTERM") for line in lines)
    return waiting and sum(line.startswith("accepted ") for line in lines) >= jobs


def _ids(lines, prefix):
    return [int(line[len(prefix):]) for line in lines if line.startswith(prefix)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("round_", range(3))
def test_server_shuts_down_gracefully_on_sigterm_under_load(tmp_path, round_):
    server = Server(tmp_path)
    try:
        assert server.wait_for(_ready_and_loaded), server.stderr()
        server.proc.send_signal(signal.SIGTERM)
        code = server.finish()
    finally:
        server.close()
    lines = server.lines
    assert code == 0, server.stderr()
    accepted, completed = _ids(lines, "accepted "), _ids(lines, "completed ")
    assert len(accepted) >= 40 and len(set(accepted)) == len(accepted)
    assert sorted(completed) == sorted(accepted)  # every accepted job completed, exactly once
    stopped = lines.index("ingress stopped")
    assert not any(line.startswith("accepted ") for line in lines[stopped:])  # none after stop-ingress
    closes = [i for i, line in enumerate(lines) if line.startswith("closed ")]
    assert [lines[i] for i in closes] == ["closed log", "closed cache", "closed database"]  # reverse order
    last_job = max(i for i, line in enumerate(lines) if line.startswith(("accepted ", "completed ")))
    assert stopped < lines.index("drain started") < closes[0] and last_job < closes[0]  # close last
    assert any("drain workers: ok" in line for line in lines[:closes[0]])
    assert lines[-1] == "exit ok=True" and "shutdown ok in" in server.stderr()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("force_exit_code, expected", [(None, 128 + signal.SIGTERM), (3, 3)])
def test_a_second_sigterm_during_a_slow_drain_forces_exit(tmp_path, force_exit_code, expected):
    args = ["--slow-drain"] + ([] if force_exit_code is None else ["--force-exit-code", str(force_exit_code)])
    server = Server(tmp_path, *args)
    try:
        assert server.wait_for(_ready_and_loaded), server.stderr()
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for(lambda lines: "drain started" in lines), server.stderr()
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.finish()
    finally:
        server.close()
    assert code == expected and time.monotonic() - start < 5  # not after the 60 s drain
    assert not any(line.startswith("closed ") for line in server.lines)
    assert f"SIGTERM received again, forcing exit with code {expected}" in server.stderr()
