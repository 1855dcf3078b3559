"""Redis-backed rate limiters: one limit shared by every process that talks to one Redis.

``RedisTokenBucket``, ``RedisSlidingWindowLog``, ``RedisSlidingWindowCounter`` and
``RedisFixedWindow`` mirror the in-process limiters of :mod:`patterns.ratelimit`::

    r = redis.Redis(host="...", socket_timeout=1.0)
    lim = RedisTokenBucket(r, "api:user:42", rate=10, burst=20)
    if lim.allow(): ...

- One EVALSHA round trip per decision; after a NOSCRIPT (a restart, SCRIPT FLUSH) the script
  is loaded and the call retried once.  Decisions are written straight onto a connection of
  the client's pool, with no retry (see ``patterns._redis_wire``): a lost reply raises
  instead of counting a decision twice.
- Time is the server's (``TIME`` inside the script), never the client's clock, so clients
  with skewed clocks agree; there is no ``clock=`` argument.
- Keys are ``ftsync:rl:{<name>}:<kind>``: the ``{hash tag}`` keeps a limiter on one Redis
  Cluster slot.  A name with a hash tag of its own (``"user{42}"``) is used as it is,
  ``ftsync:rl:user{42}:<kind>``, in the slot of its tag, as for RedisLock, so related locks
  and limiters can share a slot; other braces are refused.  Every key has a TTL, so idle
  limiters cost nothing.
- Every client of one name should use the same parameters (rate/burst, limit/window): they
  travel with each call.  A token bucket written under other rate/burst (``set_rate``,
  ``set_burst``, a rolling deploy) is converted keeping its token count, so clients that
  disagree for a while never mint tokens by it; the windows simply apply the caller's limit.
- A limiter never allows when Redis cannot answer: it raises :class:`RedisUnavailable`,
  naming the server.  Give the client a ``socket_timeout`` so a hung server fails fast.

``RedisTokenBucket(..., local_batch=k)`` leases up to ``k`` tokens per round trip and serves
them locally until they run out: about ``k`` times fewer round trips, at the price that
tokens leased earlier may be spent later, so in any interval each client may admit up to
``k - 1`` more than the exact limit allows (bounded: ``clients * (k - 1)`` in all).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import Any

from .. import _waiting
from . import _lua
from .._redis_keys import slot_prefix
from .._validate import check_name
from ._protocol import Cancel, Ops, Sleep, TokenBucketCore, WindowCore, server_name

try:
    import redis as _redis
except ImportError as exc:  # pragma: no cover - the redis extra is missing
    raise ImportError("patterns.ratelimit.redis needs redis-py: pip install 'ftsync[redis]'") from exc

from .._redis_wire import ScriptWire  # noqa: E402 - it needs redis-py, named just above

__all__ = [
    "RedisFixedWindow",
    "RedisReservation",
    "RedisSlidingWindowCounter",
    "RedisSlidingWindowLog",
    "RedisTokenBucket",
    "RedisUnavailable",
]

_US = 1_000_000.0
_UNAVAILABLE = (_redis.exceptions.ConnectionError, _redis.exceptions.TimeoutError)


class RedisUnavailable(ConnectionError):
    """Redis did not answer a rate-limit decision; nothing was allowed."""


def _sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


class _RedisLimiter:
    """The client, the key and the script; ``_eval`` turns connection failures into errors;
    ``_run`` drives an operation of the protocol core (blocking)."""

    _kind = ""
    _source = ""

    def __init__(self, client: Any, name: str) -> None:
        if not hasattr(client, "evalsha") or not hasattr(client, "script_load"):
            raise TypeError(f"client must be a redis.Redis, got {type(client).__name__}")
        self._name = check_name(name)
        self._client = client
        self._key = f"ftsync:rl:{slot_prefix(name)}:{self._kind}"
        self._sha = _sha1(self._source)
        self._wire = ScriptWire(client, self._source, [self._key], self._sha)
        self._allow_one: bytes | None = None  # allow(1)'s arguments, packed (direct wire only)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key(self) -> str:
        """The Redis key holding this limiter's state."""
        return self._key

    def _eval(self, *args: object) -> Any:
        """One EVALSHA; after a NOSCRIPT (restart, SCRIPT FLUSH) load the script and retry."""
        try:
            return self._wire.call(*args)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def _run(self, ops: Ops) -> Any:
        """Run a protocol operation: its script calls and sleeps, blocking."""
        try:
            request = next(ops)
            while True:
                try:
                    if type(request) is Sleep:
                        result: Any = _waiting.sleep(request.seconds, request.ctx)
                    elif type(request) is Cancel:
                        result = None
                        try:
                            self._eval(*request.args)
                        except RedisUnavailable:
                            pass  # best effort: the wait is failing already
                    else:
                        result = self._eval(*request)
                except BaseException as exc:  # noqa: BLE001 - thrown into the operation
                    request = ops.throw(exc)
                else:
                    request = ops.send(result)
        except StopIteration as stop:
            return stop.value

    def _pack_allow_one(self, *args: object) -> None:
        """Pack ``allow(1)``'s arguments once: the hot path then sends fixed bytes."""
        self._allow_one = self._wire.pack(*args) if self._wire.direct else None
        self._allow_one_count = len(args)

    def _allow_one_call(self) -> Any:
        try:
            return self._wire.call_packed(self._allow_one, self._allow_one_count)  # type: ignore[arg-type]
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> RedisUnavailable:
        return RedisUnavailable(
            f"rate limiter {self._name!r}: Redis at {server_name(self._client)} did not answer "
            f"({type(exc).__name__}: {exc}); nothing was allowed"
        )


