"""The Redis limiters' protocol, sans I/O: argument checks, the script calls each operation
makes, how it reads the replies and what it decides.  No socket, no sleep, no ``await``.

Each operation is a generator (``_allow_ops``, ``_wait_ops``, ...) that yields what it needs
done and is sent the result:

- a tuple: the script's arguments (one EVALSHA on the limiter's key); sent the reply;
- ``Sleep(seconds, ctx)``: sent True if ``ctx`` ended first;
- ``Cancel(args)``: a reservation given back, best effort (a failure is swallowed: the call
  is already failing for another reason); sent None.

Its return value is the operation's.  A failure of a step is thrown into the generator.  The
sync driver (:mod:`patterns.ratelimit.redis`) and the asyncio one (:mod:`patterns.ratelimit.aio`)
only run these: ``_eval`` and sleeps, blocking or awaited.
"""

from __future__ import annotations

import math
import time
from typing import Any, Generator, NamedTuple

from .._validate import check_wait

US = 1_000_000.0


class Sleep(NamedTuple):
    seconds: float
    ctx: Any


class Cancel(NamedTuple):
    args: tuple


Ops = Generator[Any, Any, Any]


# -- argument checks and the wait budget (the in-process limiters use wait_budget too) ---------


def server_name(client: Any) -> str:
    """``host:port`` (or the socket path) of a redis-py client, for error messages."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return repr(client)
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


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


def wait_budget(timeout: float | None, ctx: Any) -> float:
    """Seconds a wait may take: the timeout or the ctx's deadline, whichever comes first
    (a deadline is on the monotonic clock: its budget is the real time left to it)."""
    budget = math.inf if timeout is None else timeout
    if ctx is not None and ctx.deadline() is not None:
        budget = min(budget, ctx.deadline() - time.monotonic())
    return max(budget, 0.0)


def no_budget_error(n: int) -> ValueError:
    return ValueError(
        f"wait({n}) could never end: the rate is 0 and fewer than {n} tokens are left "
        "(give a timeout to get TimeoutError)"
    )


def num(value: float) -> bytes:
    """A number as the script reads it (pre-encoded once: the hot path sends bytes)."""
    return repr(value).encode()


# -- token bucket ---------------------------------------------------------------------------------


class TokenBucketCore:
    """The token bucket's parameters and operations; a driver supplies ``_reservation_type``
    (whose constructor takes the reply's fields) and runs the operations."""

    _reservation_type: Any = None
    _rate: float
    _burst: int
    _batch: int | None
    _leased: int
    _rb: tuple

    def _setup(self, rate: object, burst: object, local_batch: object) -> None:
        self._rate = check_rate(rate)
        self._burst = check_int(burst, "burst")
        self._batch = None if local_batch is None else check_int(local_batch, "local_batch", 1)
        self._leased = 0
        self._rb = (num(self._rate), num(self._burst))

    def _set_rb(self) -> None:
        """New rate/burst: the arguments every call sends (and the driver's packed forms)."""
        self._rb = (num(self._rate), num(self._burst))

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
        return f"<{type(self).__name__} {self._name!r} rate={self._rate}/s burst={self._burst}>"  # type: ignore[attr-defined]

    def set_rate(self, rate: float) -> None:
        """Use ``rate`` from now on, keeping the tokens there are (Go's ``SetLimit``).

        The parameters travel with every call: the state in Redis is converted (token count
        kept, clamped to the burst) by the first decision made with the new ones, so every
        client sharing the name should switch.  Reservations made before can still be
        cancelled: they give back at the rate they were made under (Go).
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

    def _too_big(self, n: int) -> ValueError:
        return ValueError(f"n must be <= burst ({self._burst}) to ever be granted, got {n}")

    def _reservation(self, reply: list, n: int) -> Any:
        if int(reply[0]) != 1:
            return self._reservation_type(self, False, n, -1.0, None, "0")
        return self._reservation_type(self, True, n, float(reply[1]), reply[2], reply[4], reply[5],
                                      int(reply[6]))

    def _allow_ops(self, n: object) -> Ops:
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            return False
        if self._batch is None:
            return (yield (b"allow", *self._rb, n, 0)) == 1
        # leases: the driver holds its lease lock around this operation
        if self._leased >= n:
            self._leased -= n
            return True
        reply = yield ("lease", *self._rb, n, 0, max(self._batch, n))
        if int(reply[0]) != 1:
            return False
        self._leased += int(reply[3]) - n
        return True

    def _reserve_ops(self, n: object) -> Ops:
        n = check_n(n)
        if n == 0 or self._unlimited:
            return self._reservation_type(self, True, n, 0.0, None, "0")
        if n > self._burst:
            return self._reservation_type(self, False, n, -1.0, None, "0")
        return self._reservation((yield ("take", *self._rb, n, -1)), n)

    def _wait_ops(self, n: object, timeout: object, ctx: Any) -> Ops:
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0 or self._unlimited:
            return True
        if n > self._burst:
            raise self._too_big(n)
        budget = wait_budget(timeout, ctx)
        # bounded even without a budget, so that rate 0 with too few tokens is refused
        # rather than reserved never to act
        max_wait = 1e300 if budget == math.inf else budget * US
        res = self._reservation((yield ("take", *self._rb, n, max_wait)), n)
        if not res.ok:
            if budget == math.inf and self._rate == 0:
                raise no_budget_error(n)
            raise TimeoutError(f"wait({n}) would need longer than the timeout or the context's deadline allows")
        try:
            ended = yield Sleep(res.delay(), ctx)
        except BaseException:
            args = res._cancel_args()
            if args is not None:
                yield Cancel(args)
            raise
        if ended:
            args = res._cancel_args()
            if args is not None:
                yield Cancel(args)
            ctx.raise_if_done()
        return True

    def _tokens_ops(self) -> Ops:
        if self._unlimited:
            return math.inf
        return float((yield ("peek", *self._rb, 0, 0))[2])

    def _retry_after_ops(self, n: object) -> Ops:
        n = check_n(n)
        if n == 0 or self._unlimited:
            return 0.0
        if n > self._burst:
            return math.inf
        tokens = yield from self._tokens_ops()
        if tokens >= n:
            return 0.0
        if self._rate == 0:
            return math.inf
        return (n - tokens) / self._rate


# -- windows --------------------------------------------------------------------------------------


class WindowCore:
    """A window limiter's parameters and operations (the script per kind is the driver's)."""

    _limit: int
    _window: float
    _win_us: float
    _lw: tuple

    def _setup(self, limit: object, window: object) -> None:
        self._limit = check_int(limit, "limit")
        self._window = check_positive(window, "window", "seconds")
        self._win_us = self._window * US
        self._lw = (num(self._limit), num(self._win_us))

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window(self) -> float:
        return self._window

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {self._limit} per {self._window} s>"  # type: ignore[attr-defined]

    def _allow_ops(self, n: object) -> Ops:
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            return False
        return (yield (b"allow", *self._lw, n)) == 1

    def _remaining_ops(self) -> Ops:
        reply = yield ("peek", self._limit, self._win_us, 0)
        return max(0, math.floor(self._limit - float(reply[2]) + 1e-9))

    def _reset_after_ops(self) -> Ops:
        return float((yield ("peek", self._limit, self._win_us, 0))[3]) / US

    def _retry_after_ops(self, n: object) -> Ops:
        n = check_n(n)
        if n == 0:
            return 0.0
        if n > self._limit:
            return math.inf
        return float((yield ("peek", self._limit, self._win_us, n))[1]) / US

    def _wait_ops(self, n: object, timeout: object, ctx: Any) -> Ops:
        timeout, ctx = check_wait(timeout, ctx)
        n = check_n(n)
        if n == 0:
            return True
        if n > self._limit:
            raise ValueError(f"n must be <= limit ({self._limit}) to ever be admitted, got {n}")
        budget = wait_budget(timeout, ctx)
        start = time.monotonic()
        while True:
            reply = yield ("take", self._limit, self._win_us, n)
            if int(reply[0]) == 1:
                return True
            delay = float(reply[1]) / US
            if delay > budget - (time.monotonic() - start):
                raise TimeoutError(
                    f"wait({n}) would need {delay:.6f} s, longer than the timeout or the "
                    "context's deadline allows"
                )
            if (yield Sleep(delay, ctx)):
                ctx.raise_if_done()
