"""Channel and select: Go's channels for threads.

``Channel(capacity)`` is a FIFO between threads: ``send`` blocks while the buffer is full,
``recv`` while it is empty; capacity 0 is a rendezvous (each send waits for its receiver).
``close()`` says no more values will come: sends then raise :class:`ChannelClosed`, receives
drain what is buffered and then report closed, and iteration ends.  ``select`` waits on
several sends and receives at once and performs exactly one of them::

    jobs = Channel(128)
    chosen = select(Recv(jobs), Recv(quit), timeout=1.0)   # Selected(index, value, ok)

Every blocking call takes ``timeout=`` (TimeoutError) and ``ctx=`` (raises ``ctx.err()``).

Compiled with Cython (``patterns._channel``: C atomics, a ``PyMutex``, linked wait queues).
The same algorithm written in Python, tests/channel_reference.py, runs every channel test
beside it as a cross-check.
"""

from ._channel import Channel, select
from ._channel_base import ChannelClosed, Recv, Selected, Send

__all__ = ["Channel", "ChannelClosed", "Recv", "Selected", "Send", "select"]

# Tracebacks, reprs and the API docs name the public home, not the private defining module.
for _public in (ChannelClosed, Recv, Selected, Send):
    _public.__module__ = __name__
del _public
