"""``ftsync bench`` / ``python -m patterns bench``: runs every comparison, exact, as table, JSON and chart."""

import json
import os
import re
import signal
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
    assert done.returncode == 2
    assert message in done.stderr


def test_empty_only_is_refused():
    done = ftsync("bench", "--only", "")
    assert done.returncode == 2
    assert "--only must name at least one comparison" in done.stderr and "counters" in done.stderr
    assert done.stdout == ""


def test_help_documents_every_exit_status():
    done = ftsync("bench", "--help")
    assert done.returncode == 0
    out = done.stdout
    assert "exit status:" in out
    for line in (r"0 +every result was exact", r"1 +a result was not exact", r"2 +bad options",
                 r"3 +a measurement or the chart failed", r"130 +interrupted by Ctrl-C"):
        assert re.search(line, out), line


def _bench_in_process(*argv, prelude=""):
    """ftsync bench in a fresh interpreter, after ``prelude`` (to remove a module, say)."""
    code = f"import sys\n{prelude}\nfrom patterns.cli import main\nsys.exit(main({list(argv)!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name, prelude, message", [
    ("chart.png", "sys.modules['matplotlib'] = None  # as if not installed", "--plot needs matplotlib: pip install 'ftsync[plot]'"),
    ("chart.xyz", "", "cannot tell the chart format from"),
    ("chart", "", "cannot tell the chart format from"),
    ("no-such-dir/chart.png", "", "--plot: cannot write"),
])
def test_plot_problems_are_refused_before_anything_runs(tmp_path, name, prelude, message):
    path = tmp_path / name
    done = _bench_in_process("bench", "--quick", "--rounds", "1", "--threads", "1", "--plot", str(path),
                             prelude=prelude)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "[1/" not in done.stderr and done.stdout == ""  # nothing was measured
    assert not path.exists()


def test_plot_check_leaves_an_existing_file_alone_until_the_chart_replaces_it(tmp_path):
    chart = tmp_path / "chart.svg"
    chart.write_text("old")
    done = ftsync("bench", "--quick", "--rounds", "1", "--threads", "1", "--only", "limiters", "--plot", str(chart))
    assert done.returncode == 0, done.stderr
    assert chart.read_text().lstrip().startswith("<?xml") and "<svg" in chart.read_text()


def _start_bench(*args):
    return subprocess.Popen([sys.executable, "-m", "patterns", "bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_step(proc, step):
    """Read the progress lines until step ``step`` starts (so step - 1 steps are measured)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"[{step}/"):
            return seen
    raise AssertionError("the run ended before step %d: %r" % (step, seen))


def test_chart_failure_after_the_run_still_prints_the_table(tmp_path):
    folder = tmp_path / "charts"
    folder.mkdir()
    proc = _start_bench("--threads", "1", "--rounds", "2", "--only", "counters", "--plot", str(folder / "c.png"))
    try:
        _wait_for_step(proc, 1)
        folder.rmdir()  # passes the check before the run, fails when the chart is saved
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "AtomicInt64.inc()" in out and "threading.Lock + int" in out and "x)" in out  # the whole table
    assert "could not draw the chart" in err and "c.png" in err


def test_ctrl_c_prints_what_was_measured_and_exits_130():
    proc = _start_bench("--threads", "1", "--rounds", "3", "--only", "counters,channels")
    try:
        _wait_for_step(proc, 2)  # step 1 is measured
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert re.search(r"^\* AtomicInt64\.inc\(\) +\d+\.\d+", out, re.M), out  # step 1's row
    assert "queue.Queue(128)" not in out  # the last step never ran
    assert "interrupted" in err and "made so far" in err and "Traceback" not in err


def test_ctrl_c_with_json_prints_valid_json_marked_incomplete():
    proc = _start_bench("--threads", "1", "--rounds", "3", "--only", "counters,channels", "--json")
    try:
        _wait_for_step(proc, 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["incomplete"] == "interrupted"
    assert report["results"] and report["results"][0]["contender"] == "AtomicInt64.inc()"


FOREIGN_ATOMICS = '''"""Stands in for another distribution that installs a package named 'atomics'."""

def atomic(width, atype):
    raise NotImplementedError
'''


def _foreign_atomics(root, with_our_main=False):
    """A package 'atomics' owned by a distribution 'atomics', as pip would leave it on sys.path."""
    package = root / "atomics"
    package.mkdir()
    (package / "__init__.py").write_text(FOREIGN_ATOMICS)
    if with_our_main:  # installed over ftsync: our other files stay beside their __init__
        import atomics

        (package / "__main__.py").write_text(Path(atomics.__file__).with_name("__main__.py").read_text())
    info = root / "atomics-1.0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: atomics\nVersion: 1.0.3\n")
    (info / "top_level.txt").write_text("atomics\n")
    (info / "RECORD").write_text("atomics/__init__.py,,\n")
    return dict(os.environ, PYTHONPATH=str(root))


@pytest.mark.parametrize("command", [["-m", "patterns", "bench", "--help"], ["-c", "import patterns"]])
def test_a_foreign_atomics_package_is_explained(tmp_path, command):
    env = _foreign_atomics(tmp_path)
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode != 0
    assert "is not ftsync's" in done.stderr and "the 'atomics' distribution" in done.stderr
    assert "pip uninstall atomics ftsync" in done.stderr
    assert "lockorder" not in done.stderr  # not the ImportError deep inside patterns


def test_python_m_atomics_explains_a_foreign_atomics(tmp_path):
    env = _foreign_atomics(tmp_path, with_our_main=True)
    done = subprocess.run([sys.executable, "-m", "atomics", "--quick"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1
    assert "is not ftsync's" in done.stderr and "pip uninstall atomics ftsync" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_m_atomics_points_at_ftsync_bench():
    done = subprocess.run([sys.executable, "-m", "atomics", "--quick"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ftsync bench" in done.stdout and "benchmarks/" not in done.stdout
