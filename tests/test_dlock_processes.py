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


def _run_counters(lock_url, name, counter_url, key, iterations, *flags):
    procs = [_spawn("count", lock_url, name, counter_url, key, str(iterations), *flags) for _ in range(4)]
    try:
        for proc in procs:
            _expect(proc, "ready")
        for proc in procs:  # start together
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            _expect(proc, "done", timeout=60)
            assert proc.wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            proc.stderr.close()


@kinds
def test_four_processes_lose_no_update_under_the_lock(dlock_env, redis_server):
    import redis

    counter = redis.Redis.from_url(redis_server.url)
    try:
        name, control_key, locked_key = unique_name(), unique_name("control"), unique_name("counter")
        _run_counters(dlock_env.url, name, redis_server.url, control_key, 200, "--no-lock")
        control = int(counter.get(control_key))
        assert control < 800, "the no-lock control lost no update: the test proves nothing"
        _run_counters(dlock_env.url, name, redis_server.url, locked_key, 200)
        assert int(counter.get(locked_key)) == 800
    finally:
        counter.close()


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
