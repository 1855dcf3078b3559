"""The peers, and how each suite gets them: a peer that is not installed skips with a reason.

- ``LockedInt``: what people write without an atomics library: an int behind a threading.Lock.
- ``itertools.count``: ``next()`` is a single C call (atomic under the GIL only).
- ft_utils ``ft_utils.concurrency.AtomicInt64`` (Python >= 3.13): ``incr()``, ``+= 1``, ``get()``.
- cereggii ``cereggii.AtomicInt64``: ``increment_and_get()``, ``compare_and_set()``, ``+= 1``,
  ``get()``, ``get_handle()`` (a per-thread handle).
- the PyPI ``atomics`` package: see ``_atomics_peer.py`` (own venv; its import name clashes).
"""

import threading

import pytest


class LockedInt:
    """An int guarded by a threading.Lock, with the same method names as atomics.AtomicInt64."""

    __slots__ = ("_lock", "_value")

    def __init__(self, value=0):
        self._lock = threading.Lock()
        self._value = value

    def load(self):
        with self._lock:
            return self._value

    def inc(self):
        with self._lock:
            self._value += 1
            return self._value

    def compare_and_swap(self, expected, desired):
        with self._lock:
            if self._value == expected:
                self._value = desired
                return True
            return False


def ours():
    import atomics  # ftsync's

    return atomics


def ours_views():
    return pytest.importorskip("atomics.views", exc_type=ImportError)


def ft_utils_int64():
    mod = pytest.importorskip(
        "ft_utils.concurrency",
        reason="ft_utils is not installed here (it supports Python >= 3.13 only; scripts/bench-peers.sh)",
    )
    return mod.AtomicInt64


def cereggii_int64():
    mod = pytest.importorskip("cereggii", reason="cereggii is not installed here (scripts/bench-peers.sh)")
    return mod.AtomicInt64
