"""Channel and select: Go's channels for threads.

``Channel(capacity)`` is a FIFO between threads: ``send`` blocks while the buffer is full,
``recv`` while it is empty; capacity 0 is a rendezvous (each send waits for its receiver).
``close()`` says no more values will come: sends then raise :class:`ChannelClosed`, receives
drain what is buffered and then report closed, and iteration ends.  ``select`` waits on
several sends and receives at once and performs exactly one of them::

    jobs = Channel(128)
    chosen = select(Recv(jobs), Recv(quit), timeout=1.0)   # Selected(index, value, ok)

Every blocking call takes ``timeout=`` (TimeoutError) and ``ctx=`` (raises ``ctx.err()``).

Two twins implement one algorithm, and every channel test runs on both: ``patterns._channel``
(Cython: C atomics, a ``PyMutex``, linked wait queues), which this module exports, and
``patterns._channel_py``, the same algorithm in Python over ``atomics.AtomicInt64``.  The Python
twin is the readable reference the compiled one is checked against, and a debugging aid
(Python frames in tracebacks and profilers): ``FTSYNC_PYTHON_CHANNEL=1`` in the environment
makes this module export it.  It is no fallback for a build without extensions: ftsync's
atomics, which it uses, are compiled too.
"""

import os

from ._channel_base import ChannelClosed, Recv, Selected, Send

if os.environ.get("FTSYNC_PYTHON_CHANNEL"):
    from ._channel_py import Channel, select
else:
    from ._channel import Channel, select

__all__ = ["Channel", "ChannelClosed", "Recv", "Selected", "Send", "select"]

# Tracebacks, reprs and the API docs name the public home, not the private defining module.
for _public in (ChannelClosed, Recv, Selected, Send):
    _public.__module__ = __name__
del _public
