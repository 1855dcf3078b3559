"""etcd's lock protocol over the v3 JSON gateway, without I/O: the requests (bodies of the
transactions, ranges and lease calls), what their replies mean, the messages, and the clocks
of a waiting acquire and of a session's keep-alive.  EtcdLock/EtcdSession (``http.client``,
threads) and AsyncEtcdLock/AsyncEtcdSession (httpx, asyncio) are thin drivers over it, so they
decide alike.  See patterns.dlock.etcd for the algorithm.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

from ._errors import LockConnectionError, LockError, LockLost
from ._validate import check_ttl

__all__ = ["EtcdHold", "RenewalClock", "TurnWait"]

SESSION_TRIES = 3  # times one acquire starts again when its session's lease ends under it
SESSION_EXPIRED = "the session's lease expired"


def check_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
    return endpoint


def lease_ttl(ttl: float) -> float:
    """etcd leases are whole seconds: ``ttl`` rounded up."""
    return float(math.ceil(check_ttl(ttl)))


# -- requests and replies ------------------------------------------------------------------

def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def prefix_end(prefix: bytes) -> bytes:
    raw = bytearray(prefix)
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\0"


def prefix_range(prefix: bytes, **extra: Any) -> dict[str, Any]:
    return {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), **extra}


def acquire_txn(prefix: bytes, key_b64: str, lease: str) -> dict[str, Any]:
    """Create our key if it does not exist; in both branches read it and the oldest key."""
    oldest = {"request_range": prefix_range(prefix, sort_order="ASCEND", sort_target="CREATE", limit="1")}
    return {
        "compare": [{"key": key_b64, "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
        "success": [{"request_put": {"key": key_b64, "value": "", "lease": lease}}, oldest],
        "failure": [{"request_range": {"key": key_b64}}, oldest],
    }


def acquired_revision(data: dict[str, Any]) -> tuple[int, int]:
    """(our key's create revision, the oldest key's create revision) from acquire_txn's reply."""
    responses = data.get("responses") or []
    if data.get("succeeded"):
        revision = int(data["header"]["revision"])
    else:
        revision = int(responses[0]["response_range"]["kvs"][0]["create_revision"])
    oldest = (responses[1].get("response_range", {}).get("kvs") or [{}])[0]
    return revision, int(oldest.get("create_revision", 0))


def turn_txn(prefix: bytes, key_b64: str, revision: int) -> dict[str, Any]:
    """Read-only: our predecessor (newest key older than ours) and our own key."""
    predecessor = prefix_range(
        prefix, max_create_revision=str(revision - 1), sort_order="DESCEND", sort_target="CREATE", limit="1"
    )
    return {"compare": [], "success": [{"request_range": predecessor}, {"request_range": {"key": key_b64}}]}


def turn(data: dict[str, Any], revision: int) -> tuple[bool, str | None, int]:
    """From turn_txn's reply: (own key alive, predecessor key or None, revision read at)."""
    responses = data.get("responses") or [{}, {}]
    own = responses[1].get("response_range", {}).get("kvs") or []
    alive = bool(own) and int(own[0].get("create_revision", 0)) == revision
    before = responses[0].get("response_range", {}).get("kvs") or []
    return alive, (before[0]["key"] if before else None), int(data["header"]["revision"])


def delete_txn(key_b64: str, revision: int | None) -> dict[str, Any]:
    return {
        "compare": [{"key": key_b64, "result": "EQUAL", "target": "CREATE", "create_revision": str(revision)}],
        "success": [{"request_delete_range": {"key": key_b64}}],
        "failure": [],
    }


def grant_body(ttl: float) -> dict[str, Any]:
    return {"TTL": str(int(ttl))}


def granted_lease(data: dict[str, Any], endpoint: str) -> str:
    """The lease ID of a grant's reply (LockError if etcd granted none)."""
    if data.get("error") or not data.get("ID"):
        raise LockError(f"etcd at {endpoint} granted no lease: {data}")
    return str(data["ID"])


