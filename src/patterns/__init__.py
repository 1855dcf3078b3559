"""Go's concurrency patterns for Python threads, built on :mod:`atomics`.

- :mod:`patterns.context`: cancellation, deadlines and values (Go's context package).
- :mod:`patterns.channel`: Channel and select (Go's channels).
- :mod:`patterns.lockorder`: deadlock-free lock ordering and a lock-order checker.
"""

from .channel import Channel, ChannelClosed, Recv, Selected, Send, select
from .lockorder import CheckedLock, CheckedRLock, LockOrderChecker, LockOrderViolation, ordered
from .context import (
    Canceled,
    Context,
    ContextError,
    DeadlineExceeded,
    SignalReceived,
    after_func,
    background,
    cause,
    signal_context,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
    with_timeout_cause,
    with_value,
    without_cancel,
)

__all__ = [
    "Canceled",
    "Channel",
    "ChannelClosed",
    "Recv",
    "Selected",
    "Send",
    "select",
    "Context",
    "ContextError",
    "DeadlineExceeded",
    "SignalReceived",
    "after_func",
    "background",
    "cause",
    "signal_context",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
    "CheckedLock",
    "CheckedRLock",
    "LockOrderChecker",
    "LockOrderViolation",
    "ordered",
]
