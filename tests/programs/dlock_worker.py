"""A lock-holding process for tests/test_dlock_*.py.

    dlock_worker.py count COUNTER_URL ITERATIONS LABEL=LOCK_URL=COUNTER_KEY ...
        for each phase: prints "ready LABEL", waits for a line on stdin, then ITERATIONS times:
        acquire, GET the counter, sleep a little, SET counter+1, release; prints "done LABEL".
        LOCK_URL "none" skips the lock (the control that must lose updates).  One process runs
        every phase, so the test pays for starting the interpreters once.
    dlock_worker.py hold LOCK_URL NAME TTL [--fenced KEY COUNTER_URL]
        acquires, prints "held <token>", waits for a line on stdin, then tries to release and
        prints "released", "lost" (LockLost) or "not-owned"; with --fenced it first writes through
        FencedResource(KEY) and prints "written" or "stale".
"""

import sys
import time

import redis

from patterns.dlock import FencedResource, LockLost, LockNotOwned, StaleToken, lock_from_url


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def count(counter_url, iterations, *phases):
    """Each phase is LABEL=LOCK_URL=COUNTER_KEY (LOCK_URL "none": the no-lock control)."""
    counter = redis.Redis.from_url(counter_url)
    try:
        for phase in phases:
            label, lock_url, counter_key = phase.split("=", 2)
            lock = None if lock_url == "none" else lock_from_url(lock_url, "lost-update-" + counter_key, 10.0)
            try:
                emit(f"ready {label}")
                sys.stdin.readline()
                for _ in range(int(iterations)):
                    if lock is not None:
                        lock.acquire()
                    value = int(counter.get(counter_key) or 0)
                    time.sleep(0.0002)
                    counter.set(counter_key, value + 1)
                    if lock is not None:
                        lock.release()
            finally:
                if lock is not None:
                    lock.close()
            emit(f"done {label}")
    finally:
        counter.close()


def hold(lock_url, name, ttl, *flags):
    lock = lock_from_url(lock_url, name, float(ttl))
    lock.acquire()
    emit(f"held {lock.token}")
    sys.stdin.readline()
    if "--fenced" in flags:
        key, counter_url = flags[flags.index("--fenced") + 1 : flags.index("--fenced") + 3]
        client = redis.Redis.from_url(counter_url)
        try:
            FencedResource(client, key).write(lock.token, "from A")
            emit("written")
        except StaleToken:
            emit("stale")
        client.close()
    try:
        lock.release()
        emit("released")
    except LockLost:
        emit("lost")
    except LockNotOwned:
        emit("not-owned")
    lock.close()


if __name__ == "__main__":
    {"count": count, "hold": hold}[sys.argv[1]](*sys.argv[2:])
