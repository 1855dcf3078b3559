"""Fixtures and the end-of-run summary for the ftsync benchmark suites.

- ``bench_calls``: times a generated loop of 1000 calls per round (see ``_timing.py``) and
  records ns per call.
- ``bench_threads``: N threads, each doing K increments on a shared object (or through its
  per-thread handle); records total increments per second and whether the total was exact.
- ``atomics_peer``: the PyPI ``atomics`` package, timed in a subprocess of its own venv.
- ``pytest_terminal_summary``: one compact table per run with the ratios the targets name.

Ratios use the best round (min time / max throughput): on a shared, noisy machine it is the
most repeatable statistic.  Medians are shown next to it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from _timing import CALLS_PER_ROUND, GROUP_INC, GROUP_T2, make_worker

REPO = Path(__file__).resolve().parent.parent
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
PY_TAG = f"{sys.version_info.major}.{sys.version_info.minor}" + ("t" if FREE_THREADED else "")

THREAD_INCREMENTS = 200_000  # K, per thread
THREAD_ROUNDS = 15


@dataclass
class Result:
    group: str
    label: str
    key: str | None
    ours: bool
    kind: str  # "per_call" (ns_*) or "throughput" (ops_*)
    ns_min: float = 0.0
    ns_median: float = 0.0
    ops_best: float = 0.0
    ops_median: float = 0.0
    exact: bool = True
    note: str = ""


RESULTS: dict[tuple[str, str], Result] = {}


def _stats(benchmark):
    """(min, median) seconds per round, or None when benchmarking is disabled."""
    meta = getattr(benchmark, "stats", None)
    if meta is None:
        return None
    stats = meta.stats
    return stats.min, stats.median


# --------------------------------------------------------------------------- single thread


@pytest.fixture
def bench_calls(benchmark):
    """``bench_calls(group, label, loop, key=None, ours=False)``: ns per call of ``loop``.

    ``loop`` is a ``_timing.make_loop`` function: one call runs the statement 1000 times.
    """

    def run(group, label, loop, *, key=None, ours=False):
        benchmark.group = group
        benchmark.name = label  # shown in the table instead of the test id
        benchmark.extra_info.update(
            unit=f"1 round = {CALLS_PER_ROUND} calls: round time in us = ns per call",
            calls_per_round=CALLS_PER_ROUND,
            library="ftsync" if ours else label.split(":")[0],
        )
        benchmark(loop)
        got = _stats(benchmark)
        if got is None:
            return
        ns_min, ns_median = (s * 1e9 / CALLS_PER_ROUND for s in got)
        benchmark.extra_info.update(ns_per_call_min=round(ns_min, 2), ns_per_call_median=round(ns_median, 2))
        RESULTS[group, label] = Result(group, label, key, ours, "per_call", ns_min, ns_median)

    return run


def record_throughput(group, label, best, median, *, key=None, ours=False):
    """Add a throughput row (things per second) measured by a suite of its own to the summary."""
    RESULTS[group, label] = Result(group, label, key, ours, "throughput", ops_best=best, ops_median=median)


# --------------------------------------------------------------------------- threads


@pytest.fixture
def bench_threads(benchmark):
    """Time N threads doing K increments each, from a common start (a barrier) to the last join.

    ``make_shared()`` builds the shared object, fresh for every round; ``thread_names(shared)``
    runs inside each thread and returns the worker's locals (a hoisted bound method, a per-thread
    handle, ...); ``stmt`` is one increment using them; ``total(shared)`` reads the final count.
    Thread creation is outside the timed region (pedantic ``setup``).
    """

    def run(group, label, nthreads, make_shared, thread_names, stmt, total, *, key=None, ours=False, note=""):
        k = THREAD_INCREMENTS
        exact = []
        names_probe = thread_names(make_shared())
        worker = make_worker(stmt, list(names_probe))
        del names_probe

        def setup():
            shared = make_shared()
            barrier = threading.Barrier(nthreads + 1)

            def body():
                names = thread_names(shared)  # per thread: handles belong to their thread
                barrier.wait()
                worker(k, **names)

            threads = [threading.Thread(target=body) for _ in range(nthreads)]
            for t in threads:
                t.start()
            while barrier.n_waiting < nthreads:  # all parked at the barrier: start-up is untimed
                time.sleep(0.0001)
            return (shared, barrier, threads), {}

        def go(shared, barrier, threads):
            barrier.wait()
            for t in threads:
                t.join()

        def teardown(shared, barrier, threads):
            exact.append(total(shared) == nthreads * k)

        benchmark.group = group
        benchmark.name = label
        benchmark.extra_info.update(
            unit=f"1 round = {nthreads} threads x {k} increments",
            threads=nthreads,
            increments_per_thread=k,
            library="ftsync" if ours else label.split(":")[0],
        )
        if note:
            benchmark.extra_info["note"] = note
        benchmark.pedantic(go, setup=setup, teardown=teardown, rounds=THREAD_ROUNDS, warmup_rounds=1)
        got = _stats(benchmark)
        if got is None:
            return
        ops_best, ops_median = (nthreads * k / s for s in got)
        benchmark.extra_info.update(
            increments_per_s_best=round(ops_best),
            increments_per_s_median=round(ops_median),
            exact_total=all(exact),
        )
        RESULTS[group, label] = Result(
            group, label, key, ours, "throughput", ops_best=ops_best, ops_median=ops_median, exact=all(exact), note=note
        )

    return run


# --------------------------------------------------------------------------- `atomics` package peer


def _peer_python():
    override = os.environ.get("FTSYNC_ATOMICS_PEER_PYTHON")
    if override:
        return Path(override)
    return REPO / ".venvs" / f"atomics-peer-{PY_TAG}" / "bin" / "python"


class AtomicsPeer:
    """The PyPI ``atomics`` package, in a worker process of its own venv (see ``_atomics_peer.py``)."""

    def __init__(self, python: Path):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.proc = subprocess.Popen(
            [str(python), str(Path(__file__).with_name("_atomics_peer.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        self.info = json.loads(self._ask("info"))

    def _ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"atomics peer worker exited (rc={self.proc.poll()})")
        return reply.strip()

    def ping(self):
        return self._ask("ping")

    def rounds(self, op, n):
        """Per-round times (ns) of ``n`` rounds of CALLS_PER_ROUND calls, measured in the worker."""
        return [int(t) for t in self._ask(f"{op} {n}").split()]

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:  # pragma: no cover - best effort
            self.proc.kill()


@pytest.fixture(scope="session")
def atomics_peer():
    python = _peer_python()
    if not python.exists():
        pytest.skip(
            f"the `atomics` package peer venv is missing ({python}); "
            f"run scripts/bench-peers.sh (on free-threaded 3.13 it cannot install: cffi refuses)"
        )
    peer = AtomicsPeer(python)
    peer_tag = peer.info["python"].rsplit(".", 1)[0]
    if peer_tag != PY_TAG and not os.environ.get("FTSYNC_ATOMICS_PEER_PYTHON"):
        peer.close()
        pytest.skip(f"atomics peer runs Python {peer.info['python']}, this run is {PY_TAG}")
    yield peer
    peer.close()


@pytest.fixture
def bench_atomics_peer(benchmark, atomics_peer):
    """``bench_atomics_peer(group, label, op, key)``: ns per call of the `atomics` package.

    The table row times one IPC round trip plus one round of 1000 calls in the worker; the
    recorded ns per call (extra_info and summary) is the worker's own timing of the calls.
    """

    def run(group, label, op, *, key=None):
        atomics_peer.rounds(op, 3)  # warm up
        probe = statistics.median(atomics_peer.rounds(op, 5))
        n_rounds = max(20, min(2000, int(0.5e9 / max(probe, 1))))
        inner = []

        def one_round():
            inner.extend(atomics_peer.rounds(op, 1))

        benchmark.group = group
        benchmark.name = label
        benchmark.pedantic(one_round, rounds=n_rounds, warmup_rounds=2)
        if _stats(benchmark) is None:  # --benchmark-disable: ran once, nothing to report
            return
        rtt = sorted(_rtt_ns(atomics_peer) for _ in range(50))[25]
        inner = inner[2:]  # drop the warmup rounds
        ns_min = min(inner) / CALLS_PER_ROUND
        ns_median = statistics.median(inner) / CALLS_PER_ROUND
        benchmark.extra_info.update(
            unit=f"1 round = IPC round trip + {CALLS_PER_ROUND} calls in the peer venv",
            library="atomics (PyPI)",
            peer_python=atomics_peer.info["python"],
            peer_atomics_version=atomics_peer.info["atomics"],
            ns_per_call_min=round(ns_min, 2),
            ns_per_call_median=round(ns_median, 2),
            ipc_round_trip_ns_median=rtt,
        )
        RESULTS[group, label] = Result(group, label, key, False, "per_call", ns_min, ns_median)

    return run


def _rtt_ns(peer):
    t0 = time.perf_counter_ns()
    peer.ping()
    return time.perf_counter_ns() - t0


# --------------------------------------------------------------------------- summary


def _by_key(key):
    return next((r for r in RESULTS.values() if r.key == key), None)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ratio_line(name, num, den, target, lower_is_better=True, calls_per_s=False):
    """One ratio of best rounds; ``target=None`` prints it for information only.

    ``calls_per_s``: for per-call rows, print the ratio of calls per second (den time / num
    time, higher is better) instead of the ratio of times."""
    if num is None and den is None:
        return None
    if num is None or den is None:
        missing = [r for r, v in (("numerator", num), ("denominator", den)) if v is None]
        return f"  {name:<70} n/a ({' and '.join(missing)} not run)"
    if num.kind == "per_call" and calls_per_s:
        value, lower_is_better = den.ns_min / num.ns_min, False
    elif num.kind == "per_call":
        value = num.ns_min / den.ns_min
    else:
        value = num.ops_best / den.ops_best
    if target is None:
        return f"  {name:<70} {value:6.2f}x  (information)"
    ok = value <= target if lower_is_better else value >= target
    sign = "<=" if lower_is_better else ">="
    return f"  {name:<70} {value:6.2f}x  (target {sign} {target}x: {'met' if ok else 'MISSED'})"


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    w = terminalreporter.write_line
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    build = "free-threaded" if FREE_THREADED else "GIL build"
    terminalreporter.section("ftsync benchmark summary")
    w(
        f"CPython {platform.python_version()} {build}, GIL {'enabled' if gil else 'disabled'} at end of run; "
        f"{_cpu_model()}, {os.cpu_count()} CPUs"
    )
    if FREE_THREADED and gil:
        w("WARNING: the GIL was re-enabled during this run (an extension without Py_mod_gil?)")
    groups: dict[str, list[Result]] = {}
    for r in RESULTS.values():
        groups.setdefault(r.group, []).append(r)
    for group, rows in groups.items():
        if rows[0].kind == "per_call":
            rows.sort(key=lambda r: r.ns_min)
            w(f"[{group}]  ns per call: best round (median)")
            for r in rows:
                w(f"  {'*' if r.ours else ' '} {r.label:<66} {r.ns_min:9.1f} ({r.ns_median:.1f})")
        else:
            rows.sort(key=lambda r: -r.ops_best)
            w(f"[{group}]  M per second: best round (median)")
            for r in rows:
                flag = "" if r.exact else "  INEXACT total (lost updates)"
                if r.ops_best < 10_000:  # slow work (CPU-bound tasks): plain per-second figures
                    w(f"  {'*' if r.ours else ' '} {r.label:<66} {r.ops_best:9.1f}/s ({r.ops_median:.1f}/s){flag}")
                else:
                    w(f"  {'*' if r.ours else ' '} {r.label:<66} {r.ops_best / 1e6:9.2f} ({r.ops_median / 1e6:.2f}){flag}")

    def fastest_peer(group):
        peers = [r for r in RESULTS.values() if r.group == group and not r.ours and r.kind == "per_call"]
        return min(peers, key=lambda r: r.ns_min, default=None)

    def best_peer_throughput(group):
        peers = [r for r in RESULTS.values() if r.group == group and not r.ours and r.exact]
        return max(peers, key=lambda r: r.ops_best, default=None)

    def w_ratio(line):
        if line is not None:
            w(line)

    w("ratios (targets; * = ftsync):")
    fp = fastest_peer(GROUP_INC)
    fp_name = fp.label if fp else "none"
    w_ratio(_ratio_line(f"AtomicInt64.inc() / fastest peer ({fp_name})", _by_key("ours.inc"), fp, 1.0))
    w_ratio(_ratio_line("AtomicInt64 += 1 / fastest peer", _by_key("ours.iadd"), fp, 1.0))
    atomic_peers = [
        r for r in RESULTS.values() if r.group == GROUP_INC and not r.ours and r.key and r.key.startswith("atomic_peer")
    ]
    fap = min(atomic_peers, key=lambda r: r.ns_min, default=None)
    if fap is not None and fap is not fp:
        w_ratio(_ratio_line(f"AtomicInt64.inc() / fastest atomic peer ({fap.label})", _by_key("ours.inc"), fap, 1.0))
        w_ratio(_ratio_line("AtomicInt64 += 1 / fastest atomic peer", _by_key("ours.iadd"), fap, 1.0))
    calls = [
        r
        for r in RESULTS.values()
        if r.group == GROUP_INC and not r.ours and r.key and not r.key.endswith("iadd") and "inline" not in r.key
    ]
    fcp = min(calls, key=lambda r: r.ns_min, default=None)
    if fcp is not None and fcp is not fp:
        w_ratio(_ratio_line(f"AtomicInt64.inc() / fastest peer method call ({fcp.label})", _by_key("ours.inc"), fcp, None))
    w_ratio(_ratio_line("compare_and_swap / cereggii compare_and_set", _by_key("ours.cas"), _by_key("cereggii.cas"), 0.6))
    w_ratio(_ratio_line("compare_and_swap / Lock+int (LockedInt method)", _by_key("ours.cas"), _by_key("lock.cas"), 0.2))
    w_ratio(_ratio_line("compare_and_swap / Lock+int (inline with-block)", _by_key("ours.cas"), _by_key("lock_inline.cas"), None))
    w_ratio(_ratio_line("Int64View.inc() / atomics pkg view inc()", _by_key("ours.view_inc"), _by_key("atomics_pkg.view_inc"), 0.05))
    h2, h1 = _by_key("ours.handles.2"), _by_key("ours.handles.1")
    # The 2-thread targets are for free-threaded builds; with the GIL the threads take turns.
    ft = FREE_THREADED and not gil
    w_ratio(_ratio_line("2 threads: AtomicCounter handles / own 1-thread", h2, h1, 1.7 if ft else None, lower_is_better=False))
    bp = best_peer_throughput(GROUP_T2)
    w_ratio(
        _ratio_line(
            f"2 threads: AtomicCounter handles / best exact peer ({bp.label if bp else 'none'})",
            h2,
            bp,
            2.0 if ft else None,
            lower_is_better=False,
        )
    )


    w("ratios (targets):")
    w_ratio(_ratio_line("WorkerPool submit+result / ThreadPoolExecutor", _by_key("pool.submit.ours"),
                        _by_key("pool.submit.tpe"), 3.0, lower_is_better=False))
    w_ratio(_ratio_line("WorkerPool.imap / ThreadPoolExecutor.map", _by_key("pool.imap"),
                        _by_key("pool.map.tpe"), 3.0, lower_is_better=False))
    w_ratio(_ratio_line("WorkerPool.imap(ordered=False) / ThreadPoolExecutor.map", _by_key("pool.imap_unordered"),
                        _by_key("pool.map.tpe"), None, lower_is_better=False))
    w_ratio(_ratio_line("Pipeline, 3 stages / threads + queue.Queue(128)", _by_key("pipeline.ours"),
                        _by_key("pipeline.queue"), 2.0, lower_is_better=False))
    w_ratio(_ratio_line("CPU-bound: WorkerPool(2) / WorkerPool(1)", _by_key("pool.cpu.2"), _by_key("pool.cpu.1"),
                        1.7 if ft else None, lower_is_better=False))
    sem, std = _by_key("sem.ftsync: Semaphore"), _by_key("sem.threading.Semaphore")
    w_ratio(_ratio_line("Semaphore acquire+release / threading.Semaphore", sem, std, 0.2))
    # rate limiters: per-call ratios, so "at least Nx the calls/s" is "at most 1/N the time"
    rl = {key[3:]: r for r in RESULTS.values() if r.key and (key := r.key).startswith("rl.")}
    if rl:
        w("ratios (targets; per call, lower is better):")
        for name, num, den, target in [
            ("TokenBucket.allow / plain-Python bucket, no lock", "tb.ours", "tb.plain", 0.5),
            ("TokenBucket.allow / plain-Python bucket + Lock", "tb.ours", "tb.locked", None),
            ("TokenBucket.allow / limits FixedWindow (memory)", "tb.ours", "tb.limits_fixed", 0.02),
            ("TokenBucket.allow / pyrate-limiter", "tb.ours", "tb.pyrate", None),
            ("FixedWindow / limits FixedWindow (memory)", "fw.ours", "fw.limits", 0.05),
            ("SlidingWindowCounter / limits SlidingWindowCounter (memory)", "swc.ours", "swc.limits", 0.05),
            ("SlidingWindowLog / limits MovingWindow (memory), empty", "swl.ours", "swl.limits", 0.05),
            (f"SlidingWindowLog / limits MovingWindow (memory), filled", "swl.ours.filled", "swl.limits.filled", 0.05),
            ("SlidingWindowLog filled / empty (flat cost)", "swl.ours.filled", "swl.ours", None),
            ("limits MovingWindow filled / empty", "swl.limits.filled", "swl.limits", None),
        ]:
            w_ratio(_ratio_line(name, rl.get(num), rl.get(den), target))
        w("ratios (targets; Redis, calls/s, higher is better):")
        for name, num, den, target in [
            ("RedisTokenBucket / EVALSHA return 1", "redis.tb.ours", "redis.evalsha1", 0.9),
            ("RedisFixedWindow / EVALSHA return 1", "redis.fw.ours", "redis.evalsha1", 0.9),
            ("RedisSlidingWindowCounter / EVALSHA return 1", "redis.swc.ours", "redis.evalsha1", 0.9),
            ("RedisSlidingWindowLog / EVALSHA return 1", "redis.swl.ours", "redis.evalsha1", 0.9),
            ("RedisFixedWindow / limits FixedWindow (Redis)", "redis.fw.ours", "redis.fw.limits", 1.2),
            ("RedisSlidingWindowCounter / limits SlidingWindowCounter (Redis)", "redis.swc.ours", "redis.swc.limits", 1.2),
            ("RedisSlidingWindowLog / limits MovingWindow (Redis)", "redis.swl.ours", "redis.swl.limits", 1.2),
            ("RedisTokenBucket local_batch=100 / unbatched", "redis.tb.ours.batch100", "redis.tb.ours", 10),
        ]:
            w_ratio(_ratio_line(name, rl.get(num), rl.get(den), target, calls_per_s=True))
