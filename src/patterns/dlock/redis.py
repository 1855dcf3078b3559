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

import time
from typing import Any, Callable, TypeVar

from ._base import DistributedLock
from ._errors import LockConnectionError
from ._redis_core import GIVE_UP, HELD, SCRIPTS, WAIT, Attempts
from ._redis_core import KeyLayout, check_client, describe_client, no_answer, redis_errors, timed_out

__all__ = ["RedisLock"]

T = TypeVar("T")


def call(client: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a redis-py call; connection problems become LockConnectionError naming the server."""
    try:
        return fn(*args, **kwargs)
    except redis_errors() as exc:
        raise no_answer(client, f": {exc}") from exc


class RedisLock(DistributedLock):
    """A lock on one Redis server with fencing tokens (see DistributedLock for the methods).

    ``client``: a ``redis.Redis``; ``name``: the key; ``ttl``: seconds a hold lasts unless extended
    (sent as whole milliseconds); ``timeout``: how long ``with lock:`` waits (None: until acquired);
    ``auto_renew``: extend every ttl/3 in a background thread; ``on_lost(lock)``: called once when
    the hold is found gone.  The keys stay in the slot of ``name`` on a Redis Cluster (pass a
    ``redis.cluster.RedisCluster``).
    """

    def __init__(self, client: Any, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[[DistributedLock], object] | None = None, owns_client: bool = False) -> None:
        check_client(client, "redis.Redis")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._client = client
        self._owns_client = owns_client
        self._layout = KeyLayout(name, client)
        from .._redis_wire import ScriptWire

        self._scripts = {kind: ScriptWire(client, source, self._layout.keys[kind]) for kind, source in SCRIPTS.items()}
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
        tries = Attempts(self._layout, self._ttl, deadline)
        step, arg = tries.first()
        while step != HELD:
            if step == GIVE_UP:
                return False
            if step == WAIT:
                reply = call(self._client, self._client.blpop, [self._layout.wake], timeout=arg)
            else:
                self._hold_sent = time.monotonic()
                try:
                    reply = call(self._client, self._scripts["acquire"].call, *arg)
                except LockConnectionError as exc:
                    if not timed_out(exc):
                        self._cleanup(tries.value)  # the SET may have happened and only the reply was lost
                    # a server that did not answer in time would not answer a cleanup either: the
                    # hold, if the SET ran, ends with its ttl
                    raise
            step, arg = tries.next(step, reply, time.monotonic())
        self._value, self._token = tries.value, arg
        return True

    def _script(self, kind: str, *args: Any, timeout: float | None = None) -> bool:
        script = self._scripts[kind]
        return bool(call(self._client, script.call, *args) if timeout is None else
                    call(self._client, script.call, *args, timeout=timeout))

    def _cleanup(self, value: str) -> None:
        try:
            self._scripts["release"].call(*KeyLayout.release_args(value))
        except Exception:  # noqa: BLE001 - best effort; the ttl ends it anyway
            pass

    def _release_impl(self) -> bool:
        value, self._value = self._value, None
        return self._script("release", *KeyLayout.release_args(value))

    def _extend_impl(self, ttl: float) -> bool:
        return self._script("extend", *KeyLayout.extend_args(self._value, ttl))

    def _renew_impl(self, ttl: float, budget: float) -> bool:
        if not self._scripts["extend"].direct:
            return self._extend_impl(ttl)
        return self._script("extend", *KeyLayout.extend_args(self._value, ttl), timeout=budget)

    def _owned_impl(self) -> bool:
        return self._script("owned", self._value)

    def _locked_impl(self) -> bool:
        return self._script("locked")

    def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            self._cleanup(value)

    def _close_impl(self) -> None:
        if self._owns_client:
            self._client.close()
