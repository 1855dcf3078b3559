"""``python -m atomics``: the build facts, then a short counter benchmark.

The benchmark is a quick sanity check of this machine and interpreter, single-threaded
ns/call and multi-threaded totals.  For the side-by-side comparisons with the stdlib and peer
libraries at 1..N threads, run ``ftsync bench``.
"""

import argparse
import os
import platform
import sys
import sysconfig
import threading
import time

import atomics

if getattr(getattr(atomics, "AtomicInt64", None), "__module__", "") != "atomics._native":
    # Another distribution's package of the same import name replaced ftsync's atomics/__init__
    # (patterns._atomics_check says the same for ftsync bench and import patterns).
    sys.exit(
        f"python -m atomics: the 'atomics' module imported from {atomics.__file__} is not ftsync's: "
        "another distribution (such as the one named 'atomics') installs a package under the same "
        "import name and has replaced ftsync's.  To repair: pip uninstall atomics ftsync, then "
        "pip install ftsync (or use a separate virtual environment for the other package)."
    )

from atomics import AtomicCounter, AtomicInt64, _native  # noqa: E402


def build_facts():
    """(label, value) pairs describing this build and interpreter."""
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    try:
        from atomics import views  # noqa: F401  (first: its ImportError says why it is missing)

        import cffi

        views_state = f"available (cffi {cffi.__version__})"
    except ImportError as exc:
        views_state = f"unavailable: {exc}"
    return [
        ("ftsync", atomics.__version__),
        ("python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("platform", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"),
        ("free-threaded build", "yes" if free_threaded else "no"),
        ("GIL enabled", "yes" if gil else "no"),
        ("int64 atomics lock-free", "yes" if _native.INT64_LOCK_FREE else "NO"),
        ("counter cell size", f"{_native.CELL_SIZE} bytes"),
        ("atomics.views", views_state),
    ]


def _per_call_ns(fn, calls):
    """Best of three: nanoseconds per call of ``fn`` (called ``calls`` times in a tight loop)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def _single_thread_cases():
    a = AtomicInt64()
    counter = AtomicCounter()
    handle = counter.handle()
    lock = threading.Lock()
    box = [0]

    def lock_inc():
        with lock:
            box[0] += 1

    cases = [
        ("AtomicInt64.inc()", a.inc),
        ("AtomicInt64.compare_and_swap()", lambda: a.compare_and_swap(0, 0)),
        ("AtomicCounter.inc()", counter.inc),
        ("CounterHandle.inc()", handle.inc),
        ("threading.Lock + int", lock_inc),
    ]
    try:
        from atomics.views import Int64View

        cases.append(("Int64View.inc()", Int64View(bytearray(8)).inc))
    except ImportError:
        pass
    return cases


def _threads_total(threads, per_thread, make_worker):
    """Increments per second, all threads together; ``make_worker()`` runs in each thread."""
    barrier = threading.Barrier(threads + 1)

    def run():
        work = make_worker()
        barrier.wait()
        for _ in range(per_thread):
            work()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return threads * per_thread / (time.perf_counter() - start)


def _scaling_cases():
    shared = AtomicInt64()
    counter = AtomicCounter()
    lock = threading.Lock()
    box = [0]

    def lock_worker():
        def inc():
            with lock:
                box[0] += 1

        return inc

    return [
        ("AtomicInt64.inc()", lambda: shared.inc),
        ("CounterHandle.inc()", lambda: counter.handle().inc),
        ("threading.Lock + int", lock_worker),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m atomics", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke test)")
    args = parser.parse_args(argv)
    calls = 20_000 if args.quick else 500_000

    width = max(len(label) for label, _ in build_facts())
    for label, value in build_facts():
        print(f"{label + ':':<{width + 1}} {value}")

    print("\nsingle thread")
    for name, fn in _single_thread_cases():
        print(f"  {name:<32} {_per_call_ns(fn, calls):8.1f} ns/call")

    print("\nall threads together (million increments/s)")
    thread_counts = sorted({1, 2, min(4, os.cpu_count() or 1)})
    print(f"  {'':<32}" + "".join(f"{n:>5} thr" for n in thread_counts))
    for name, make_worker in _scaling_cases():
        rates = [_threads_total(n, calls // 2, make_worker) / 1e6 for n in thread_counts]
        print(f"  {name:<32}" + "".join(f"{r:9.1f}" for r in rates))
    print("\nside by side with the stdlib and peer libraries at 1..N threads: ftsync bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
