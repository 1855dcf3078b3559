"""AsyncEtcdLock: the asyncio twin of EtcdLock (httpx.AsyncClient), the same algorithm and keys."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

from .._errors import LockConnectionError, LockError, LockLost
from .._validate import check_ttl
from ..etcd import _b64, _prefix_end
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
        self._key: bytes | None = None
        self._revision: int | None = None

    @property
    def endpoint(self) -> str:
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

    async def _range_prefix(self, **extra: Any) -> dict[str, Any]:
        body = {"key": _b64(self._prefix), "range_end": _b64(_prefix_end(self._prefix)), **extra}
        return await self._post("/v3/kv/range", body)

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
        data = await self._post("/v3/lease/grant", {"TTL": str(int(self._ttl))})
        if data.get("error") or not data.get("ID"):
            raise LockError(f"etcd at {self._endpoint} granted no lease: {data}")
        lease = str(data["ID"])
        key = self._prefix + format(int(lease), "x").encode()
        key_b64 = _b64(key)
        owner_range = {
            "request_range": {
                "key": _b64(self._prefix), "range_end": _b64(_prefix_end(self._prefix)),
                "sort_order": "ASCEND", "sort_target": "CREATE", "limit": "1",
            }
        }
        done = False
        try:
            txn = {
                "compare": [{"key": key_b64, "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
                "success": [{"request_put": {"key": key_b64, "value": "", "lease": lease}}, owner_range],
                "failure": [{"request_range": {"key": key_b64}}, owner_range],
            }
            data = await self._post("/v3/kv/txn", txn)
            responses = data.get("responses") or []
            if data.get("succeeded"):
                revision = int(data["header"]["revision"])
            else:
                revision = int(responses[0]["response_range"]["kvs"][0]["create_revision"])
            owner = (responses[1].get("response_range", {}).get("kvs") or [{}])[0]
            self._lease, self._key, self._revision = lease, key, revision
            if int(owner.get("create_revision", 0)) != revision:
                if not blocking or not await self._wait_for_turn(deadline):
                    return False
                if not await self._own_key_alive():
                    raise LockLost(f"{self._name!r}: the lease expired while waiting for the lock")
            self._token = revision
            done = True
            return True
        finally:
            if not done:
                self._lease = self._key = self._revision = None
                try:
                    await self._post("/v3/kv/deleterange", {"key": key_b64})
                    await self._revoke(lease)
                except LockError:
                    pass

    async def _wait_for_turn(self, deadline: float | None) -> bool:
        assert self._lease is not None and self._revision is not None
        renew_every = self._ttl / 3
        renewed = time.monotonic()
        while True:
            data = await self._range_prefix(
                max_create_revision=str(self._revision - 1), sort_order="DESCEND",
                sort_target="CREATE", limit="1",
            )
            kvs = data.get("kvs") or []
            if not kvs:
                return True
            now = time.monotonic()
            wait = renew_every - (now - renewed)
            if deadline is not None:
                if now >= deadline:
                    return False
                wait = min(wait, deadline - now)
            if wait > 0:
                await self._watch_delete(kvs[0]["key"], int(data["header"]["revision"]) + 1, wait)
            if time.monotonic() - renewed >= renew_every:
                if not await self._keepalive(self._lease):
                    raise LockLost(f"{self._name!r}: the lease expired while waiting for the lock")
                renewed = time.monotonic()

    async def _release_impl(self) -> bool:
        lease, key, revision = self._lease, self._key, self._revision
        self._lease = self._key = self._revision = None
        key_b64 = _b64(key or b"")
        txn = {
            "compare": [{"key": key_b64, "result": "EQUAL", "target": "CREATE", "create_revision": str(revision)}],
            "success": [{"request_delete_range": {"key": key_b64}}],
            "failure": [],
        }
        ours = bool((await self._post("/v3/kv/txn", txn)).get("succeeded"))
        if lease is not None:
            await self._revoke(lease)
        return ours

    async def extend(self, ttl: float | None = None) -> None:
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
        return int((await self._range_prefix(count_only=True)).get("count", 0) or 0) > 0

    async def _forget_impl(self) -> None:
        lease = self._lease
        self._lease = self._key = self._revision = None
        if lease is not None:
            try:
                await self._revoke(lease)
            except LockError:
                pass

    async def _close_impl(self) -> None:
        await self._http.aclose()
