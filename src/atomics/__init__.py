"""Lock-free 64-bit atomics for Python, correct and fast on free-threaded CPython.

- :class:`AtomicInt64`: an int64 with load/store/add/CAS, each one C11 atomic instruction.
- :class:`AtomicBool`: a flag with test-and-set and compare-and-swap.
- :class:`AtomicCounter`: a striped counter that scales with threads (per-thread handles).
- :mod:`atomics.views`: the same operations on any writable buffer (bytearray, mmap, shared
  memory, numpy), with explicit :class:`MemoryOrder` (needs cffi).
"""

from importlib.metadata import PackageNotFoundError, version

from ._memory_order import MemoryOrder
from ._native import AtomicBool, AtomicCounter, AtomicInt64, CounterHandle

try:
    __version__ = version("ftsync")
except PackageNotFoundError:  # running from a source tree that was built in place
    __version__ = "0+unknown"

__all__ = ["AtomicBool", "AtomicCounter", "AtomicInt64", "CounterHandle", "MemoryOrder", "__version__"]
