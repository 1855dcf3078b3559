"""EtcdLock: etcd's ``concurrency.Mutex`` algorithm over the v3 JSON gateway (``http.client``).

Acquire: grant a lease of ``ttl`` seconds, then in one transaction create the key
``name/<lease-id in hex>`` (only if it does not exist yet) attached to the lease, and read the
oldest key under ``name/``.  If that is our key, we hold the lock.  Otherwise we wait only for the
deletion of our *predecessor* (the key with the largest create revision below ours), watching it,
so waiters are served in FIFO order and a release wakes exactly one waiter.  Each look at the
predecessor also re-reads our own key: if the lease expired while waiting, acquire raises
LockLost.  While waiting, the acquiring thread keeps its lease alive.

Release deletes the key (only if it is still ours: compare on its create revision, so a hold
lost to expiry or to a hand deletion is reported) and revokes the lease, so no lease is left
behind: four requests per uncontended acquire+release.  With ``keep_lease=True`` the lease stays
with the lock object instead: the next acquire renews it with one keep-alive, ``close()``
revokes it, and an object never closed leaves one lease that expires after a ttl (nothing keeps
it alive); three requests per cycle, and a keep-alive costs etcd less than a grant (no
consensus round).

:class:`EtcdSession` is etcd's Go ``Session``: one lease kept alive by a background thread and
shared by many locks, so an acquire+release is two requests (create the key, delete it).

The fencing token is the create revision of our key: etcd revisions only grow, so tokens
are strictly increasing across owners (and across all keys of the cluster).

etcd leases are whole seconds: a fractional ``ttl`` is rounded *up* (0.3 -> 1 s), and ``lock.ttl``
reports the rounded value.  etcd itself may keep a lease a little longer than asked (a single
member enforces a minimum of about 2 s), never shorter.  ``extend()`` renews the lease to its
granted ttl (etcd cannot change a lease's ttl); ``extend(ttl)`` with another ttl is refused.
With ``auto_renew=False`` the hold lasts one ttl unless extended, as with Redis.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from typing import Callable

from . import _etcd_core as core
from ._base import DistributedLock
from ._errors import LockConnectionError, LockError
from ._etcd_core import b64, delete_txn
from ._gateway import EtcdGateway
from ._validate import check_bool, check_ttl

__all__ = ["EtcdLock", "EtcdSession"]

_log = logging.getLogger("patterns.dlock")


class EtcdLock(core.EtcdHold, DistributedLock):
    """A lock in etcd with FIFO waiters and fencing tokens (see DistributedLock for the methods).

    ``endpoint``: the gateway's base URL (``http://127.0.0.1:2379``); ``name``: the key prefix;
    ``ttl``: lease seconds (rounded up to whole seconds, > 0); ``request_timeout``: seconds for
    each HTTP request; ``keep_lease``: keep the lease between holds (see the module docstring).
    ``token`` is the create revision of this hold's key.
    """

    endpoint = core.EtcdHold.endpoint

    def __init__(self, endpoint: str, name: str, ttl: float, *, timeout: float | None = None,
                 auto_renew: bool = False, on_lost: Callable[[DistributedLock], object] | None = None,
                 request_timeout: float = 5.0, keep_lease: bool = False) -> None:
        core.check_endpoint(endpoint)
        request_timeout = check_ttl(request_timeout, param="request_timeout")
        keep_lease = check_bool(keep_lease, "keep_lease")
        gateway = EtcdGateway(endpoint, request_timeout)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._setup(gateway, keep_lease, None)

    @classmethod
    def _in_session(cls, session: EtcdSession, name: str, timeout: float | None,
                    on_lost: Callable[[DistributedLock], object] | None, serial: int) -> EtcdLock:
        """A lock on ``session``'s lease (made by ``EtcdSession.lock``)."""
        lock = cls.__new__(cls)
        DistributedLock.__init__(lock, name, session.ttl, timeout=timeout, on_lost=on_lost)
        lock._setup(session._gateway, True, session)
        lock._suffix = b"_%x" % serial  # two locks of one session on one name: two keys
        return lock

    def _setup(self, gateway: EtcdGateway, keep_lease: bool, session: EtcdSession | None) -> None:
        self._setup_hold(gateway.endpoint, keep_lease, session)
        self._gateway = gateway
        self._post = gateway.post

    # -- the gateway ------------------------------------------------------------------------

    def _revoke(self, lease: str) -> None:
        self._post("/v3/lease/revoke", {"ID": lease}, allow_not_found=True)

    def _keepalive(self, lease: str, timeout: float | None = None) -> bool:
        return core.lease_alive(self._post("/v3/lease/keepalive", {"ID": lease}, timeout=timeout))

    def _fresh_lease(self) -> str:
        """The object's lease, renewed to a full ttl, or a new one if it expired; in a session,
        the session's lease (its keep-alive thread renews it)."""
        if self._session is not None:
            self._lease = self._session._lease_to_use()
            return self._lease
        self._hold_sent = time.monotonic()  # the lease's ttl starts no earlier than this
        if self._lease is not None and self._keepalive(self._lease):
            return self._lease
        self._hold_sent = time.monotonic()
        self._lease = core.granted_lease(self._post("/v3/lease/grant", core.grant_body(self._ttl)), self._endpoint)
        return self._lease

    def _own_key_alive(self, timeout: float | None = None) -> bool:
        data = self._post("/v3/kv/range", {"key": b64(self._key or b"")}, timeout=timeout)
        return core.key_alive(data, self._revision)

    # -- the backend hooks ------------------------------------------------------------------

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        session = self._session
        if session is None:
            return self._try_acquire(blocking, deadline)
        for _ in range(core.SESSION_TRIES):
            try:
                got = self._try_acquire(blocking, deadline)
            except LockError as exc:
                lease = self._lease_ended(exc)
                if lease is None:
                    raise
                # the session's lease ended under this acquire (a pause, an expiry found while
                # waiting, the keeper giving up): start again on a new one
                session._lease_gone(lease, core.SESSION_EXPIRED)
                continue
            if got and self._session_moved_on():
                # the session gave this lease up while we were acquiring on it: nobody renews it
                self._drop_hold()
                continue
            return got
        raise self._lost_too_often()

    def _drop_hold(self) -> None:
        """Forget a hold taken on an abandoned lease, deleting its key if etcd answers."""
        self._token = None
        try:
            self._give_up(*self._drop_key())
        except LockError:
            pass  # the abandoned lease ends it within a ttl

    def _after_acquire(self) -> None:
        """A session that gave the lease up after the check above (but before this hold was
        counted as held, so its sweep skipped it) is caught here: the hold is reported lost,
        and ``with lock:`` does not run its body."""
        if self._session_moved_on():
            self._mark_lost("the session's lease was given up while this hold was being taken")

    def _try_acquire(self, blocking: bool, deadline: float | None) -> bool:
        lease = self._fresh_lease()
        key, key_b64 = self._key_of(lease)
        done = False
        try:
            reply = self._post("/v3/kv/txn", core.acquire_txn(self._prefix, key_b64, lease))
            if not self._took_key(reply, key) and (not blocking or not self._wait_for_turn(key_b64, deadline)):
                return False
            self._token = self._revision
            done = True
            return True
        finally:
            if not done:
                self._key = self._revision = None
                try:
                    self._give_up(key_b64, None)
                except LockError:
                    pass  # the lease ends it

    def _wait_for_turn(self, key_b64: str, deadline: float | None) -> bool:
        """Wait until no key older than ours is left; False at the deadline; LockLost if our key
        went (the lease expired)."""
        assert self._lease is not None and self._revision is not None
        clock = core.TurnWait(self._ttl, deadline)
        while True:
            reply = self._post("/v3/kv/txn", core.turn_txn(self._prefix, key_b64, self._revision))
            alive, predecessor, at = core.turn(reply, self._revision)
            if not alive:
                if self._session is not None:
                    self._session._lease_gone(self._lease, core.SESSION_EXPIRED)
                raise self._lost_while_waiting()
            wait = clock.next_look(predecessor, time.monotonic())
            if isinstance(wait, bool):
                return wait
            if wait > 0:
                self._gateway.watch_delete(str(predecessor), at + 1, wait)
            if self._session is not None:  # the session renews its lease; is it still this one?
                if self._session_moved_on():
                    raise self._lost_while_waiting(session_lease=True)
                clock.renewed(time.monotonic())  # look again after another ttl/3 at most
            elif clock.renew_due(time.monotonic()):
                if not self._keepalive(self._lease):
                    raise self._lost_while_waiting()
                clock.renewed(time.monotonic())

    def _release_impl(self) -> bool:
        return self._give_up(*self._drop_key())

    def _give_up(self, key_b64: str, revision: int | None) -> bool:
        """Delete our key and drop the lease; False when the key was no longer this hold's.

        ``revision`` None (an acquire that did not get the lock): delete the key whatever it is;
        without ``keep_lease`` revoking the lease does that in the same request.
        """
        if revision is None:
            if self._keep_lease:
                self._post("/v3/kv/deleterange", {"key": key_b64})
            self._drop_lease()
            return True
        ours = bool(self._post("/v3/kv/txn", delete_txn(key_b64, revision)).get("succeeded"))
        self._drop_lease()
        return ours

    def _drop_lease(self) -> None:
        """Revoke the lease after a hold unless it is kept for the next acquire."""
        if not self._keep_lease and self._lease is not None:
            lease, self._lease = self._lease, None
            self._revoke(lease)

    def extend(self, ttl: float | None = None) -> None:
        """Renew the lease to its granted ttl.  ``ttl``, if given, must round to the same whole
        seconds (etcd cannot change a lease's ttl): ValueError otherwise."""
        self._check_extend_ttl(ttl)
        super().extend(None)

    def _extend_impl(self, ttl: float) -> bool:
        lease = self._lease
        if lease is None or not self._keepalive(lease):
            return False
        return self._own_key_alive()

    def _renew_impl(self, ttl: float, budget: float) -> bool:
        end = time.monotonic() + budget
        lease = self._lease
        if lease is None or not self._keepalive(lease, timeout=budget):
            return False
        left = end - time.monotonic()
        if left <= 0.001:
            raise LockConnectionError(f"etcd at {self._endpoint} did not confirm the key within the validity left")
        return self._own_key_alive(timeout=left)

    def _owned_impl(self) -> bool:
        return self._key is not None and self._own_key_alive()

    def _locked_impl(self) -> bool:
        return core.any_key(self._post("/v3/kv/range", core.prefix_range(self._prefix, count_only=True)))

    def _forget_impl(self) -> None:
        if self._key is not None:
            try:
                self._give_up(*self._drop_key())
            except LockError:
                pass

    def _close_impl(self) -> None:
        lease, self._lease = self._lease, None
        if self._session is not None:
            return  # the lease and the connections are the session's
        try:
            if lease is not None:
                self._revoke(lease)
        except LockError:
            pass  # it expires after one ttl
        finally:
            self._gateway.close()


