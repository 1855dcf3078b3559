"""A lock-holding process for tests/test_dlock_*.py.

    dlock_worker.py count LOCK_URL NAME COUNTER_URL COUNTER_KEY ITERATIONS [--no-lock]
        prints "ready", waits for a line on stdin, then ITERATIONS times: acquire, GET the counter,
        sleep a little, SET counter+1, release.  Prints "done".  --no-lock skips the lock (the
        control that must lose updates).
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


def count(lock_url, name, counter_url, counter_key, iterations, *flags):
    use_lock = "--no-lock" not in flags
    counter = redis.Redis.from_url(counter_url)
    lock = lock_from_url(lock_url, name, 10.0)
    try:
        emit("ready")
        sys.stdin.readline()
        for _ in range(int(iterations)):
            if use_lock:
                lock.acquire()
            value = int(counter.get(counter_key) or 0)
            time.sleep(0.0002)
            counter.set(counter_key, value + 1)
            if use_lock:
                lock.release()
    finally:
        lock.close()
        counter.close()
    emit("done")


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
