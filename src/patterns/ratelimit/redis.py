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
  Cluster slot.  Every key has a TTL, so idle limiters cost nothing.
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

from .._channel_base import check_wait
from . import _lua

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


def _num(value: float) -> bytes:
    """A number as the script reads it (pre-encoded once: the hot path sends bytes)."""
    return repr(value).encode()


# -- argument checks shared with the asyncio twins -----------------------------------------------


def server_name(client: Any) -> str:
    """``host:port`` (or the socket path) of a redis-py client, for error messages."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return repr(client)
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name or "{" in name or "}" in name:
        raise ValueError(f"name must be a non-empty str without braces, got {name!r}")
    return name


def check_int(value: object, name: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_positive(value: object, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of {what}, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_n(n: object) -> int:
    return check_int(n, "n")


def check_rate(rate: object) -> float:
    """A token bucket's rate: a number >= 0 (0: the burst only) or ``INF`` (unlimited)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"rate must be a number of tokens per second, got {type(rate).__name__}")
    if math.isnan(rate) or rate < 0:
        raise ValueError(f"rate must be >= 0 (or INF), got {rate!r}")
    return float(rate)


_SLICE = 0.1  # the longest single sleep of a wait: Ctrl-C lands, any delay can be waited


def pause(delay: float, ctx: Any) -> bool:
    """Sleep ``delay`` seconds in slices (so a delay beyond threading.TIMEOUT_MAX works);
    True if ``ctx`` ended first."""
    end = time.monotonic() + delay
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        left = min(left, _SLICE)
        if ctx is None:
            time.sleep(left)
        elif ctx.done().wait(left):
            return True


def no_budget_error(n: int) -> ValueError:
    return ValueError(
        f"wait({n}) could never end: the rate is 0 and fewer than {n} tokens are left "
        "(give a timeout to get TimeoutError)"
    )


def wait_budget(timeout: float | None, ctx: Any) -> float:
    """Seconds a wait may take: the timeout or the ctx's deadline, whichever comes first."""
    budget = math.inf if timeout is None else timeout
    if ctx is not None and ctx.deadline() is not None:
        budget = min(budget, ctx.deadline() - time.monotonic())
    return max(budget, 0.0)


class _RedisLimiter:
    """The client, the key and the script; ``_eval`` turns connection failures into errors."""

    _kind = ""
    _source = ""

    def __init__(self, client: Any, name: str) -> None:
        if not hasattr(client, "evalsha") or not hasattr(client, "script_load"):
            raise TypeError(f"client must be a redis.Redis, got {type(client).__name__}")
        self._name = check_name(name)
        self._client = client
        self._key = f"ftsync:rl:{{{name}}}:{self._kind}"
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
        """Seconds to wait before acting (``inf`` if not ok)."""
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


class _TokenBucketParams(_RedisLimiter):
    _kind = "tb"
    _source = _lua.TOKEN_BUCKET

    def _setup(self, rate: object, burst: object, local_batch: object) -> None:
        self._rate = check_rate(rate)
        self._burst = check_int(burst, "burst")
        if local_batch is not None:
            check_int(local_batch, "local_batch", 1)
        self._batch = local_batch
        self._leased = 0
        self._rb = (_num(self._rate), _num(self._burst))

    def _set_rb(self) -> None:
        """New rate/burst: the arguments every call sends, and allow(1)'s packed form."""
        self._rb = (_num(self._rate), _num(self._burst))
        self._pack_allow_one(b"allow", *self._rb, 1, 0)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    @property
    def local_batch(self) -> int | None:
        return self._batch

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} rate={self._rate}/s burst={self._burst}>"

    def set_rate(self, rate: float) -> None:
        """Use ``rate`` from now on, keeping the tokens there are (Go's ``SetLimit``).

        The parameters travel with every call: the state in Redis is converted (token count
        kept, clamped to the burst) by the first decision made with the new ones, so every
        client sharing the name should switch.  Reservations made before the conversion can
        no longer be cancelled.
        """
        self._rate = check_rate(rate)
        self._set_rb()

    def set_burst(self, burst: int) -> None:
        """Use ``burst`` from now on; tokens above it are dropped (Go's ``SetBurst``).

        Converted in Redis as for ``set_rate``.
        """
        self._burst = check_int(burst, "burst")
        self._set_rb()

    @property
    def _unlimited(self) -> bool:
        """Rate INF: every call allowed here, without a round trip (nothing to count)."""
        return self._rate == math.inf

    def _retry_after(self, n: int, tokens: float) -> float:
        if tokens >= n:
            return 0.0
        if self._rate == 0:
            return math.inf
        return (n - tokens) / self._rate

    @staticmethod
    def _max_wait(budget: float) -> float:
        """wait's bound for the script: bounded even without a budget, so that rate 0 with
        too few tokens is refused rather than reserved never to act."""
        return 1e300 if budget == math.inf else budget * _US

    def _refused_wait(self, n: int, budget: float) -> Exception:
        if budget == math.inf and self._rate == 0:
            return no_budget_error(n)
        return TimeoutError(f"wait({n}) would need longer than the timeout or the context's deadline allows")

    def _reservation(self, reply: list, n: int) -> RedisReservation:
        ok = int(reply[0]) == 1
        due = float(reply[1])
        if not ok:
            return RedisReservation(self, False, n, -1.0, None, "0")
        return RedisReservation(self, True, n, due, reply[2], reply[4], reply[5], int(reply[6]))

    def _too_big(self, n: int) -> None:
        raise ValueError(f"n must be <= burst ({self._burst}) to ever be granted, got {n}")


