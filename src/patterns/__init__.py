"""Go's concurrency patterns for Python threads, built on :mod:`atomics`.

- :mod:`patterns.context`: cancellation, deadlines and values (Go's context package).
- :mod:`patterns.channel`: Channel and select (Go's channels).
- :mod:`patterns.semaphore`: Semaphore and WeightedSemaphore (Go's x/sync/semaphore).
- :mod:`patterns.group`: Group, tasks that succeed or fail together (Go's errgroup).
- :mod:`patterns.shutdown`: Shutdown, ordered graceful shutdown (stop ingress -> drain -> close).
- :mod:`patterns.lockorder`: deadlock-free lock ordering and a lock-order checker.
- :mod:`patterns.dlock`: distributed locks (Redis, Redlock, etcd) with fencing tokens; import it
  explicitly (its clients are optional extras).
"""

from .channel import Channel, ChannelClosed, Recv, Selected, Send, select
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
from .group import Group
from .semaphore import Semaphore, WeightedSemaphore
from .lockorder import CheckedLock, CheckedRLock, LockOrderChecker, LockOrderViolation, ordered
from .shutdown import Shutdown, ShutdownReport, StepResult

__all__ = [
    # context
    "Canceled",
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
    # channel
    "Channel",
    "ChannelClosed",
    "Recv",
    "Selected",
    "Send",
    "select",
    # semaphore
    "Semaphore",
    "WeightedSemaphore",
    # group, shutdown
    "Group",
    "Shutdown",
    "ShutdownReport",
    "StepResult",
    # lockorder
    "CheckedLock",
    "CheckedRLock",
    "LockOrderChecker",
    "LockOrderViolation",
    "ordered",
]