def lease_alive(data: dict[str, Any]) -> bool:
    """From a keep-alive's reply: whether the lease still lives."""
    return int(data.get("result", {}).get("TTL", 0) or 0) > 0


def key_alive(data: dict[str, Any], revision: int | None) -> bool:
    """From a range of our key: whether it is still this hold's key (same create revision)."""
    kvs = data.get("kvs") or []
    return bool(kvs) and int(kvs[0].get("create_revision", 0)) == revision


def any_key(data: dict[str, Any]) -> bool:
    """From a count-only range of the lock's prefix: whether anyone holds or waits."""
    return int(data.get("count", 0) or 0) > 0


def watch_body(key_b64: str, start_revision: int) -> dict[str, Any]:
    return {"create_request": {"key": key_b64, "start_revision": str(start_revision)}}


def deleted(line: bytes | str) -> bool:
    """Whether one line of a watch stream reports a DELETE (blank lines are keep-alives)."""
    if not line.strip():
        return False
    result = json.loads(line).get("result", {})
    return any(event.get("type") == "DELETE" for event in result.get("events") or ())


def no_answer(endpoint: str, path: str, exc: BaseException) -> LockConnectionError:
    return LockConnectionError(f"etcd at {endpoint} did not answer {path}: {exc!r}")


def read_reply(endpoint: str, path: str, status: int, data: Any, text: str, *,
               allow_not_found: bool = False) -> dict[str, Any]:
    """The decoded reply (``data``, None when it was no JSON); LockError when etcd refused
    (``allow_not_found``: a "not found" refusal, an expired lease, gives ``{"not_found": True}``)."""
    if not isinstance(data, dict):
        data = {}
    if status != 200:
        message = data.get("message") or data.get("error") or text[:200]
        if allow_not_found and "not found" in str(message):
            return {"not_found": True}
        raise LockError(f"etcd at {endpoint} refused {path}: {message}")
    reply: dict[str, Any] = data
    return reply


# -- a hold and its clocks -----------------------------------------------------------------


class EtcdHold:
    """An etcd hold's bookkeeping, without I/O: the key (``name/<lease hex>[_serial]``), its create
    revision (the token), the lease, whether it is kept between holds, the session if any."""

    _name: str
    _ttl: float
    _token: int | None

    def _setup_hold(self, endpoint: str, keep_lease: bool, session: Any) -> None:
        self._ttl = float(math.ceil(self._ttl))
        self._endpoint = endpoint
        self._prefix = (self._name + "/").encode()
        self._suffix = b""
        self._session = session
        self._lease: str | None = None
        self._keep_lease = keep_lease
        self._key: bytes | None = None
        self._revision: int | None = None

    @property
    def endpoint(self) -> str:
        """The etcd JSON gateway's base URL."""
        return self._endpoint

    def _key_of(self, lease: str) -> tuple[bytes, str]:
        """Our key on ``lease``, raw and base64."""
        key = self._prefix + format(int(lease), "x").encode() + self._suffix
        return key, b64(key)

    def _took_key(self, reply: dict[str, Any], key: bytes) -> bool:
        """Read acquire_txn's reply: True when our key is the oldest (the lock is ours)."""
        revision, oldest = acquired_revision(reply)
        self._key, self._revision = key, revision
        return oldest == revision

    def _drop_key(self) -> tuple[str, int | None]:
        """Forget the hold's key: (its base64, its revision) for the delete."""
        key, revision = self._key, self._revision
        self._key = self._revision = None
        return b64(key or b""), revision

    def _check_extend_ttl(self, ttl: float | None) -> None:
        if ttl is not None and math.ceil(check_ttl(ttl)) != self._ttl:
            raise ValueError(f"ttl must be None or round up to the lease's {self._ttl:g} s, got {ttl!r}")

    def _session_moved_on(self) -> bool:
        """Whether this lock's session has given up the lease this hold is on."""
        return self._session is not None and self._session.lease != self._lease

    def _lost_while_waiting(self, session_lease: bool = False) -> LockLost:
        if session_lease:
            return LockLost(f"{self._name!r}: the session's lease was lost while waiting for the lock")
        return LockLost(f"{self._name!r}: the lease expired while waiting for the lock")

    def _lost_too_often(self) -> LockLost:
        return LockLost(f"{self._name!r}: the session's lease was lost {SESSION_TRIES} times during one acquire")

    def _lease_ended(self, exc: LockError) -> str | None:
        """After a failed acquire on a session's lease: the lease to declare gone and start again
        on a new one, or None when the failure is to be raised."""
        lease = self._lease
        if lease is None or ("lease not found" not in str(exc) and self._session.lease == lease):
            return None
        return lease


