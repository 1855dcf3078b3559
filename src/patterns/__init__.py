"""Go's concurrency patterns for Python threads, built on :mod:`atomics`.

- :mod:`patterns.context`: cancellation, deadlines and values (Go's context package).
- :mod:`patterns.channel`: Channel and select (Go's channels).
- :mod:`patterns.semaphore`: Semaphore and WeightedSemaphore (Go's x/sync/semaphore).
- :mod:`patterns.pool`: WorkerPool, a ``concurrent.futures.Executor`` with imap, run and a context.
- :mod:`patterns.pipeline`: Pipeline, fan_out and fan_in over bounded Channels.
- :mod:`patterns.group`: Group, tasks that succeed or fail together (Go's errgroup).
- :mod:`patterns.shutdown`: Shutdown, ordered graceful shutdown (stop ingress -> drain -> close).
- :mod:`patterns.lockorder`: deadlock-free lock ordering and a lock-order checker.
- :mod:`patterns.ratelimit`: token bucket and window rate limiters, in process (lock-free) and
  in Redis (:mod:`patterns.ratelimit.redis`, imported on demand: redis is an optional extra).
- :mod:`patterns.dlock`: distributed locks (Redis, Redlock, etcd) with fencing tokens; import it
  explicitly (its clients are optional extras).
"""

from . import _atomics_check  # noqa: F401  (first: says so when another 'atomics' replaced ours)
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
from ._future import Future
from .group import Group
from .pipeline import Pipeline, PipelineRun, fan_in, fan_out
from .pool import PoolRun, PoolShutdownStatus, PoolStats, WorkerPool
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
    # pipeline
    "Pipeline",
    "PipelineRun",
    "fan_in",
    "fan_out",
    # pool
    "Future",
    "PoolRun",
    "PoolShutdownStatus",
    "PoolStats",
    "WorkerPool",
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
