"""AsyncEtcdLock and AsyncEtcdSession: the asyncio twins of EtcdLock and EtcdSession
(httpx.AsyncClient), drivers of the same protocol core (``patterns.dlock._etcd_core``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from typing import Any, Callable

from .. import _etcd_core as core
from .._errors import LockError
from .._etcd_core import b64, delete_txn
from .._validate import check_bool, check_ttl
from ._base import AsyncDistributedLock

__all__ = ["AsyncEtcdLock", "AsyncEtcdSession"]

_log = logging.getLogger("patterns.dlock")


async def _post_json(http: Any, endpoint: str, path: str, body: dict[str, Any], *,
                     allow_not_found: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """POST to the gateway; LockConnectionError when etcd did not answer, LockError when it
    refused (``allow_not_found``: a "not found" refusal returns ``{"not_found": True}``).
    ``timeout``: seconds for this request instead of the client's."""
    import httpx

    try:
        if timeout is None:
            reply = await http.post(path, json=body)
        else:
            reply = await http.post(path, json=body, timeout=timeout)
    except httpx.TransportError as exc:
        raise core.no_answer(endpoint, path, exc) from exc
    try:
        data = reply.json()
    except ValueError:
        data = {}
    return core.read_reply(endpoint, path, reply.status_code, data, reply.text, allow_not_found=allow_not_found)


