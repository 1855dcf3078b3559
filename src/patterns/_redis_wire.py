"""Script calls written straight onto a pooled connection of a redis-py client.

A rate-limit decision, or a lock's acquire or release, is one short EVALSHA, so the client's own
per-command work is a fair share of its cost: ``Redis.execute_command`` wraps every call in a
retry policy, observability hooks and response callbacks, about 15 us per call on the 2-core CI
machine kind, where a loopback round trip is 40-150 us.  ``ScriptWire`` takes a connection from the client's pool
(so its host, auth, TLS, timeouts and pool size all apply), writes a command packed once,
reads the reply with the connection's own parser (so ``decode_responses`` is honoured) and
gives the connection back.

It does not retry: a call whose reply was lost may or may not have run, and resending it
would run it twice (count a decision twice, take a lock the caller then believes it failed to
take); the caller turns the error into its own (``RedisUnavailable``, ``LockConnectionError``).  A
pooled connection the server closed while idle is replaced by the pool before use, as for any
redis-py command.  Clients this path does not fit (a single-connection client, a cluster
client, anything without a ``ConnectionPool``) are called through ``evalsha`` as usual.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable

import redis as _redis

__all__ = ["ScriptWire"]


def _bulks(encode: Callable[[Any], bytes], values: tuple[object, ...]) -> bytes:
    """RESP bulk strings of ``values``, each encoded as the client encodes it."""
    out = []
    for value in values:
        raw = encode(value)
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _connection_getter(client: Any) -> Callable[[], Any] | None:
    """The pool's ``get_connection`` as a no-argument call, or None if this client does not fit."""
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, _redis.ConnectionPool) or getattr(client, "connection", None) is not None:
        return None
    try:
        first = next(iter(inspect.signature(pool.get_connection).parameters.values()), None)
    except (TypeError, ValueError):
        return None
    if first is not None and first.default is first.empty and first.kind is not first.VAR_POSITIONAL:
        return lambda: pool.get_connection("EVALSHA")  # redis-py 5 wants the command's name
    return pool.get_connection  # type: ignore[no-any-return]


class ScriptWire:
    """EVALSHA of one script on fixed ``keys``, over the client's pool (or its ``evalsha`` if it has
    none).

    ``call(*args)`` packs the arguments; ``call_packed(tail, count)`` sends arguments packed
    beforehand by ``pack`` (``count`` of them), for the hot paths whose arguments never change.
    Keys and arguments are encoded by the client's own encoder (its ``encoding``), so they name
    the same keys as the client's other commands.
    NOSCRIPT (a restart, SCRIPT FLUSH) loads the script and sends the call again: Redis refused it
    before running anything, so nothing is counted twice.
    """

    def __init__(self, client: Any, source: str, keys: list[str], sha: str | None = None) -> None:
        self._client = client
        self._source = source
        self._sha = sha or hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        self._keys = list(keys)
        self._get = _connection_getter(client)
        self._pool = client.connection_pool if self._get is not None else None
        if self._pool is not None:
            self._encode: Callable[[Any], bytes] = self._pool.get_encoder().encode
            self._head = self.pack(b"EVALSHA", self._sha, len(self._keys), *self._keys)

    def pack(self, *args: object) -> bytes:
        """``args`` as RESP bulk strings, for ``call_packed`` (direct wire only)."""
        if self._pool is None:
            raise RuntimeError("pack needs a client with a connection pool")
        return _bulks(self._encode, args)

    def call(self, *args: object, timeout: float | None = None) -> Any:
        """The script's reply.  ``timeout``: seconds to wait for it on the direct wire, instead of
        the connection's ``socket_timeout`` (a timeout raises redis's TimeoutError)."""
        if self._get is None:
            keys = self._keys
            try:
                return self._client.evalsha(self._sha, len(keys), *keys, *args)
            except _redis.exceptions.NoScriptError:
                self._client.script_load(self._source)
                return self._client.evalsha(self._sha, len(keys), *keys, *args)
        return self.call_packed(self.pack(*args), len(args), timeout=timeout)

    def call_packed(self, tail: bytes, count: int, timeout: float | None = None) -> Any:
        if self._get is None:
            raise RuntimeError("call_packed needs a client with a connection pool")
        command = b"*%d\r\n%s%s" % (count + 3 + len(self._keys), self._head, tail)
        try:
            return self._send(command, timeout)
        except _redis.exceptions.NoScriptError:
            self._client.script_load(self._source)
            return self._send(command, timeout)

    @property
    def direct(self) -> bool:
        """Whether calls go straight to a pooled connection (else through ``evalsha``)."""
        return self._get is not None

    def _send(self, command: bytes, timeout: float | None = None) -> Any:
        assert self._get is not None and self._pool is not None
        conn = self._get()
        sock = conn._sock if timeout is not None else None
        try:
            if sock is not None and timeout is not None:
                sock.settimeout(max(0.001, timeout))
            conn.send_packed_command([command])
            return conn.read_response()
        except _redis.exceptions.ResponseError:
            raise  # an error reply, read whole: the connection is still in step
        except BaseException:
            conn.disconnect()  # a reply may be half read (a timeout, Ctrl-C): never reuse it
            raise
        finally:
            if sock is not None and conn._sock is sock:
                sock.settimeout(conn.socket_timeout)
            self._pool.release(conn)
