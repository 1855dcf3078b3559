"""WorkerPool at interpreter exit and under Ctrl-C, and its memory bound, in real subprocesses."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROGRAM = Path(__file__).parent / "programs" / "pool_exit.py"


def start(mode):
    proc = subprocess.Popen(
        [sys.executable, str(PROGRAM), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    return proc


def wait_for_started(proc, count):
    """Read lines until ``count`` jobs have printed "started"."""
    seen = 0
    while seen < count:
        line = proc.stdout.readline()
        assert line, "program ended early"
        seen += line.startswith("started")


def interrupt_and_time(proc):
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return time.monotonic() - t0, out, err


@pytest.mark.parametrize("mode", ["imap", "sleep"])
def test_one_ctrl_c_stops_a_pool_of_context_aware_jobs_promptly(mode):
    proc = start(mode)
    wait_for_started(proc, 4)
    seconds, out, err = interrupt_and_time(proc)
    assert "KeyboardInterrupt" in err
    assert proc.returncode != 0
    assert seconds < 5, f"exit took {seconds:.1f} s"
    assert len(re.findall("started", out)) < 50  # the queue was cancelled, not run


def test_ctrl_c_lets_running_stubborn_jobs_finish_and_cancels_the_queue():
    proc = start("stubborn")
    wait_for_started(proc, 4)
    seconds, out, err = interrupt_and_time(proc)
    assert "KeyboardInterrupt" in err
    assert seconds < 5, f"exit took {seconds:.1f} s"
    assert len(re.findall("started", out)) == 0  # nothing started after the first 4


def test_without_ctrl_c_queued_jobs_run_at_exit_like_thread_pool_executor():
    proc = start("finish")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(int(n) for n in re.findall(r"finished (\d+)", out)) == list(range(50))


@pytest.mark.slow
def test_ten_million_items_through_imap_stay_in_a_fixed_memory_bound():
    out = subprocess.run(
        [sys.executable, str(PROGRAM), "memory"], capture_output=True, text=True, timeout=600, check=True
    ).stdout
    count, growth = map(int, re.search(r"count (\d+) growth_kib (-?\d+)", out).groups())
    assert count == 10_000_000
    # Reading the input up front (as Executor.map does before 3.14) would hold 10M futures: GBs.
    assert growth < 20_000, f"peak RSS grew by {growth} KiB"
