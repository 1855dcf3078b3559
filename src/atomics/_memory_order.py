"""MemoryOrder: the C11 memory orders, numbered as csrc/ftsync_atomic.h numbers them."""

import enum

__all__ = ["MemoryOrder"]


class MemoryOrder(enum.IntEnum):
    """How an atomic operation orders the memory accesses around it (C11 / C++11 semantics).

    ``SEQ_CST`` (the default everywhere) is what Go's sync/atomic gives.  Weaker orders are
    for code that can prove it needs no more: a load may not be ``RELEASE`` or ``ACQ_REL``, a
    store may not be ``CONSUME``, ``ACQUIRE`` or ``ACQ_REL``; ValueError says so.
    """

    RELAXED = 0
    CONSUME = 1
    ACQUIRE = 2
    RELEASE = 3
    ACQ_REL = 4
    SEQ_CST = 5
