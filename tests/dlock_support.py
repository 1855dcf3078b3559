"""Lock backends for the dlock tests, by kind, on the real servers of the fixtures."""

from __future__ import annotations

import base64
import itertools
import json
import os
import urllib.request
import uuid

KINDS = ["memory", "redis", "redlock", "etcd"]
_names = itertools.count()


def unique_name(prefix="dlock"):
    return f"{prefix}-{os.getpid()}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def etcd_post(endpoint, path, body):
    request = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def b64(text):
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class DlockEnv:
    def __init__(self, kind, request):
        self.kind = kind
        self._locks = []
        self._clients = []
        if kind == "memory":
            self.url = "memory://"
        elif kind == "redis":
            server = request.getfixturevalue("redis_server")
            self.url = server.url
            self.servers = [server]
        elif kind == "redlock":
            servers = request.getfixturevalue("redlock_nodes")
            self.url = "redlock://" + ",".join(f"{s.host}:{s.port}" for s in servers)
            self.servers = servers
        elif kind == "etcd":
            server = request.getfixturevalue("etcd_server")
            self.url = f"etcd://{server.host}:{server.port}"
            self.endpoint = server.endpoint
        else:
            raise ValueError(kind)

    @property
    def fencing(self):
        return self.kind != "redlock"

    def new(self, name, ttl, **options):
        from patterns.dlock import lock_from_url

        lock = lock_from_url(self.url, name, ttl, **options)
        self._locks.append(lock)
        return lock

    def redis_client(self, index=0):
        import redis

        client = redis.Redis.from_url(self.servers[index].url)
        self._clients.append(client)
        return client

    def delete(self, name):
        """Delete the hold by hand, as an operator would."""
        if self.kind == "memory":
            from patterns.dlock.memory import default_registry

            default_registry.delete(name)
        elif self.kind in ("redis", "redlock"):
            for index in range(len(self.servers)):
                self.redis_client(index).delete(name)
        else:
            etcd_post(self.endpoint, "/v3/kv/deleterange", {"key": b64(name + "/"), "range_end": prefix_end(name + "/")})

    def close(self):
        for lock in self._locks:
            lock.close()
        for client in self._clients:
            client.close()
