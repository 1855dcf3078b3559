"""EtcdGateway: JSON requests to etcd's v3 gateway over the standard library's ``http.client``.

Each request rides a kept-alive connection taken from a small pool (one connection per concurrent
caller: the lock's own thread and its renewal thread may talk at once).  Nothing is ever sent
twice: the lock's writes (grant, create, revoke) are not idempotent, so a request that failed
raises, whatever happened to it.  To keep that from failing requests needlessly, a pooled
connection that the server closed while idle is noticed before a request is written to it and
replaced (a close that lands between that look and the write still fails the request).

Why not httpx here: on loopback the gateway itself answers in 0.35-0.6 ms, and the client's own
work decides the rest.  ``http.client`` adds about 0.1-0.15 ms per request, httpx about 0.5 ms
(measured on the 2-core CI machine kind, where the client's CPU time is also taken from the
server).  The asyncio twin keeps httpx, which has the async client.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from ._errors import LockConnectionError, LockError
from ._etcd_core import deleted, no_answer, read_reply, watch_body

__all__ = ["EtcdGateway"]

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read (an EOF, a reset): then it is done."""
    if hasattr(select, "poll"):  # select.select refuses descriptors >= FD_SETSIZE (1024)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class EtcdGateway:
    """POST JSON bodies to an etcd v3 gateway at ``endpoint`` (``http://host:port`` or https)."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._base = parts.path.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port
        self._https = parts.scheme == "https"
        self._timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._closed = False

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _take(self) -> http.client.HTTPConnection:
        """An idle connection still open, or a new one (connected lazily by http.client)."""
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return self._connect(self._timeout)
            sock = conn.sock
            if sock is None:
                return conn
            try:
                done = _closed_by_peer(sock)
            except (OSError, ValueError):
                done = True
            if not done:
                return conn
            conn.close()  # readable while idle: the server closed it (or sent garbage)

    def _fail(self, path: str, exc: BaseException) -> LockConnectionError:
        return no_answer(self.endpoint, path, exc)

    def post(self, path: str, body: dict[str, Any], *, allow_not_found: bool = False,
             timeout: float | None = None) -> dict[str, Any]:
        """The decoded reply; LockConnectionError when etcd did not answer, LockError when it refused.

        ``allow_not_found``: a refusal saying "not found" (an expired lease) returns
        ``{"not_found": True}`` instead of raising.  ``timeout``: seconds for this request
        instead of the gateway's.
        """
        if self._closed:
            raise LockError(f"the connection to etcd at {self.endpoint} is closed")
        conn = self._take()
        try:
            if timeout is not None:
                conn.timeout = timeout  # http.client connects with it
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
            conn.request("POST", self._base + path, json.dumps(body), _HEADERS)
            reply = conn.getresponse()
            raw = reply.read()
            if timeout is not None:
                conn.timeout = self._timeout
                if conn.sock is not None:
                    conn.sock.settimeout(self._timeout)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._fail(path, exc) from exc
        if reply.will_close or self._closed:
            conn.close()
        else:
            self._idle.append(conn)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return read_reply(self.endpoint, path, reply.status, data, raw[:200].decode(errors="replace"),
                          allow_not_found=allow_not_found)

    def watch_delete(self, key_b64: str, start_revision: int, wait: float) -> bool:
        """True once the key is deleted at or after ``start_revision``; False after ``wait`` s.

        A watch is a stream that the gateway never ends by itself, so it gets its own connection,
        closed afterwards.
        """
        if self._closed:
            raise LockError(f"the connection to etcd at {self.endpoint} is closed")
        give_up = time.monotonic() + wait
        body = watch_body(key_b64, start_revision)
        conn = self._connect(self._timeout)
        try:
            conn.request("POST", self._base + "/v3/watch", json.dumps(body), _HEADERS)
            sock = conn.sock  # the response reads through it even if http.client lets go of it
            reply = conn.getresponse()
            if reply.status != 200:
                raise LockError(f"etcd at {self.endpoint} refused /v3/watch: {reply.read()[:200]!r}")
            assert sock is not None
            return self._delete_seen(sock, reply, give_up)
        except (OSError, http.client.HTTPException) as exc:
            raise self._fail("/v3/watch", exc) from exc
        finally:
            conn.close()

    @staticmethod
    def _delete_seen(sock: socket.socket, reply: http.client.HTTPResponse, give_up: float) -> bool:
        """Read watch events until a DELETE (True) or ``give_up`` (False)."""
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(max(0.01, left))
            try:
                line = reply.readline()
            except TimeoutError:
                return False
            if not line:
                raise http.client.IncompleteRead(b"")  # the gateway ended the stream under us
            if deleted(line):
                return True

    def close(self) -> None:
        """Close the pooled connections; later requests raise LockError."""
        self._closed = True
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            conn.close()