# -- token bucket --------------------------------------------------------------------------------


class RedisReservation:
    """Tokens taken from a RedisTokenBucket now, to be used ``delay()`` seconds from now."""

    __slots__ = ("_act", "_bucket", "_done", "_due", "_gen", "_mine", "_myrate", "_n", "_prev", "_t0", "ok")

    def __init__(self, bucket: Any, ok: bool, n: int, due_us: float, mine: str | None, act: str,
                 prev: str = "0", gen: int = 0) -> None:
        self._bucket = bucket
        self._myrate = bucket._rb[0]  # Go: a reservation keeps the rate it was made under
        self._prev = prev
        self._gen = gen
        self.ok = ok
        self._n = n
        self._due = due_us / _US
        self._mine = mine
        self._act = act
        self._t0 = time.monotonic()
        self._done = False

    @property
    def tokens(self) -> int:
        """Tokens this reservation holds (0 if it is not ok)."""
        return self._n if self.ok else 0

    def delay(self) -> float:
        """Seconds to wait before acting (``inf`` if not ok, or never: rate 0)."""
        if not self.ok:
            return math.inf
        return max(0.0, self._due - (time.monotonic() - self._t0))

    def _cancel_args(self) -> tuple | None:
        if not self.ok or self._n == 0 or self._done or self._mine is None:
            return None
        self._done = True
        return ("cancel", *self._bucket._rb, self._n, self._mine, self._act, self._prev, self._gen,
                self._myrate)

    def cancel(self) -> None:
        """Give back the tokens not yet claimed by later reservations (Go's rule); idempotent."""
        args = self._cancel_args()
        if args is not None:
            self._bucket._eval(*args)

    def __repr__(self) -> str:
        if not self.ok:
            return "<RedisReservation not ok>"
        return f"<RedisReservation {self._n} tokens, delay {self.delay():.6f} s>"


