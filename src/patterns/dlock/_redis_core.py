"""RedisLock's protocol, without I/O: the scripts, the keys of a lock, the arguments of each call
and what their replies mean, and the rhythm of a waiting acquire.  RedisLock (redis-py, the
direct wire) and AsyncRedisLock (redis.asyncio) are thin drivers over it, so they decide alike.
See patterns.dlock.redis for the keys and the hand-off.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from .._redis_keys import slot_prefix
from ._errors import LockConnectionError

__all__ = [
    "GIVE_UP", "HELD", "TRY", "WAIT", "Attempts", "KeyLayout", "describe_client", "no_answer",
    "wait_after_refusal",
]

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

SCRIPTS = {"acquire": _ACQUIRE, "release": _RELEASE, "extend": _EXTEND, "owned": _OWNED, "locked": _LOCKED}

_POLL_MAX = 0.25  # longest single wait for a wake-up before trying again
_WAKE_TTL_MS = 10_000  # an unclaimed wake-up item disappears after this
_HANDOFF_MS = 50  # how long a woken waiter has the lock reserved for it


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds Redis takes (at least 1)."""
    return max(1, int(round(seconds * 1000)))


def wait_after_refusal(pttl_ms: int, poll_max: float, deadline: float | None, now: float) -> float | None:
    """After the acquire script said no (with the holder's PTTL in ms, negative for none): how
    long to wait for a wake-up before trying again (jittered, so pollers spread out), or None
    when the deadline has passed."""
    wait = poll_max if pttl_ms < 0 else min(poll_max, pttl_ms / 1000 + 0.001)
    if deadline is not None:
        remaining = deadline - now
        if remaining <= 0:
            return None
        wait = min(wait, remaining)
    return wait * random.uniform(0.8, 1.0)


def redis_errors() -> tuple[type[BaseException], ...]:
    """What redis-py raises when a server does not answer."""
    import redis.exceptions as rex

    return (rex.ConnectionError, rex.TimeoutError)


def timed_out(exc: LockConnectionError) -> bool:
    """Whether a failed call ran out of time (then a cleanup would not be answered either)."""
    import redis.exceptions as rex

    return isinstance(exc.__cause__, rex.TimeoutError)


def check_client(client: Any, kind: str) -> None:
    """TypeError unless ``client`` looks like a redis-py client (``kind`` names the one wanted)."""
    if not hasattr(client, "register_script"):
        raise TypeError(f"client must be a {kind}, got {type(client).__name__}")


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a Redis Cluster client (redis-py's sync or asyncio RedisCluster)."""
    return hasattr(client, "nodes_manager") and hasattr(client, "get_node_from_key")


def connection_settings(client: Any) -> dict[str, Any]:
    """The connection keyword arguments a client connects with (host, port, timeouts, auth...)."""
    if is_cluster(client):
        return dict(client.nodes_manager.connection_kwargs)
    return dict(client.connection_pool.connection_kwargs)


def describe_client(client: Any) -> str:
    """``redis at host:port`` (or the socket path; ``redis cluster at`` a node) for messages."""
    if is_cluster(client):  # the asyncio client knows no default node before its first command
        node = client.get_default_node() or next(iter(client.nodes_manager.startup_nodes.values()), None)
        return f"redis cluster at {node.host}:{node.port}" if node is not None else "redis cluster"
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return "redis"
    if "path" in kwargs:
        return f"redis at {kwargs['path']}"
    return f"redis at {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def no_answer(client: Any, detail: object) -> LockConnectionError:
    return LockConnectionError(f"{describe_client(client)} did not answer{detail}")


def socket_timeout(client: Any) -> float | None:
    try:
        value = connection_settings(client).get("socket_timeout")
    except AttributeError:
        return None
    return float(value) if value else None


class KeyLayout:
    """The keys of a lock named ``name``, those each script takes, and its waiting rhythm."""

    def __init__(self, name: str, client: Any) -> None:
        prefix = slot_prefix(name)
        self.name = name
        self.wake = f"{prefix}:wake"
        self.keys = {
            "acquire": [name, f"{prefix}:fence", self.wake, f"{prefix}:waiting"],
            "release": [name, self.wake, f"{prefix}:waiting"],
            "extend": [name], "owned": [name], "locked": [name],
        }
        timeout = socket_timeout(client)
        self.poll_max = _POLL_MAX if timeout is None else min(_POLL_MAX, timeout * 0.5)
        self.waiting_ms = ms(self.poll_max * 2 + 0.1)  # outlives a waiter's sleep between tries

    @staticmethod
    def release_args(value: str | None) -> list[Any]:
        return [value, _WAKE_TTL_MS, _HANDOFF_MS]

    @staticmethod
    def extend_args(value: str | None, ttl: float) -> list[Any]:
        return [value, ms(ttl)]


TRY, WAIT, HELD, GIVE_UP = "try", "wait", "held", "give up"


class Attempts:
    """One acquire, as steps: the driver does what a step says and hands the reply back.

    ``(TRY, args)``: run the acquire script with ``args`` (a fresh random value each time);
    ``(WAIT, seconds)``: BLPOP the wake-up list that long; ``(HELD, token)``: the lock is ours,
    with ``value``; ``(GIVE_UP, None)``: the deadline passed.  The script replies
    ``[1, token]`` or ``[0, the holder's PTTL in ms]``; a wake-up item handed to this waiter goes
    into its next try, which may then take a lock reserved for it.
    """

    def __init__(self, layout: KeyLayout, ttl: float, deadline: float | None) -> None:
        self._layout, self._ttl_ms, self._deadline = layout, ms(ttl), deadline
        self._heir = ""  # the wake-up item this waiter was handed, if any
        self.value = ""

    def first(self) -> tuple[str, Any]:
        return TRY, self._try()

    def _try(self) -> list[Any]:
        self.value = secrets.token_hex(16)
        return [self.value, self._ttl_ms, self._heir, self._layout.waiting_ms]

    def next(self, step: str, reply: Any, now: float) -> tuple[str, Any]:
        """The step after ``step``, whose reply was ``reply``, at ``now``."""
        if step == WAIT:  # BLPOP's reply: the item handed over, or None when it timed out
            self._heir = reply[1] if reply else ""
            return TRY, self._try()
        got, number = reply
        if got:
            return HELD, int(number)
        self._heir = ""
        wait = wait_after_refusal(number, self._layout.poll_max, self._deadline, now)
        if wait is None:
            return GIVE_UP, None
        return (WAIT, round(wait, 3)) if wait >= 0.001 else (TRY, self._try())