class EtcdSession:
    """One etcd lease kept alive by a background thread, shared by the locks ``lock()`` makes.

    etcd's Go ``concurrency.Session``: the lease lives as long as this process keeps renewing it
    (every ttl/3), so a hold lasts until it is released, and ends one ttl after the process dies
    or freezes.  A lock then costs two requests per uncontended acquire+release (create the key,
    delete it) instead of four: the lease is neither granted nor revoked per hold.

    - The lease is granted at the first acquire, and again after it was lost.
    - If the keep-alive finds the lease gone (the process was paused past the ttl), or etcd does
      not answer for a whole ttl, every lock held on it is marked lost (``lost``, ``on_lost``).
    - ``close()`` (or ``with``) releases the held locks and revokes the lease; until then one
      lease is left in etcd, as with Go's session.

    ``endpoint``: the gateway's base URL; ``ttl``: lease seconds (rounded up to whole seconds,
    > 0); ``request_timeout``: seconds for each HTTP request.
    """

    def __init__(self, endpoint: str, ttl: float, *, request_timeout: float = 5.0) -> None:
        core.check_endpoint(endpoint)
        self._ttl = core.lease_ttl(ttl)
        self._request_timeout = check_ttl(request_timeout, param="request_timeout")
        self._gateway = EtcdGateway(endpoint, self._request_timeout)
        self._guard = threading.Lock()  # guards _lease, _keeper, _closed
        self._lease: str | None = None
        self._granted_at = 0.0  # monotonic time the grant of the current lease was sent
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._locks: weakref.WeakSet[EtcdLock] = weakref.WeakSet()
        self._serials = itertools.count(1)
        weakref.finalize(self, self._stop.set)  # a dropped session's thread ends at its next tick

    @property
    def endpoint(self) -> str:
        """The etcd JSON gateway's base URL."""
        return self._gateway.endpoint

    @property
    def ttl(self) -> float:
        """Lease seconds: how long a hold outlives this process."""
        return self._ttl

    @property
    def lease(self) -> str | None:
        """The current lease ID, None before the first acquire and after the lease was lost."""
        return self._lease

    def lock(
        self,
        name: str,
        *,
        timeout: float | None = None,
        on_lost: Callable[[DistributedLock], object] | None = None,
    ) -> EtcdLock:
        """An EtcdLock on this session's lease (FIFO waiters, create revision as the token).

        Its ``close()`` releases it but leaves the lease to the session.  Two locks of one session
        on one name are two waiters, as two processes would be.
        """
        with self._guard:
            if self._closed:
                raise LockError("this EtcdSession is closed")
            lock = EtcdLock._in_session(self, name, timeout, on_lost, next(self._serials))
            self._locks.add(lock)
        return lock

    def _lease_to_use(self) -> str:
        """The live lease, granted (and its keep-alive thread started) if there is none."""
        with self._guard:
            if self._closed:
                raise LockError("this EtcdSession is closed")
            if self._lease is None:
                sent = time.monotonic()
                data = self._gateway.post("/v3/lease/grant", core.grant_body(self._ttl))
                self._lease, self._granted_at = core.granted_lease(data, self.endpoint), sent
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=_keep_session_alive,
                    args=(weakref.ref(self), self._stop, core.RenewalClock(self._ttl, self._request_timeout)),
                    name="ftsync-etcd-session",
                    daemon=True,
                )
                self._keeper.start()
            return self._lease

    def _renew(self, lease: str, timeout: float) -> None:
        """One keep-alive of ``lease`` (the keeper thread), waiting at most ``timeout`` s."""
        if not core.lease_alive(self._gateway.post("/v3/lease/keepalive", {"ID": lease}, timeout=timeout)):
            self._lease_gone(lease, "the session's lease expired (a pause longer than its ttl?)")

    def _lease_gone(self, lease: str, reason: str) -> None:
        """Forget ``lease`` and mark every lock held on it lost.

        The lease is forgotten before the sweep, so a lock that becomes held after the sweep
        sees it gone (``EtcdLock._after_acquire``) and one held before is swept."""
        with self._guard:
            if self._lease == lease:
                self._lease = None
            locks = list(self._locks)  # under the guard: lock() adds to the set
        for lock in locks:
            if lock._lease == lease and lock._held:
                lock._mark_lost(reason)

    def close(self) -> None:
        """Release the held locks, stop the keep-alive thread and revoke the lease.

        Every lock is closed even if one fails (revoking the lease ends its hold anyway); the
        first failure (etcd did not answer, a hold was found lost) is raised at the end."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            locks = list(self._locks)
        failure: LockError | None = None
        try:
            for lock in locks:
                try:
                    lock.close()
                except LockError as exc:
                    failure = failure or exc
        finally:  # even on Ctrl-C: stop renewing, and give the lease back
            self._stop.set()
            keeper, self._keeper = self._keeper, None
            if keeper is not None and keeper is not threading.current_thread():
                keeper.join()
            lease, self._lease = self._lease, None
            try:
                if lease is not None:
                    self._gateway.post("/v3/lease/revoke", {"ID": lease}, allow_not_found=True)
            except LockError:
                pass  # it expires after one ttl
            finally:
                self._gateway.close()
        if failure is not None:
            raise failure

    def __enter__(self) -> EtcdSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EtcdSession {self.endpoint} ttl={self._ttl:g} lease={self._lease}>"


def _keep_session_alive(ref: weakref.ref[EtcdSession], stop: threading.Event, clock: core.RenewalClock) -> None:
    """The keeper thread, on ``clock``'s schedule.  Holds only a weak reference, so a dropped
    session ends it."""
    wait = 0.0
    while not stop.wait(wait):
        session = ref()
        if session is None:
            return
        lease, sent = session.lease, time.monotonic()
        wait, timeout = clock.plan(lease, session._granted_at, sent)
        if lease is not None and timeout is not None:
            try:
                session._renew(lease, timeout)
                clock.renewed(sent)
            except LockError as exc:  # try again soon, while the lease may still live
                wait, lost = clock.failed(exc, time.monotonic())
                if lost is not None:
                    session._lease_gone(lease, lost)
            except Exception as exc:  # noqa: BLE001 - never die silently
                _log.exception("EtcdSession keep-alive failed")
                session._lease_gone(lease, clock.crashed(exc))
        del session
