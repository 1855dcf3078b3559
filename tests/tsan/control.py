"""Run the racy control extension from four threads: under TSan this must produce a report."""

import sys
import threading

import ftsync_racy

assert not sys._is_gil_enabled(), "the control needs the GIL off (PYTHON_GIL=0)"
start = threading.Barrier(4)


def hammer():
    start.wait()
    for _ in range(20_000):
        ftsync_racy.bump()


threads = [threading.Thread(target=hammer) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("control ran")
