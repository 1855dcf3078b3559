"""Eight processes contend for one lock; a checker reads what each saw: no two critical sections
overlap (CLOCK_MONOTONIC is one clock for every process on the machine) and fencing tokens
strictly increase in the order the sections were entered.  Clients built both ways."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlock_support import unique_name
from faults import watchdog

PROCESSES, ROUNDS = 8, 12

CONTENDER = r'''
import asyncio, json, sys, time
kind, way, name, out, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
addrs = json.loads(sys.argv[6])
records = []

def client(addr, timeout):
    import redis
    if way == "kwargs":
        return redis.Redis(host=addr[0], port=addr[1], socket_timeout=timeout)
    return redis.Redis.from_url(f"redis://{addr[0]}:{addr[1]}/0", socket_timeout=timeout)

def make():
    from patterns import dlock
    if kind == "redis":
        return dlock.RedisLock(client(addrs[0], 2), name, 10)
    if kind == "redlock":
        return dlock.Redlock([client(a, 0.5) for a in addrs], name, 10)
    if kind == "etcd":
        return dlock.EtcdLock(f"http://{addrs[0][0]}:{addrs[0][1]}", name, 10)
    if kind == "session":
        session = dlock.EtcdSession(f"http://{addrs[0][0]}:{addrs[0][1]}", 10)
        return session.lock(name)
    raise SystemExit(kind)

def run_sync():
    lock = make()
    for _ in range(rounds):
        assert lock.acquire(timeout=60), "not acquired within 60 s"
        entered = time.monotonic()
        time.sleep(0.002)
        records.append((entered, time.monotonic(), lock.token))
        lock.release()
    lock.close()

async def run_async():
    import redis.asyncio as aredis
    from patterns.dlock.aio import AsyncRedisLock
    c = aredis.Redis(host=addrs[0][0], port=addrs[0][1], socket_timeout=2) if way == "kwargs" else \
        aredis.Redis.from_url(f"redis://{addrs[0][0]}:{addrs[0][1]}/0", socket_timeout=2)
    lock = AsyncRedisLock(c, name, 10)
    for _ in range(rounds):
        assert await lock.acquire(timeout=60)
        entered = time.monotonic()
        await asyncio.sleep(0.002)
        records.append((entered, time.monotonic(), lock.token))
        await lock.release()
    await c.aclose()

if kind == "aredis":
    asyncio.run(run_async())
else:
    run_sync()
with open(out, "w") as f:
    json.dump(records, f)
'''


def _check(records, fencing):
    records.sort()
    for (enter, leave, token), (next_enter, _next_leave, next_token) in zip(records, records[1:]):
        assert next_enter >= leave, f"critical sections overlap: {enter:.6f}-{leave:.6f} and {next_enter:.6f}"
        if fencing:
            assert next_token > token, f"token {next_token} entered after token {token}"
    assert len(records) == PROCESSES * ROUNDS


@pytest.mark.parametrize("kind,way", [
    ("redis", "kwargs"), ("redis", "from_url"), ("aredis", "from_url"),
    ("redlock", "kwargs"), ("redlock", "from_url"), ("etcd", "-"), ("session", "-"),
])
def test_eight_processes_never_overlap_and_tokens_follow_entry_order(kind, way, request, tmp_path):
    if kind in ("redis", "aredis"):
        server = request.getfixturevalue("redis_server")
        addrs = [(server.host, server.port)]
    elif kind == "redlock":
        addrs = [(s.host, s.port) for s in request.getfixturevalue("redlock_nodes")]
    else:
        server = request.getfixturevalue("etcd_server")
        addrs = [(server.host, server.port)]
    name = unique_name(f"contend-{kind}")
    outs = [tmp_path / f"p{i}.json" for i in range(PROCESSES)]
    with watchdog(200):
        procs = [
            subprocess.Popen([sys.executable, "-c", CONTENDER, kind, way, name, str(out), str(ROUNDS), json.dumps(addrs)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for out in outs
        ]
        try:
            for proc in procs:
                _out, err = proc.communicate(timeout=150)
                assert proc.returncode == 0, err[-3000:]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
    records = [tuple(r) for out in outs for r in json.loads(out.read_text())]
    _check(records, fencing=kind != "redlock")


def test_the_checker_catches_overlap_and_tokens_out_of_order():
    with pytest.raises(AssertionError, match="overlap"):
        _check([(0.0, 1.0, 1), (0.5, 2.0, 2)] + [(3.0 + i, 3.5 + i, 3 + i) for i in range(PROCESSES * ROUNDS - 2)], True)
    with pytest.raises(AssertionError, match="entered after"):
        _check([(0.0, 1.0, 5), (1.5, 2.0, 4)] + [(3.0 + i, 3.5 + i, 6 + i) for i in range(PROCESSES * ROUNDS - 2)], True)
