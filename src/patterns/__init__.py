"""Go's concurrency patterns for Python threads, built on :mod:`atomics`.

Context, channels, worker pools, pipelines, semaphores, rate limiters and distributed locks
arrive here module by module (see the project's DESIGN and CHANGELOG).
"""

__all__: list[str] = []
