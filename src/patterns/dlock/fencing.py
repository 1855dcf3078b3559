"""FencedResource: how a resource refuses writes from a holder whose lock has expired.

A lock alone cannot stop a holder that paused past its ttl (GC, SIGSTOP, a slow network) from
writing after another owner took over.  The fix (Kleppmann, "How to do distributed locking") is
at the resource: every write carries the writer's fencing token (``lock.token``), and the resource
refuses a token lower than the highest it has already accepted.  This helper is that check for a
value kept in Redis, done atomically in one Lua script.
"""

from __future__ import annotations

from typing import Any

from ._errors import StaleToken
from ._validate import check_name
from .redis import call

__all__ = ["FencedResource"]

_WRITE = """
local last = tonumber(redis.call('HGET', KEYS[1], 'token') or '-1')
local token = tonumber(ARGV[1])
if token < last then return {0, last} end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'value', ARGV[2])
return {1, token}
"""


def _check_token(token: object) -> int:
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"token must be an int fencing token, got {type(token).__name__}")
    if token < 0:
        raise ValueError(f"token must be >= 0, got {token}")
    return token


class FencedResource:
    """A value in Redis (hash ``key``: fields ``value`` and ``token``) written only with a fresh token.

    ``write(token, value)`` stores the value if ``token`` is at least the highest token seen so
    far (the same holder may write many times), else raises StaleToken and changes nothing.
    """

    def __init__(self, client: Any, key: str) -> None:
        if not hasattr(client, "register_script"):
            raise TypeError(f"client must be a redis.Redis, got {type(client).__name__}")
        self._client = client
        self._key = check_name(key, "key")
        self._write = client.register_script(_WRITE)

    @property
    def key(self) -> str:
        """The Redis hash that holds the value and the token of its last write."""
        return self._key

    def write(self, token: int, value: str | bytes | int | float) -> None:
        """Store ``value`` if ``token`` is not lower than the last write's; StaleToken (nothing written) if it is."""
        token = _check_token(token)
        ok, last = call(self._client, self._write, keys=[self._key], args=[token, value])
        if not ok:
            raise StaleToken(f"{self._key!r} refused token {token}: it has already seen token {last}")

    def read(self) -> tuple[bytes | str | None, int | None]:
        """(value, token of the write that stored it); (None, None) before the first write."""
        value, token = call(self._client, self._client.hmget, self._key, ["value", "token"])
        return value, (None if token is None else int(token))