class RedisTokenBucket(TokenBucketCore, _RedisLimiter):
    """A token bucket of ``burst`` tokens refilled at ``rate``/s, shared through Redis (GCRA).

    Same decisions as :class:`patterns.ratelimit.TokenBucket` (``allow``/``reserve``/``wait``,
    Go's reservation rules), taken on the server's clock, which may step back (a failover, an
    NTP step): that is time standing still, as in process.  ``rate`` may be 0 (the burst
    only: the state then has no TTL, nothing refills it) or ``INF`` (everything allowed, with
    no round trip; going back to a finite rate resumes the state in Redis, which other
    clients may have used meanwhile).
    """

    _kind = "tb"
    _source = _lua.TOKEN_BUCKET
    _reservation_type = RedisReservation

    def __init__(self, client: Any, name: str, rate: float, burst: int, *,
                 local_batch: int | None = None) -> None:
        self._setup(rate, burst, local_batch)
        _RedisLimiter.__init__(self, client, name)
        self._set_rb()
        self._lease_lock = threading.Lock()

    def _set_rb(self) -> None:
        TokenBucketCore._set_rb(self)
        self._pack_allow_one(b"allow", *self._rb, 1, 0)

    def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now; a refusal takes none."""
        if self._batch is None:
            if n.__class__ is int and n == 1 and self._allow_one is not None and self._burst >= 1 \
                    and not self._unlimited:
                return self._allow_one_call() == 1  # the hot path: fixed bytes, one round trip
            return self._run(self._allow_ops(n))
        with self._lease_lock:
            return self._run(self._allow_ops(n))

    def reserve(self, n: int = 1) -> RedisReservation:
        """Take ``n`` tokens now, possibly on credit; not ok only when ``n`` exceeds the burst
        (rate 0 and too few tokens: ok, never time to act, as Go)."""
        return self._run(self._reserve_ops(n))

    def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Block until ``n`` tokens are granted (rules of ``TokenBucket.wait``); returns True."""
        return self._run(self._wait_ops(n, timeout, ctx))

    def tokens(self) -> float:
        """Tokens available now, on the server's clock (negative while on credit)."""
        return self._run(self._tokens_ops())

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never, n above the burst
        or the rate 0)."""
        return self._run(self._retry_after_ops(n))


# -- windows -------------------------------------------------------------------------------------


class _RedisWindow(WindowCore, _RedisLimiter):
    """allow / remaining / reset_after / retry_after / wait over one window script."""

    def __init__(self, client: Any, name: str, limit: int, window: float) -> None:
        self._setup(limit, window)
        _RedisLimiter.__init__(self, client, name)
        self._pack_allow_one(b"allow", *self._lw, 1)

    def allow(self, n: int = 1) -> bool:
        """Admit ``n`` calls if the window has room now; a refusal changes nothing."""
        if n.__class__ is int and n == 1 and self._allow_one is not None and self._limit >= 1:
            return self._allow_one_call() == 1
        return self._run(self._allow_ops(n))

    def remaining(self) -> int:
        """How many more calls would be admitted right now."""
        return self._run(self._remaining_ops())

    def reset_after(self) -> float:
        """Seconds until nothing admitted so far counts any more."""
        return self._run(self._reset_after_ops())

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never)."""
        return self._run(self._retry_after_ops(n))

    def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Block until ``n`` calls are admitted (rules of the in-process ``wait``)."""
        return self._run(self._wait_ops(n, timeout, ctx))


class RedisSlidingWindowLog(_RedisWindow):
    """Exact: at most ``limit`` admissions in any ``window`` seconds, across every client.

    A Redis list of the last ``limit`` admission times (memory bounded by ``limit``); a
    decision reads one element and pushes ``n``.
    """

    _kind = "swl"
    _source = _lua.SLIDING_WINDOW_LOG


class RedisSlidingWindowCounter(_RedisWindow):
    """Two fixed windows weighted by overlap, in one small Redis hash."""

    _kind = "swc"
    _source = _lua.SLIDING_WINDOW_COUNTER


class RedisFixedWindow(_RedisWindow):
    """At most ``limit`` admissions per fixed window of the server's clock."""

    _kind = "fw"
    _source = _lua.FIXED_WINDOW
