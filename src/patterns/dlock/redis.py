"""RedisLock: one Redis server, ``SET key token NX PX`` with a fencing counter.

Keys used for a lock named ``name`` (``{name}`` below is the name in braces, a Redis Cluster hash
tag, so every key of the lock lives in the slot of ``name`` itself; a name that carries its own
hash tag is used as it is, ``name:fence`` and so on):

- ``name``: the hold, a random 128-bit value with the ttl;
- ``{name}:fence``: the last fencing token issued, never expires.  An acquire stores
  ``max(last + 1, the server's TIME in microseconds)``, so tokens keep growing even after the
  server restarted empty (see ``RedisLock.token`` for the one assumption this makes);
- ``{name}:waiting``: set by every acquire attempt that fails, for a little longer than a waiter
  sleeps between attempts, so a release knows whether anyone may be waiting;
- ``{name}:wake``: a wake-up list.  A release that sees ``name:waiting`` pushes one item, and
  Redis hands it to the waiter blocked longest in BLPOP, so a contended lock changes hands in
  milliseconds.  Waiters also poll with jitter, in case a wake-up is missed or a holder's ttl
  runs out without a release.

Such a release does not delete ``name``: for 50 ms it leaves ``handoff:<item>`` there, the lock
reserved for the waiter holding that wake-up item, so an owner that releases and at once
acquires again cannot barge ahead of it and waiters are served about in arrival order
(``locked()`` says False meanwhile: a reservation is not a hold).  If nobody took the item, the next acquire takes it and the
lock in one step.  An uncontended acquire+release is one SET NX PX + fencing step and one
compare-and-delete, touching only ``name`` and ``{name}:fence``.

Every script runs through EVALSHA with a NOSCRIPT fallback, written straight onto a connection
of the client's pool (``patterns._redis_wire``: about 15 us less per call than redis-py's
command path, and no blind retry of a call whose reply was lost).
Release and extend compare the stored value with this hold's own, so a late caller never deletes
or prolongs another owner's lock.

Correctness note: a Redis lock is an efficiency lock unless the protected resource checks the
fencing token (``lock.token``, strictly increasing across owners): a paused holder can wake up
after its ttl and still believe it holds the lock.  See :class:`patterns.dlock.FencedResource`.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any, Callable, TypeVar

from .._redis_keys import slot_prefix
from ._base import DistributedLock
from ._errors import LockConnectionError

__all__ = ["RedisLock"]

T = TypeVar("T")

# KEYS: lock, fence, wake list, waiting marker
# ARGV: value, ttl ms, the wake-up item this caller was handed (or ""), waiting marker ms
# The fencing token: max(last + 1, server time in us); a double holds it exactly (< 2^53).
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local function fence()
  local now = redis.call('TIME')
  local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if last + 1 > token then token = last + 1 end
  redis.call('SET', KEYS[2], string.format('%d', token))
  return token
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, fence()}
end
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 8) == 'handoff:' then
  if held == 'handoff:' .. ARGV[3] or redis.call('LLEN', KEYS[3]) > 0 then
    redis.call('DEL', KEYS[3])
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return {1, fence()}
  end
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
return {0, redis.call('PTTL', KEYS[1])}
"""

# KEYS: lock, wake list, waiting marker; ARGV: value, wake list ttl ms, hand-off ms
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('SET', KEYS[1], 'handoff:' .. ARGV[1], 'PX', ARGV[3])
    redis.call('DEL', KEYS[2])
    redis.call('RPUSH', KEYS[2], ARGV[1])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_LOCKED = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 8) ~= 'handoff:' then return 1 end
