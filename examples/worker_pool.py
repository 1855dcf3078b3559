"""Worker pool: hash a batch of blobs on a WorkerPool, streaming results with imap.

Swap ``concurrent.futures.ThreadPoolExecutor`` for ``patterns.WorkerPool`` and keep the code;
``imap`` adds streaming with a bounded number of jobs in flight.  On a free-threaded build
(``PYTHON_GIL=0``) the hashing runs on every core.

    python examples/worker_pool.py [count]
"""

from __future__ import annotations

import hashlib
import sys

from patterns import WorkerPool


def digest(seed: int) -> str:
    """A CPU-bound job: hash a 64 KiB blob derived from ``seed``."""
    blob = seed.to_bytes(8, "little") * 8192
    return hashlib.sha256(blob).hexdigest()[:16]


def main(count: int = 200) -> int:
    with WorkerPool(4, name="hasher") as pool:
        first = pool.submit(digest, 0).result(timeout=10)
        digests = list(pool.imap(digest, range(count)))  # in input order, at most a window in flight
        stats = pool.stats()
    assert digests[0] == first and len(set(digests)) == count
    print(f"hashed {count} blobs; first {first}; completed {stats.completed}, failed {stats.failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