class AsyncEtcdLock(core.EtcdHold, AsyncDistributedLock):
    """EtcdLock for asyncio; see :class:`patterns.dlock.EtcdLock` (FIFO waiters, create revision as
    the token, ttl rounded up to whole seconds, extend() renews the lease to its granted ttl)."""

    endpoint = core.EtcdHold.endpoint

    def __init__(self, endpoint: str, name: str, ttl: float, *, timeout: float | None = None,
                 auto_renew: bool = False, on_lost: Callable[..., object] | None = None,
                 request_timeout: float = 5.0, keep_lease: bool = False) -> None:
        core.check_endpoint(endpoint)
        request_timeout = check_ttl(request_timeout, param="request_timeout")
        keep_lease = check_bool(keep_lease, "keep_lease")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        import httpx

        http = httpx.AsyncClient(base_url=endpoint.rstrip("/"), timeout=request_timeout)
        self._setup(http, endpoint.rstrip("/"), request_timeout, keep_lease, None)

    @classmethod
    def _in_session(cls, session: AsyncEtcdSession, name: str, timeout: float | None,
                    on_lost: Callable[..., object] | None, serial: int) -> AsyncEtcdLock:
        """A lock on ``session``'s lease (made by ``AsyncEtcdSession.lock``)."""
        lock = cls.__new__(cls)
        AsyncDistributedLock.__init__(lock, name, session.ttl, timeout=timeout, on_lost=on_lost)
        lock._setup(session._http, session.endpoint, session._request_timeout, True, session)
        lock._suffix = b"_%x" % serial  # two locks of one session on one name: two keys
        return lock

    def _setup(self, http: Any, endpoint: str, request_timeout: float, keep_lease: bool,
               session: AsyncEtcdSession | None) -> None:
        import httpx

        self._setup_hold(endpoint, keep_lease, session)
        self._httpx = httpx
        self._request_timeout = request_timeout
        self._http = http

    async def _post(self, path: str, body: dict[str, Any], *, allow_not_found: bool = False) -> dict[str, Any]:
        return await _post_json(self._http, self._endpoint, path, body, allow_not_found=allow_not_found)

    async def _revoke(self, lease: str) -> None:
        await self._post("/v3/lease/revoke", {"ID": lease}, allow_not_found=True)

    async def _keepalive(self, lease: str) -> bool:
        return core.lease_alive(await self._post("/v3/lease/keepalive", {"ID": lease}))

    async def _fresh_lease(self) -> str:
        if self._session is not None:
            self._lease = await self._session._lease_to_use()
            return self._lease
        self._hold_sent = time.monotonic()  # the lease's ttl starts no earlier than this
        if self._lease is not None and await self._keepalive(self._lease):
            return self._lease
        self._hold_sent = time.monotonic()
        data = await self._post("/v3/lease/grant", core.grant_body(self._ttl))
        self._lease = core.granted_lease(data, self._endpoint)
        return self._lease

    async def _own_key_alive(self) -> bool:
        return core.key_alive(await self._post("/v3/kv/range", {"key": b64(self._key or b"")}), self._revision)

    async def _watch_delete(self, key_b64: str, start_revision: int, wait: float) -> bool:
        httpx = self._httpx
        give_up = time.monotonic() + wait
        body = core.watch_body(key_b64, start_revision)
        try:
            timeouts = httpx.Timeout(self._request_timeout, read=max(0.01, wait))
            async with self._http.stream("POST", "/v3/watch", json=body, timeout=timeouts) as stream:
                async for line in stream.aiter_lines():
                    if core.deleted(line):
                        return True
                    if line and time.monotonic() >= give_up:
                        return False
        except httpx.ReadTimeout:
            return False
        except httpx.TransportError as exc:
            raise core.no_answer(self._endpoint, "/v3/watch", exc) from exc
        return False

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        session = self._session
        if session is None:
            return await self._try_acquire(blocking, deadline)
        for _ in range(core.SESSION_TRIES):
            try:
                got = await self._try_acquire(blocking, deadline)
            except LockError as exc:
                lease = self._lease_ended(exc)
                if lease is None:
                    raise
                # the session's lease ended under this acquire: start again on a new one
                await session._lease_gone(lease, core.SESSION_EXPIRED)
                continue
            if not got or not self._session_moved_on():
                return got
            # the session gave this lease up while we were acquiring on it: nobody renews it
            self._token = None
            try:
                await self._give_up(*self._drop_key())
            except LockError:
                pass  # the abandoned lease ends it within a ttl
        raise self._lost_too_often()

    async def _after_acquire(self) -> None:
        """As EtcdLock's: a hold taken on a lease its session has given up is reported lost."""
        if self._session_moved_on():
            await self._mark_lost("the session's lease was given up while this hold was being taken")

    async def _try_acquire(self, blocking: bool, deadline: float | None) -> bool:
        lease = await self._fresh_lease()
        key, key_b64 = self._key_of(lease)
        got = False
        try:
            reply = await self._post("/v3/kv/txn", core.acquire_txn(self._prefix, key_b64, lease))
            got = self._took_key(reply, key) or (blocking and await self._wait_for_turn(key_b64, deadline))
            if got:
                self._token = self._revision
            return got
        finally:
            if not got:
                self._key = self._revision = None
                try:  # as EtcdLock._give_up: revoking the lease deletes the key in the same request
                    await self._give_up(key_b64, None)
                except LockError:
                    pass

    async def _wait_for_turn(self, key_b64: str, deadline: float | None) -> bool:
        assert self._lease is not None and self._revision is not None
        clock = core.TurnWait(self._ttl, deadline)
        while True:
            reply = await self._post("/v3/kv/txn", core.turn_txn(self._prefix, key_b64, self._revision))
            alive, predecessor, at = core.turn(reply, self._revision)
            if not alive:
                if self._session is not None:
                    await self._session._lease_gone(self._lease, core.SESSION_EXPIRED)
                raise self._lost_while_waiting()
            wait = clock.next_look(predecessor, time.monotonic())
            if isinstance(wait, bool):
                return wait
            if wait > 0:
                await self._watch_delete(str(predecessor), at + 1, wait)
            if self._session is None:
                if clock.renew_due(time.monotonic()):
                    if not await self._keepalive(self._lease):
                        raise self._lost_while_waiting()
                    clock.renewed(time.monotonic())
            elif self._session_moved_on():  # the session renews its lease; is it still this one?
                raise self._lost_while_waiting(session_lease=True)
            else:
                clock.renewed(time.monotonic())  # look again after another ttl/3 at most

    async def _release_impl(self) -> bool:
        return await self._give_up(*self._drop_key())

    async def _give_up(self, key_b64: str, revision: int | None) -> bool:
        """As EtcdLock._give_up: delete our key (whatever it is when ``revision`` is None) and
        drop the lease; False when the key was no longer this hold's."""
        if revision is None:
            if self._keep_lease:
                await self._post("/v3/kv/deleterange", {"key": key_b64})
            await self._drop_lease()
            return True
        ours = bool((await self._post("/v3/kv/txn", delete_txn(key_b64, revision))).get("succeeded"))
        await self._drop_lease()
        return ours

    async def _drop_lease(self) -> None:
        if not self._keep_lease and self._lease is not None:
            lease, self._lease = self._lease, None
            await self._revoke(lease)

    async def extend(self, ttl: float | None = None) -> None:
        """Keep the lease alive for another ttl (etcd leases have a fixed ttl: ``ttl`` must be None or equal it)."""
        self._check_extend_ttl(ttl)
        await super().extend(None)

    async def _extend_impl(self, ttl: float) -> bool:
        lease = self._lease
        if lease is None or not await self._keepalive(lease):
            return False
        return await self._own_key_alive()

    async def _owned_impl(self) -> bool:
        return self._key is not None and await self._own_key_alive()

    async def _locked_impl(self) -> bool:
        return core.any_key(await self._post("/v3/kv/range", core.prefix_range(self._prefix, count_only=True)))

    async def _forget_impl(self) -> None:
        if self._key is not None:
            try:
                await self._give_up(*self._drop_key())
            except LockError:
                pass

    async def _close_impl(self) -> None:
        lease, self._lease = self._lease, None
        if self._session is not None:
            return  # the lease and the client are the session's
        try:
            if lease is not None:
                await self._revoke(lease)
        except LockError:
            pass
        finally:
            await self._http.aclose()