return 0
"""

_OWNED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

_POLL_MAX = 0.25  # longest single wait for a wake-up before trying again
_WAKE_TTL_MS = 10_000  # an unclaimed wake-up item disappears after this
_HANDOFF_MS = 50  # how long a woken waiter has the lock reserved for it


def wait_after_refusal(pttl_ms: int, poll_max: float, deadline: float | None, now: float) -> float | None:
    """After the acquire script said no (with the holder's PTTL in ms, negative for none): how
    long to wait for a wake-up before trying again (jittered, so pollers spread out), or None
    when the deadline has passed (RedisLock and AsyncRedisLock)."""
    wait = poll_max if pttl_ms < 0 else min(poll_max, pttl_ms / 1000 + 0.001)
    if deadline is not None:
        remaining = deadline - now
        if remaining <= 0:
            return None
        wait = min(wait, remaining)
    return wait * random.uniform(0.8, 1.0)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions as rex

    return (rex.ConnectionError, rex.TimeoutError)


def describe_client(client: Any) -> str:
    """``redis at host:port`` (or the socket path) for messages."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return "redis"
    if "path" in kwargs:
        return f"redis at {kwargs['path']}"
    return f"redis at {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def call(client: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a redis-py call; connection problems become LockConnectionError naming the server."""
    try:
        return fn(*args, **kwargs)
    except _redis_errors() as exc:
        raise LockConnectionError(f"{describe_client(client)} did not answer: {exc}") from exc


def _timeout_error() -> type[BaseException]:
    import redis.exceptions as rex

    return rex.TimeoutError


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


def _socket_timeout(client: Any) -> float | None:
    try:
        value = client.connection_pool.connection_kwargs.get("socket_timeout")
    except AttributeError:
        return None
    return float(value) if value else None


def _lay_out(lock: Any, name: str, client: Any) -> None:
    """The keys of a lock named ``name`` and its waiting rhythm (RedisLock and AsyncRedisLock)."""
    prefix = slot_prefix(name)
    lock._keys = [name, f"{prefix}:fence"]
    lock._wake_key = f"{prefix}:wake"
    lock._acquire_keys = [name, f"{prefix}:fence", lock._wake_key, f"{prefix}:waiting"]
    lock._release_keys = [name, lock._wake_key, f"{prefix}:waiting"]
    socket_timeout = _socket_timeout(client)
    lock._poll_max = _POLL_MAX if socket_timeout is None else min(_POLL_MAX, socket_timeout * 0.5)
    lock._waiting_ms = _ms(lock._poll_max * 2 + 0.1)  # outlives a waiter's sleep between tries


class RedisLock(DistributedLock):
    """A lock on one Redis server with fencing tokens (see DistributedLock for the methods).

    ``client``: a ``redis.Redis``; ``name``: the key; ``ttl``: seconds a hold lasts unless extended
    (sent as whole milliseconds); ``timeout``: how long ``with lock:`` waits (None: until acquired);
    ``auto_renew``: extend every ttl/3 in a background thread; ``on_lost(lock)``: called once when
    the hold is found gone.  The keys stay in the slot of ``name`` on a Redis Cluster (pass a
    ``redis.cluster.RedisCluster``).
    """

    def __init__(
        self,
        client: Any,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[DistributedLock], object] | None = None,
        owns_client: bool = False,
    ) -> None:
        if not hasattr(client, "register_script"):
            raise TypeError(f"client must be a redis.Redis, got {type(client).__name__}")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._client = client
        self._owns_client = owns_client
        _lay_out(self, name, client)
        self._ttl_ms = _ms(self._ttl)
        from .._redis_wire import ScriptWire

        self._acquire_script = ScriptWire(client, _ACQUIRE, self._acquire_keys)
        self._release_script = ScriptWire(client, _RELEASE, self._release_keys)
        self._extend_script = ScriptWire(client, _EXTEND, self._keys[:1])
        self._owned_script = ScriptWire(client, _OWNED, self._keys[:1])
        self._locked_script = ScriptWire(client, _LOCKED, [name])
        self._value: str | None = None

    @property
    def client(self) -> Any:
        """The redis-py client the lock talks through."""
        return self._client

    @property
    def token(self) -> int | None:
        """Fencing token of the current hold; None while not held.  Pass it to the resource you
        write (see FencedResource), which refuses any token lower than one it has seen.

        Tokens strictly increase across owners of one name: each acquire stores
        ``max(last token + 1, the server's clock in microseconds)`` in ``{name}:fence``.  So they
        keep increasing even when redis-server restarts empty (no persistence, a fresh replica),
        as long as the server's clock does not step back by more than the time between the last
        token before the restart and the first one after it (NTP slews; a clock set back by hand
        could break it).  A restart without persistence does break mutual exclusion: the hold is
        gone and a second client can acquire while the first still believes it holds the lock
        (until its next extend/owned/release says LockLost).  Fencing still guarantees that the
        resource accepts only the newer owner's writes once it has seen them.
        """
        return self._token

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        ttl_ms = self._ttl_ms
        heir = ""  # the wake-up item this waiter was handed, if any
        while True:
            value = secrets.token_hex(16)
            self._hold_sent = time.monotonic()
            try:
                args = [value, ttl_ms, heir, self._waiting_ms]
                got, number = call(self._client, self._acquire_script.call, *args)
            except LockConnectionError as exc:
                if not isinstance(exc.__cause__, _timeout_error()):
                    self._cleanup(value)  # the SET may have happened and only the reply was lost
                # a server that did not answer in time would not answer a cleanup either: the
                # hold, if the SET ran, ends with its ttl
                raise
            if got:
                self._value = value
                self._token = int(number)
                return True
            wait = wait_after_refusal(number, self._poll_max, deadline, time.monotonic())
            if wait is None:
                return False
            heir = ""
            if wait >= 0.001:
                woken = call(self._client, self._client.blpop, [self._wake_key], timeout=round(wait, 3))
                if woken:
                    heir = woken[1]

    def _cleanup(self, value: str) -> None:
        try:
            self._release_script.call(value, _WAKE_TTL_MS, _HANDOFF_MS)
        except Exception:  # noqa: BLE001 - best effort; the ttl ends it anyway
            pass

    def _release_impl(self) -> bool:
        value, self._value = self._value, None
        return bool(call(self._client, self._release_script.call, value, _WAKE_TTL_MS, _HANDOFF_MS))

    def _extend_impl(self, ttl: float) -> bool:
        return bool(call(self._client, self._extend_script.call, self._value, _ms(ttl)))

    def _renew_impl(self, ttl: float, budget: float) -> bool:
        if not self._extend_script.direct:
            return self._extend_impl(ttl)
        return bool(call(self._client, self._extend_script.call, self._value, _ms(ttl), timeout=budget))

    def _owned_impl(self) -> bool:
        return bool(call(self._client, self._owned_script.call, self._value))

    def _locked_impl(self) -> bool:
        return bool(call(self._client, self._locked_script.call))

    def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            self._cleanup(value)

    def _close_impl(self) -> None:
        if self._owns_client:
            self._client.close()
