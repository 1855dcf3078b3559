"""AsyncEtcdLock: the asyncio twin of EtcdLock (httpx.AsyncClient), the same algorithm and keys."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

from .._errors import LockConnectionError, LockError, LockLost
from .._validate import check_bool, check_ttl
from ..etcd import _acquire_txn, _acquired_revision, _b64, _delete_txn, _prefix_range, _turn, _turn_txn
from ._base import AsyncDistributedLock

__all__ = ["AsyncEtcdLock"]


class AsyncEtcdLock(AsyncDistributedLock):
    """EtcdLock for asyncio; see :class:`patterns.dlock.EtcdLock` (FIFO waiters, create revision as
    the token, ttl rounded up to whole seconds, extend() renews the lease to its granted ttl)."""

    _kind = "etcd"

    def __init__(
        self,
        endpoint: str,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[..., object] | None = None,
        request_timeout: float = 5.0,
        keep_lease: bool = False,
    ) -> None:
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
        request_timeout = check_ttl(request_timeout, param="request_timeout")
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        import httpx

        self._httpx = httpx
        self._ttl = float(math.ceil(self._ttl))
        self._endpoint = endpoint.rstrip("/")
        self._request_timeout = request_timeout
        self._http = httpx.AsyncClient(base_url=self._endpoint, timeout=request_timeout)
        self._prefix = (name + "/").encode()
        self._lease: str | None = None
        self._keep_lease = check_bool(keep_lease, "keep_lease")
        self._key: bytes | None = None
        self._revision: int | None = None

    @property
    def endpoint(self) -> str:
        """The etcd JSON gateway's base URL."""
        return self._endpoint

    async def _post(self, path: str, body: dict[str, Any], *, allow_not_found: bool = False) -> dict[str, Any]:
        try:
            reply = await self._http.post(path, json=body)
        except self._httpx.TransportError as exc:
            raise LockConnectionError(f"etcd at {self._endpoint} did not answer {path}: {exc!r}") from exc
        try:
            data = reply.json()
        except ValueError:
            data = {}
        if reply.status_code != 200:
            message = data.get("message") or data.get("error") or reply.text[:200]
            if allow_not_found and "not found" in str(message):
                return {"not_found": True}
            raise LockError(f"etcd at {self._endpoint} refused {path}: {message}")
        return data

    async def _revoke(self, lease: str) -> None:
        await self._post("/v3/lease/revoke", {"ID": lease}, allow_not_found=True)

    async def _keepalive(self, lease: str) -> bool:
        data = await self._post("/v3/lease/keepalive", {"ID": lease})
        return int(data.get("result", {}).get("TTL", 0) or 0) > 0

    async def _fresh_lease(self) -> str:
        if self._lease is not None and await self._keepalive(self._lease):
            return self._lease
        data = await self._post("/v3/lease/grant", {"TTL": str(int(self._ttl))})
        if data.get("error") or not data.get("ID"):
            raise LockError(f"etcd at {self._endpoint} granted no lease: {data}")
        self._lease = str(data["ID"])
        return self._lease

    async def _own_key_alive(self) -> bool:
        data = await self._post("/v3/kv/range", {"key": _b64(self._key or b"")})
        kvs = data.get("kvs") or []
        return bool(kvs) and int(kvs[0].get("create_revision", 0)) == self._revision

    async def _watch_delete(self, key_b64: str, start_revision: int, wait: float) -> bool:
        httpx = self._httpx
        give_up = time.monotonic() + wait
        body = {"create_request": {"key": key_b64, "start_revision": str(start_revision)}}
        try:
            timeouts = httpx.Timeout(self._request_timeout, read=max(0.01, wait))
            async with self._http.stream("POST", "/v3/watch", json=body, timeout=timeouts) as stream:
                async for line in stream.aiter_lines():
                    if not line:
                        continue
                    result = json.loads(line).get("result", {})
                    for event in result.get("events") or ():
                        if event.get("type") == "DELETE":
                            return True
                    if time.monotonic() >= give_up:
                        return False
        except httpx.ReadTimeout:
            return False
        except httpx.TransportError as exc:
            raise LockConnectionError(f"etcd at {self._endpoint} did not answer /v3/watch: {exc!r}") from exc
        return False

    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        lease = await self._fresh_lease()
        key = self._prefix + format(int(lease), "x").encode()
        key_b64 = _b64(key)
        done = False
        try:
            reply = await self._post("/v3/kv/txn", _acquire_txn(self._prefix, key_b64, lease))
            revision, oldest = _acquired_revision(reply)
            self._key, self._revision = key, revision
            if oldest != revision and (not blocking or not await self._wait_for_turn(key_b64, deadline)):
                return False
            self._token = revision
            done = True
            return True
        finally:
            if not done:
                self._key = self._revision = None
                try:
                    await self._post("/v3/kv/deleterange", {"key": key_b64})
                    await self._drop_lease()
                except LockError:
                    pass

    async def _wait_for_turn(self, key_b64: str, deadline: float | None) -> bool:
        assert self._lease is not None and self._revision is not None
        renew_every = self._ttl / 3
        renewed = time.monotonic()
        while True:
            reply = await self._post("/v3/kv/txn", _turn_txn(self._prefix, key_b64, self._revision))
            alive, predecessor, at = _turn(reply, self._revision)
            if not alive:
                raise LockLost(f"{self._name!r}: the lease expired while waiting for the lock")
            if predecessor is None:
                return True
            now = time.monotonic()
            wait = renew_every - (now - renewed)
            if deadline is not None:
                if now >= deadline:
                    return False
                wait = min(wait, deadline - now)
            if wait > 0:
                await self._watch_delete(predecessor, at + 1, wait)
            if time.monotonic() - renewed >= renew_every:
                if not await self._keepalive(self._lease):
                    raise LockLost(f"{self._name!r}: the lease expired while waiting for the lock")
                renewed = time.monotonic()

    async def _release_impl(self) -> bool:
        key, revision = self._key, self._revision
        self._key = self._revision = None
        reply = await self._post("/v3/kv/txn", _delete_txn(_b64(key or b""), revision))
        await self._drop_lease()
        return bool(reply.get("succeeded"))

    async def _drop_lease(self) -> None:
        if not self._keep_lease and self._lease is not None:
            lease, self._lease = self._lease, None
            await self._revoke(lease)

    async def extend(self, ttl: float | None = None) -> None:
        """Keep the lease alive for another ttl (etcd leases have a fixed ttl: ``ttl`` must be None or equal it)."""
        if ttl is not None and math.ceil(check_ttl(ttl)) != self._ttl:
            raise ValueError(f"ttl must be None or round up to the lease's {self._ttl:g} s, got {ttl!r}")
        await super().extend(None)

    async def _extend_impl(self, ttl: float) -> bool:
        lease = self._lease
        if lease is None or not await self._keepalive(lease):
            return False
        return await self._own_key_alive()

    async def _owned_impl(self) -> bool:
        return self._key is not None and await self._own_key_alive()

    async def _locked_impl(self) -> bool:
        data = await self._post("/v3/kv/range", _prefix_range(self._prefix, count_only=True))
        return int(data.get("count", 0) or 0) > 0

    async def _forget_impl(self) -> None:
        key, revision = self._key, self._revision
        self._key = self._revision = None
        if key is not None:
            try:
                await self._post("/v3/kv/txn", _delete_txn(_b64(key), revision))
                await self._drop_lease()
            except LockError:
                pass

    async def _close_impl(self) -> None:
        lease, self._lease = self._lease, None
        try:
            if lease is not None:
                await self._revoke(lease)
        except LockError:
            pass
        finally:
            await self._http.aclose()
