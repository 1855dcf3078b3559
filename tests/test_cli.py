"""``ftsync bench`` / ``python -m patterns bench``: runs every comparison, exact, as table, JSON and chart."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def ftsync(*args, timeout=300):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "patterns", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_bench_json_has_every_contender_at_every_thread_count_and_all_exact():
    done = ftsync("bench", "--quick", "--rounds", "1", "--threads", "1,2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    rows = report["results"]
    comparisons = {r["comparison"] for r in rows}
    assert len(comparisons) == 4
    ours = {r["contender"] for r in rows if r["ours"]}
    assert {"AtomicInt64.inc()", "AtomicCounter handle.inc()", "TokenBucket.allow()", "WorkerPool",
            "Channel(128)"} <= ours
    assert {"threading.Lock + int", "ThreadPoolExecutor", "queue.Queue(128)", "plain-Python bucket + Lock"} <= {
        r["contender"] for r in rows}
    for row in rows:
        assert row["threads"] in (1, 2) and row["per_second"] > 0 and row["exact"], row
    baselines = [r for r in rows if r["contender"] in ("threading.Lock + int", "ThreadPoolExecutor")]
    assert baselines and all(r["ratio"] == pytest.approx(1.0) for r in baselines)
    assert "[1/" in done.stderr  # the progress line


def test_bench_table_and_chart(tmp_path):
    chart = tmp_path / "scaling.png"
    done = ftsync("bench", "--quick", "--rounds", "1", "--threads", "1,2", "--only", "pools,channels",
                  "--plot", str(chart))
    assert done.returncode == 0, done.stderr
    assert "worker pool submit+result" in done.stdout and "x)" in done.stdout
    assert "counter increments" not in done.stdout  # --only
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ftsync")
    done = subprocess.run([str(script), "bench", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--threads" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--threads", "0"], "--threads must be positive"),
    (["--threads", "a,b"], "--threads takes numbers"),
    (["--only", "nope"], "unknown comparison 'nope'"),
    (["--rounds", "0"], "--rounds must be >= 1"),
])
def test_bad_options_are_refused_with_a_clear_message(args, message):
    done = ftsync("bench", *args)
    assert done.returncode != 0
    assert message in done.stderr