class AsyncEtcdSession:
    """EtcdSession for asyncio: one lease kept alive by a background task, shared by the locks
    ``lock()`` makes (see :class:`patterns.dlock.EtcdSession`).  Belongs to one event loop;
    ``aclose()`` (or ``async with``) releases the held locks and revokes the lease."""

    def __init__(self, endpoint: str, ttl: float, *, request_timeout: float = 5.0) -> None:
        core.check_endpoint(endpoint)
        self._ttl = core.lease_ttl(ttl)
        self._request_timeout = check_ttl(request_timeout, param="request_timeout")
        import httpx

        self._endpoint = endpoint.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self._endpoint, timeout=self._request_timeout)
        self._granting: asyncio.Lock | None = None  # made in the loop, at the first acquire
        self._lease: str | None = None
        self._granted_at = 0.0  # monotonic time the grant of the current lease was sent
        self._keeper: asyncio.Task[None] | None = None
        self._closed = False
        self._locks: weakref.WeakSet[AsyncEtcdLock] = weakref.WeakSet()
        self._serials = itertools.count(1)

    endpoint = property(lambda self: self._endpoint, doc="The etcd JSON gateway's base URL.")
    ttl = property(lambda self: self._ttl, doc="Lease seconds: how long a hold outlives this process.")
    lease = property(lambda self: self._lease, doc="The current lease ID, None before the first acquire and after a loss.")

    def lock(self, name: str, *, timeout: float | None = None,
             on_lost: Callable[..., object] | None = None) -> AsyncEtcdLock:
        """An AsyncEtcdLock on this session's lease; two locks of one session on one name are two waiters."""
        if self._closed:
            raise LockError("this AsyncEtcdSession is closed")
        lock = AsyncEtcdLock._in_session(self, name, timeout, on_lost, next(self._serials))
        self._locks.add(lock)
        return lock

    async def _post(self, path: str, body: dict[str, Any], *, allow_not_found: bool = False) -> dict[str, Any]:
        return await _post_json(self._http, self._endpoint, path, body, allow_not_found=allow_not_found)

    async def _lease_to_use(self) -> str:
        """The live lease, granted (and its keep-alive task started) if there is none."""
        if self._granting is None:
            self._granting = asyncio.Lock()
        async with self._granting:
            if self._closed:
                raise LockError("this AsyncEtcdSession is closed")
            if self._lease is None:
                sent = time.monotonic()
                data = await self._post("/v3/lease/grant", core.grant_body(self._ttl))
                self._lease, self._granted_at = core.granted_lease(data, self._endpoint), sent
            if self._keeper is None:
                clock = core.RenewalClock(self._ttl, self._request_timeout)
                self._keeper = asyncio.get_running_loop().create_task(_keep_session_alive(weakref.ref(self), clock))
            return self._lease

    async def _renew(self, lease: str, timeout: float) -> None:
        """One keep-alive of ``lease``, waiting at most ``timeout`` s."""
        data = await _post_json(self._http, self._endpoint, "/v3/lease/keepalive", {"ID": lease}, timeout=timeout)
        if not core.lease_alive(data):
            await self._lease_gone(lease, "the session's lease expired (a pause longer than its ttl?)")

    async def _lease_gone(self, lease: str, reason: str) -> None:
        if self._lease == lease:
            self._lease = None
        for lock in list(self._locks):
            if lock._lease == lease and lock._held:
                await lock._mark_lost(reason)

    async def aclose(self) -> None:
        """Release the held locks, stop the keep-alive task and revoke the lease (every lock is
        closed even if one fails; the first failure is raised at the end)."""
        if self._closed:
            return
        self._closed = True
        failure: LockError | None = None
        try:
            for lock in list(self._locks):
                try:
                    await lock.aclose()
                except LockError as exc:
                    failure = failure or exc
        finally:  # even when cancelled: stop renewing, and give the lease back
            keeper, self._keeper = self._keeper, None
            if keeper is not None and keeper is not asyncio.current_task():
                keeper.cancel()
                try:
                    await keeper
                except asyncio.CancelledError:
                    pass
            lease, self._lease = self._lease, None
            try:
                if lease is not None:
                    await self._post("/v3/lease/revoke", {"ID": lease}, allow_not_found=True)
            except LockError:
                pass  # it expires after one ttl
            finally:
                await self._http.aclose()
        if failure is not None:
            raise failure

    async def __aenter__(self) -> AsyncEtcdSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncEtcdSession {self._endpoint} ttl={self._ttl:g} lease={self._lease}>"


async def _keep_session_alive(ref: weakref.ref[AsyncEtcdSession], clock: core.RenewalClock) -> None:
    """The keeper task, on ``clock``'s schedule (see EtcdSession's keeper).  Holds only a weak
    reference between rounds."""
    wait = 0.0
    while True:
        if wait > 0:
            await asyncio.sleep(wait)
        session = ref()
        if session is None or session._closed:
            return
        lease, sent = session.lease, time.monotonic()
        wait, timeout = clock.plan(lease, session._granted_at, sent)
        if lease is None or timeout is None:
            del session
            continue
        try:
            await session._renew(lease, timeout)
            clock.renewed(sent)
        except LockError as exc:
            wait, lost = clock.failed(exc, time.monotonic())
            if lost is not None:
                await session._lease_gone(lease, lost)
        except Exception as exc:  # noqa: BLE001 - never die silently
            _log.exception("AsyncEtcdSession keep-alive failed")
            await session._lease_gone(lease, clock.crashed(exc))
        del session
