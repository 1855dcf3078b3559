"""Distributed locks across real processes: lost updates, and a holder frozen past its ttl."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlock_support import unique_name

from patterns.dlock import FencedResource, StaleToken

WORKER = str(Path(__file__).parent / "programs" / "dlock_worker.py")
PROCESS_KINDS = ["redis", "redlock", "etcd"]
kinds = pytest.mark.parametrize("dlock_env", PROCESS_KINDS, indirect=True)


def _spawn(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, WORKER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _expect(proc, prefix, timeout=20):
    line = proc.stdout.readline().strip()
    if not line.startswith(prefix):
        proc.kill()
        raise AssertionError(f"expected {prefix!r}, got {line!r}; stderr: {proc.stderr.read()[-2000:]}")
    return line


def test_four_processes_lose_no_update_under_each_lock_kind(redis_server, redlock_nodes, etcd_server):
    """4 processes x 200 x (acquire, GET, SET+1, release) = exactly 800 under every lock kind
    that processes can share; the no-lock control in the same run must lose updates.
    (MemoryLock is in-process: test_dlock.py runs the same shape with threads.)"""
    import redis

    nodes = ",".join(f"{s.host}:{s.port}" for s in redlock_nodes)
    urls = {
        "control": "none",
        "redis": redis_server.url,
        "redlock": f"redlock://{nodes}",
        "etcd": f"etcd://{etcd_server.host}:{etcd_server.port}",
    }
    keys = {label: unique_name(f"counter-{label}") for label in urls}
    phases = [f"{label}={url}={keys[label]}" for label, url in urls.items()]
    procs = [_spawn("count", redis_server.url, "200", *phases) for _ in range(4)]
    counter = redis.Redis.from_url(redis_server.url)
    try:
        for label in urls:
            for proc in procs:
                _expect(proc, f"ready {label}", timeout=60)
            for proc in procs:  # start each phase together
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for proc in procs:
                _expect(proc, f"done {label}", timeout=120)
        for proc in procs:
            assert proc.wait(30) == 0
        counts = {label: int(counter.get(keys[label])) for label in urls}
        assert counts["control"] < 800, "the no-lock control lost no update: the test proves nothing"
        assert {k: v for k, v in counts.items() if k != "control"} == {"redis": 800, "redlock": 800, "etcd": 800}
    finally:
        counter.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()


@kinds
def test_a_frozen_holder_is_fenced_off_after_its_ttl(dlock_env, redis_server):
    """Redlock has no fencing token: there only the lock side (late release refused) is checked."""
    import redis

    name, resource_key = unique_name(), unique_name("resource")
    ttl = 0.5 if dlock_env.kind != "etcd" else 2
    fenced = ("--fenced", resource_key, redis_server.url) if dlock_env.fencing else ()
    holder = _spawn("hold", dlock_env.url, name, str(ttl), *fenced)
    counter = redis.Redis.from_url(redis_server.url)
    try:
        a_token = _expect(holder, "held").split()[1]
        holder.send_signal(signal.SIGSTOP)  # A freezes, holding the lock
        b = dlock_env.new(name, 10)
        started = time.monotonic()
        assert b.acquire(timeout=ttl + 2)
        assert time.monotonic() - started < ttl + 2
        resource = FencedResource(counter, resource_key)
        if fenced:
            a_token = int(a_token)
            assert b.token > a_token
            resource.write(b.token, "from B")
        else:
            assert a_token == "None" and b.token is None
        holder.send_signal(signal.SIGCONT)  # A wakes up, still believing it holds the lock
        holder.stdin.write("go\n")
        holder.stdin.flush()
        if fenced:
            assert _expect(holder, "stale") == "stale"  # its write is refused
        assert _expect(holder, "lost") == "lost"  # and its late release fails...
        assert holder.wait(20) == 0
        assert b.owned()  # ...without touching B's lock
        if fenced:
            assert resource.read() == (b"from B", b.token)
            with pytest.raises(StaleToken, match=f"refused token {a_token}"):
                resource.write(a_token, "late")
        b.release()
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            holder.wait()
        for stream in (holder.stdin, holder.stdout, holder.stderr):
            stream.close()
        counter.close()
