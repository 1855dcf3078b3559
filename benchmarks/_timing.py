"""Loop builders shared by the benchmark suites and the `atomics` package peer worker.

No pytest and no ftsync import here: ``_atomics_peer.py`` imports this module inside the peer
virtualenv, where neither exists (and where ``import atomics`` is the other package).

Every single-thread benchmark times one call of a generated function that runs the measured
statement ``CALLS_PER_ROUND`` (1000) times, unrolled ``UNROLL`` times inside a ``for`` loop, so
the loop costs under 1 ns per call.  One round = 1000 calls, so a round time in microseconds
reads as nanoseconds per call.
"""

from __future__ import annotations

import textwrap

CALLS_PER_ROUND = 1000
UNROLL = 20

# benchmark.group of each comparison (pytest --benchmark-group-by=group)
GROUP_INC = "inc (1 thread)"
GROUP_LOAD = "load (1 thread)"
GROUP_CAS = "compare_and_swap (1 thread)"
GROUP_VIEW = "view inc (1 thread)"
GROUP_T1 = "counter 1 thread total"
GROUP_T2 = "counter 2 threads total"


def make_loop(stmt: str, names: dict, calls: int = CALLS_PER_ROUND, unroll: int = UNROLL):
    """A zero-argument function that executes ``stmt`` ``calls`` times.

    ``names`` become the function's local variables (bound as default arguments, so each
    access is a LOAD_FAST, as in a user's hot loop).  ``stmt`` may span several lines
    (e.g. a ``with lock:`` block); it is unrolled ``unroll`` times per loop iteration.
    """
    if calls % unroll:
        raise ValueError(f"calls must be a multiple of unroll={unroll}, got {calls}")
    params = ", ".join(f"{name}={name}" for name in names)
    body = textwrap.indent(textwrap.dedent(stmt).strip("\n") + "\n", " " * 8) * unroll
    src = f"def run({params}):\n    for _ in range({calls // unroll}):\n{body}"
    namespace = dict(names)
    exec(compile(src, f"<loop: {stmt.strip()}>", "exec"), namespace)  # noqa: S102 - generated loop
    return namespace["run"]


def make_worker(stmt: str, params: list, unroll: int = 10):
    """``worker(n, **locals)`` runs ``stmt`` n times (n a multiple of ``unroll``).

    For thread benchmarks: each thread passes its own locals (e.g. its own handle), which are
    parameters of the worker, so every access is a LOAD_FAST.
    """
    body = textwrap.indent(textwrap.dedent(stmt).strip("\n") + "\n", " " * 8) * unroll
    src = f"def worker(n, {', '.join(params)}):\n    for _ in range(n // {unroll}):\n{body}"
    namespace = {}
    exec(compile(src, f"<worker: {stmt.strip()}>", "exec"), namespace)  # noqa: S102 - generated loop
    return namespace["worker"]
