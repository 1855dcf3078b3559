"""Timing worker for the PyPI `atomics` package, run inside its own virtualenv.

The package's import name clashes with ftsync's ``atomics``, so the benchmark suite starts this
script with the peer venv's interpreter and talks to it over stdin/stdout, one line each way:

    -> "<op> <rounds>"         op: inc | cas | load
    <- "<ns> <ns> ..."         per-round times in ns; each round is CALLS_PER_ROUND calls
    -> "ping"                  <- "pong"   (round-trip check)
    -> "info"                  <- one JSON line: versions of Python and atomics
    EOF or "quit"              exit

The view is ``atomics.atomicview(buffer=bytearray(8), atype=atomics.INT)``, entered once as a
context manager (as its docs show) and kept open for the worker's life.
"""

import json
import os
import sys
import time
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import atomics  # the PyPI package, not ftsync: this runs in the peer venv  # noqa: E402
from _timing import CALLS_PER_ROUND, make_loop  # noqa: E402


def main():
    buf = bytearray(8)
    with atomics.atomicview(buffer=buf, atype=atomics.INT) as view:
        loops = {
            "inc": make_loop("v.inc()", {"v": view}),
            "cas": make_loop("v.cmpxchg_strong(0, 0)", {"v": view}),
            "load": make_loop("v.load()", {"v": view}),
        }
        clock = time.perf_counter_ns
        out = sys.stdout
        for line in sys.stdin:
            parts = line.split()
            if not parts or parts[0] == "quit":
                break
            if parts[0] == "ping":
                out.write("pong\n")
            elif parts[0] == "info":
                info = {
                    "python": sys.version.split()[0],
                    "atomics": version("atomics"),
                    "calls_per_round": CALLS_PER_ROUND,
                }
                out.write(json.dumps(info) + "\n")
            else:
                run = loops[parts[0]]
                if parts[0] == "cas":
                    view.store(0)
                times = []
                for _ in range(int(parts[1])):
                    t0 = clock()
                    run()
                    times.append(clock() - t0)
                out.write(" ".join(map(str, times)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