class RedisTokenBucket(_TokenBucketParams):
    """A token bucket of ``burst`` tokens refilled at ``rate``/s, shared through Redis (GCRA).

    Same decisions as :class:`patterns.ratelimit.TokenBucket` (``allow``/``reserve``/``wait``,
    Go's reservation rules), taken on the server's clock, which may step back (a failover, an
    NTP step): that is time standing still, as in process.  ``rate`` may be 0 (the burst
    only: the state then has no TTL, nothing refills it) or ``INF`` (everything allowed, with
    no round trip; going back to a finite rate resumes the state in Redis, which other
    clients may have used meanwhile).
    """

    def __init__(self, client: Any, name: str, rate: float, burst: int, *,
                 local_batch: int | None = None) -> None:
        self._setup(rate, burst, local_batch)
        super().__init__(client, name)
        self._set_rb()
        self._lease_lock = threading.Lock()

    def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now; a refusal takes none."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            return False
        if self._batch is None:
            if n == 1 and self._allow_one is not None:
                return self._allow_one_call() == 1
            return self._eval(b"allow", *self._rb, n, 0) == 1
        with self._lease_lock:
            if self._leased >= n:
                self._leased -= n
                return True
            reply = self._eval("lease", *self._rb, n, 0, max(self._batch, n))
            if int(reply[0]) != 1:
                return False
            self._leased += int(reply[3]) - n
            return True

    def reserve(self, n: int = 1) -> RedisReservation:
        """Take ``n`` tokens now, possibly on credit; not ok only when ``n`` exceeds the burst."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return RedisReservation(self, True, n, 0.0, None, "0")
        if n > self._burst:
            return RedisReservation(self, False, n, -1.0, None, "0")
        return self._reservation(self._eval("take", *self._rb, n, -1), n)

    def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Block until ``n`` tokens are granted (rules of ``TokenBucket.wait``); returns True."""
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            self._too_big(n)
        budget = wait_budget(timeout, ctx)
        res = self._reservation(self._eval("take", *self._rb, n, self._max_wait(budget)), n)
        if not res.ok:
            raise self._refused_wait(n, budget)
        try:
            if pause(res.delay(), ctx):
                res.cancel()
                raise ctx.err()
        except BaseException:
            try:
                res.cancel()
            except RedisUnavailable:
                pass
            raise
        return True

    def tokens(self) -> float:
        """Tokens available now, on the server's clock (negative while on credit)."""
        if self._unlimited:
            return math.inf
        return float(self._eval("peek", *self._rb, 0, 0)[2])

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never, n above the burst
        or the rate 0)."""
        n = check_n(n)
        if n == 0 or self._unlimited:
            return 0.0
        if n > self._burst:
            return math.inf
        return self._retry_after(n, self.tokens())


# -- windows -------------------------------------------------------------------------------------


class _WindowParams(_RedisLimiter):
    def _setup(self, limit: object, window: object) -> None:
        self._limit = check_int(limit, "limit")
        self._window = check_positive(window, "window", "seconds")
        self._win_us = self._window * _US
        self._lw = (_num(self._limit), _num(self._win_us))

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window(self) -> float:
        return self._window

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {self._limit} per {self._window} s>"

    def _too_big(self, n: int) -> None:
        raise ValueError(f"n must be <= limit ({self._limit}) to ever be admitted, got {n}")

    @staticmethod
    def _remaining(limit: int, reply: list) -> int:
        return max(0, math.floor(limit - float(reply[2]) + 1e-9))


class _RedisWindow(_WindowParams):
    """allow / remaining / reset_after / retry_after / wait over one window script."""

    def __init__(self, client: Any, name: str, limit: int, window: float) -> None:
        self._setup(limit, window)
        super().__init__(client, name)
        self._pack_allow_one(b"allow", *self._lw, 1)

    def allow(self, n: int = 1) -> bool:
        """Admit ``n`` calls if the window has room now; a refusal changes nothing."""
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            return False
        if n == 1 and self._allow_one is not None:
            return self._allow_one_call() == 1
        return self._eval(b"allow", *self._lw, n) == 1

    def remaining(self) -> int:
        """How many more calls would be admitted right now."""
        return self._remaining(self._limit, self._eval("peek", self._limit, self._win_us, 0))

    def reset_after(self) -> float:
        """Seconds until nothing admitted so far counts any more."""
        return float(self._eval("peek", self._limit, self._win_us, 0)[3]) / _US

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never)."""
        n = check_n(n)
        if n == 0:
            return 0.0
        if n > self._limit:
            return math.inf
        return float(self._eval("peek", self._limit, self._win_us, n)[1]) / _US

    def wait(self, n: int = 1, timeout: float | None = None, ctx: Any = None) -> bool:
        """Block until ``n`` calls are admitted (rules of the in-process ``wait``)."""
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            self._too_big(n)
        budget = wait_budget(timeout, ctx)
        start = time.monotonic()
        while True:
            reply = self._eval("take", self._limit, self._win_us, n)
            if int(reply[0]) == 1:
                return True
            delay = float(reply[1]) / _US
            if delay > budget - (time.monotonic() - start):
                raise TimeoutError(
                    f"wait({n}) would need {delay:.6f} s, longer than the timeout or the "
                    "context's deadline allows"
                )
            if pause(delay, ctx):
                raise ctx.err()


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