class TurnWait:
    """A waiting acquire's clock: how long to watch the predecessor, when to renew the lease
    (every ttl/3 while waiting), when the deadline has passed."""

    def __init__(self, ttl: float, deadline: float | None) -> None:
        self._every, self._deadline = ttl / 3, deadline
        self._renewed = time.monotonic()

    def next_look(self, predecessor: str | None, now: float) -> bool | float:
        """After a look at the queue: True (no key older than ours: our turn), False (the
        deadline has passed), else seconds to watch ``predecessor`` for its deletion before the
        next look (0 or less: look again at once)."""
        if predecessor is None:
            return True
        wait = self._every - (now - self._renewed)
        if self._deadline is not None:
            if now >= self._deadline:
                return False
            wait = min(wait, self._deadline - now)
        return wait

    def renew_due(self, now: float) -> bool:
        return now - self._renewed >= self._every

    def renewed(self, now: float) -> None:
        self._renewed = now


class RenewalClock:
    """When a session's keeper renews its lease, how long it waits for a reply, when it gives up.

    The lease's ttl restarts when etcd receives a grant or keep-alive, so everything counts from
    when that request was *sent*: a keep-alive is due ttl/3 after the last one was sent (slow
    replies do not push renewals late), may wait for its reply as long as the lease can still be
    alive (a slow etcd is not a lost lease), and a lease not renewed for a whole ttl is lost.
    Shared by the keeper thread and the asyncio keeper task.
    """

    def __init__(self, ttl: float, request_timeout: float) -> None:
        self.ttl, self.interval, self._request_timeout = ttl, ttl / 3, request_timeout
        self._kept: str | None = None
        self._renewed = 0.0

    def due_in(self, lease: str, granted_at: float, now: float) -> float:
        """Seconds until ``lease`` needs a keep-alive (0 or less: now)."""
        if lease != self._kept:
            self._kept, self._renewed = lease, granted_at
        return self._renewed + self.interval - now

    def reply_timeout(self, sent: float) -> float:
        return max(0.05, min(self._request_timeout, self._renewed + self.ttl - sent))

    def renewed(self, sent: float) -> None:
        self._renewed = sent

    def expired(self, now: float) -> bool:
        return now - self._renewed >= self.ttl

    def plan(self, lease: str | None, granted_at: float, now: float) -> tuple[float, float | None]:
        """(seconds to sleep, None) while no keep-alive is due, or (0, its reply timeout) when one is."""
        if lease is None:  # nothing to keep until the next acquire grants one
            return self.interval, None
        wait = self.due_in(lease, granted_at, now)
        return (wait, None) if wait > 0 else (0.0, self.reply_timeout(now))

    def failed(self, exc: BaseException, now: float) -> tuple[float, str | None]:
        """After a keep-alive got no answer: (seconds until the next try, why the lease counts as
        lost once it was not renewed for a whole ttl, else None)."""
        lost = f"etcd did not renew the session's lease for a whole ttl: {exc}" if self.expired(now) else None
        return min(self.interval, 0.2), lost

    @staticmethod
    def crashed(exc: BaseException) -> str:
        return f"the keep-alive raised {type(exc).__name__}: {exc}"
