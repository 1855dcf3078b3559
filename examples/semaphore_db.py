"""Semaphore-limited database calls: 50 threads, never more than 5 connections at once.

A ``Semaphore`` caps how many threads talk to a scarce resource; ``acquire(timeout=)`` turns
"the pool is exhausted" into a clear TimeoutError instead of a hang, and ``ctx=`` lets a
cancelled request stop waiting.

    python examples/semaphore_db.py
"""

from __future__ import annotations

import sys
import time

from atomics import AtomicInt64
from patterns import Group, Semaphore, background, with_timeout

MAX_CONNECTIONS = 5


class FakeDatabase:
    """Counts concurrent connections, as a real server's max_connections would."""

    def __init__(self) -> None:
        self.open = AtomicInt64(0)
        self.peak = AtomicInt64(0)

    def query(self, user: int) -> int:
        now = self.open.inc()
        self.peak.fetch_max(now)
        time.sleep(0.002)
        self.open.dec()
        return user * 2


def main() -> int:
    db = FakeDatabase()
    connections = Semaphore(MAX_CONNECTIONS)
    results = [0] * 50

    def handle(user: int) -> None:
        with with_timeout(background(), 5.0) as ctx:
            connections.acquire(timeout=5.0, ctx=ctx)
            try:
                results[user] = db.query(user)
            finally:
                connections.release()

    with Group() as group:
        for user in range(50):
            group.go(handle, user)
    assert results == [u * 2 for u in range(50)]
    assert db.peak.load() <= MAX_CONNECTIONS, db.peak.load()
    print(f"50 requests, at most {db.peak.load()} connections open at once (limit {MAX_CONNECTIONS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
