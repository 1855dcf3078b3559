"""Distributed locks with fencing: workers increment a shared Redis counter under a lock.

Each worker thread has its own lock object (as separate processes or machines would) for the
same name, from a URL: ``redis://host:port`` (RedisLock), ``etcd://host:port`` (EtcdLock) or
``redlock://h1:p1,h2:p2,h3:p3`` (Redlock over three independent nodes).  Inside the lock a worker reads the counter and writes it back + 1;
without the lock, updates would be lost.  Every write goes through ``FencedResource`` with the
lock's fencing token, so a holder that paused past its TTL could not overwrite a newer
owner's write (Redlock has no token: it is an efficiency lock and skips the fence).

    python examples/distributed_lock.py REDIS_URL [LOCK_URL]
"""

from __future__ import annotations

import sys
import threading
import uuid

import redis

from patterns.dlock import FencedResource, lock_from_url

WORKERS, ROUNDS = 4, 25


def main(redis_url: str, lock_url: str) -> int:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    name = f"example:{uuid.uuid4().hex[:8]}"  # a fresh name per run
    counter = FencedResource(client, f"{name}:counter")
    fenced = not lock_url.startswith("redlock://")

    def worker() -> None:
        lock = lock_from_url(lock_url, name, ttl=10, timeout=30)
        try:
            for _ in range(ROUNDS):
                with lock:
                    value, _token = counter.read()
                    current = int(value or 0)
                    if fenced:
                        assert lock.token is not None
                        counter.write(lock.token, current + 1)  # StaleToken if a newer owner wrote
                    else:
                        client.hset(f"{name}:counter", "value", current + 1)
        finally:
            lock.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    value, token = counter.read()
    total = int(value or 0)
    assert total == WORKERS * ROUNDS, total
    print(f"{lock_url.split('://')[0]} lock: {WORKERS} workers x {ROUNDS} increments = {total}"
          + (f", last fencing token {token}" if fenced else ""))
    if lock_url.startswith(("redis://", "rediss://")):
        client_for_lock = redis.Redis.from_url(lock_url, socket_timeout=5)
        # the lock's last token is kept forever (tokens only grow); its wake-up keys expire soon
        client_for_lock.delete(name, *(f"{{{name}}}:{key}" for key in ("fence", "wake", "waiting")))
        client_for_lock.close()
    client.delete(f"{name}:counter")
    client.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]))
