"""EtcdSession: one lease kept alive by one thread, shared by many EtcdLocks (Go's Session)."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dlock_support import etcd_post, unique_name

from patterns.dlock import EtcdLock, EtcdSession, FencedResource, LockError, LockLost, StaleToken


def _leases(endpoint):
    return {lease["ID"] for lease in etcd_post(endpoint, "/v3/lease/leases", {}).get("leases") or []}


def _spawn_holder(endpoint, name, ttl):
    """A process holding ``name`` through a session; prints "held <token>", then on a line from
    stdin releases and prints "released" or "lost"."""
    program = textwrap.dedent(
        f"""
        import sys
        from patterns.dlock import EtcdSession, LockLost
        with EtcdSession({endpoint!r}, {ttl}) as session:
            lock = session.lock({name!r})
            lock.acquire()
            print("held", lock.token, flush=True)
            sys.stdin.readline()
            try:
                lock.release()
                print("released", flush=True)
            except LockLost:
                print("lost", lock.lost.is_set(), flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    line = proc.stdout.readline().split()
    if not line or line[0] != "held":
        proc.kill()
        raise AssertionError(f"holder did not start: {line}, {proc.stderr.read()[-2000:]}")
    return proc, int(line[1])


def _finish(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()


def test_locks_of_a_session_share_one_lease_and_close_revokes_it(etcd_server):
    endpoint = etcd_server.endpoint
    before = _leases(endpoint)
    with EtcdSession(endpoint, 5) as session:
        assert session.lease is None  # granted at the first acquire, not before
        a, b = session.lock(unique_name()), session.lock(unique_name())
        tokens = []
        for _ in range(20):
            with a:
                with b:
                    tokens += [a.token, b.token]
        assert tokens == sorted(set(tokens))
        assert a.ttl == b.ttl == session.ttl == 5
        assert _leases(endpoint) - before == {session.lease}  # one lease for 40 holds
        a.acquire()
    assert session.lease is None and a.token is None  # close released a and revoked the lease
    probe = EtcdLock(endpoint, a.name, 5)
    assert not probe.locked()
    probe.close()
    assert _leases(endpoint) - before == set()
    with pytest.raises(LockError, match="closed"):
        session.lock("x")
    with pytest.raises(LockError, match="closed"):
        a.acquire()


def test_two_locks_of_one_session_on_one_name_exclude_each_other(etcd_server):
    name = unique_name()
    with EtcdSession(etcd_server.endpoint, 5) as session:
        threads, rounds = 4, 25
        locks = [session.lock(name) for _ in range(threads)]
        box = {"n": 0, "inside": 0, "overlap": 0}

        def work(lock):
            for _ in range(rounds):
                with lock:
                    box["inside"] += 1
                    if box["inside"] != 1:
                        box["overlap"] += 1
                    n = box["n"]
                    time.sleep(0)
                    box["n"] = n + 1
                    box["inside"] -= 1

        workers = [threading.Thread(target=work, args=(lock,)) for lock in locks]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert box == {"n": threads * rounds, "inside": 0, "overlap": 0}
        first = locks[0]
        first.acquire()
        assert not locks[1].acquire(blocking=False)  # same lease, same name: still a waiter
        first.release()


def test_the_session_keeps_a_hold_alive_past_its_ttl_without_extend(etcd_server):
    with EtcdSession(etcd_server.endpoint, 1) as session:
        lock = session.lock(unique_name())
        other = EtcdLock(etcd_server.endpoint, lock.name, 1)
        try:
            lock.acquire()
            time.sleep(3.5)  # etcd keeps a 1 s lease about 2 s: well past it
            assert lock.owned() and not lock.lost.is_set()
            assert not other.acquire(blocking=False)
            lock.release()
            assert other.acquire(timeout=2)
            other.release()
        finally:
            other.close()


def test_a_lease_gone_under_the_session_marks_its_holds_lost_and_the_next_acquire_recovers(etcd_server):
    endpoint = etcd_server.endpoint
    calls = []
    with EtcdSession(endpoint, 1) as session:
        lock = session.lock(unique_name(), on_lost=calls.append)
        lock.acquire()
        lease = session.lease
        etcd_post(endpoint, "/v3/lease/revoke", {"ID": lease})  # as if it had expired
        assert lock.lost.wait(3)  # the keep-alive thread (every ttl/3) found it gone
        assert calls == [lock]
        with pytest.raises(LockLost):
            lock.release()
        assert lock.acquire(timeout=2)  # a new lease for a new hold
        assert session.lease not in (None, lease)
        lock.release()


def test_a_lease_expired_while_the_process_slept_is_replaced_at_acquire(etcd_server):
    """The acquire finds the lease gone before the keep-alive thread does: it takes a new one."""
    endpoint = etcd_server.endpoint
    with EtcdSession(endpoint, 5) as session:
        lock = session.lock(unique_name())
        with lock:
            pass
        old = session.lease
        etcd_post(endpoint, "/v3/lease/revoke", {"ID": old})
        with lock:  # the create fails on the dead lease, then succeeds on a new one
            assert session.lease != old
        assert lock.token is None


def test_a_killed_holders_session_lets_a_waiter_in_within_ttl_plus_one_second(etcd_server):
    ttl = 2
    name = unique_name()
    holder, _ = _spawn_holder(etcd_server.endpoint, name, ttl)
    try:
        with EtcdSession(etcd_server.endpoint, ttl) as session:
            waiter = session.lock(name)
            holder.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            assert waiter.acquire(timeout=ttl + 3)
            assert time.monotonic() - killed < ttl + 1
            waiter.release()
    finally:
        _finish(holder)


def test_a_frozen_holder_loses_its_hold_and_is_fenced_off(etcd_server, redis_server):
    import redis

    ttl = 2
    name = unique_name()
    client = redis.Redis.from_url(redis_server.url)
    resource = FencedResource(client, "fenced-" + name)
    holder, token = _spawn_holder(etcd_server.endpoint, name, ttl)
    try:
        holder.send_signal(signal.SIGSTOP)  # its keep-alive thread freezes with it
        with EtcdSession(etcd_server.endpoint, ttl) as session:
            lock = session.lock(name)
            assert lock.acquire(timeout=ttl + 4)
            assert lock.token > token
            resource.write(lock.token, "from B")
            holder.send_signal(signal.SIGCONT)
            with pytest.raises(StaleToken):
                resource.write(token, "from A, late")
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline().split() == ["lost", "True"]
            assert lock.owned()  # A's late release did not touch B's hold
            lock.release()
    finally:
        holder.send_signal(signal.SIGCONT)
        _finish(holder)
        client.close()


def test_bad_arguments_are_refused_before_anything_is_made(etcd_server):
    with pytest.raises(ValueError, match="ttl must be > 0 seconds, got 0"):
        EtcdSession(etcd_server.endpoint, 0)
    with pytest.raises(ValueError, match="endpoint must be an http"):
        EtcdSession("127.0.0.1:2379", 5)
    with pytest.raises(ValueError, match="request_timeout"):
        EtcdSession(etcd_server.endpoint, 5, request_timeout=-1)
    with EtcdSession(etcd_server.endpoint, 0.2) as session:
        assert session.ttl == 1
        with pytest.raises(ValueError, match="name"):
            session.lock("")
        with pytest.raises(ValueError, match="timeout"):
            session.lock("x", timeout=-1)
        assert session.lease is None  # nothing was granted by the refusals


@pytest.mark.parametrize("with_lease", [True, False], ids=["lease", "lease-gone"])
def test_a_dropped_session_stops_its_thread(etcd_server, with_lease):
    session = EtcdSession(etcd_server.endpoint, 1)
    lock = session.lock(unique_name())
    lock.acquire()
    lock.release()
    keeper = session._keeper
    assert keeper is not None and keeper.is_alive()
    lease = session.lease
    if not with_lease:  # the keeper then idles with no lease: it must not pin the session
        session._lease_gone(lease, "given up by the test")
    del session, lock
    keeper.join(3)  # the thread holds only a weak reference: it ends at its next tick
    assert not keeper.is_alive()
    etcd_post(etcd_server.endpoint, "/v3/lease/revoke", {"ID": lease})


# -- the asyncio twin ------------------------------------------------------------------------------


def test_async_session_shares_one_lease_serves_waiters_and_revokes_at_close(etcd_server):
    from patterns.dlock.aio import AsyncEtcdSession

    endpoint = etcd_server.endpoint
    before = _leases(endpoint)
    name = unique_name()

    async def main():
        async with AsyncEtcdSession(endpoint, 5) as session:
            locks = [session.lock(name) for _ in range(4)]
            box = {"n": 0, "inside": 0, "overlap": 0}

            async def work(lock):
                for _ in range(10):
                    async with lock:
                        box["inside"] += 1
                        box["overlap"] += box["inside"] != 1
                        n = box["n"]
                        await asyncio.sleep(0)
                        box["n"] = n + 1
                        box["inside"] -= 1

            await asyncio.gather(*(work(lock) for lock in locks))
            assert box == {"n": 40, "inside": 0, "overlap": 0}
            assert _leases(endpoint) - before == {session.lease}
            await locks[0].acquire()
        assert session.lease is None
        with pytest.raises(LockError, match="closed"):
            session.lock("x")

    asyncio.run(main())
    assert _leases(endpoint) - before == set()


def test_async_session_keeps_holds_alive_and_reports_a_lost_lease(etcd_server):
    from patterns.dlock.aio import AsyncEtcdSession

    endpoint = etcd_server.endpoint
    calls = []

    async def main():
        async with AsyncEtcdSession(endpoint, 1) as session:
            lock = session.lock(unique_name(), on_lost=calls.append)
            await lock.acquire()
            await asyncio.sleep(3.2)  # past the lease's ttl: the keep-alive task renewed it
            assert await lock.owned()
            etcd_post(endpoint, "/v3/lease/revoke", {"ID": session.lease})
            await asyncio.wait_for(lock.lost.wait(), 3)
            assert calls == [lock]
            with pytest.raises(LockLost):
                await lock.release()
            assert await lock.acquire(timeout=2)  # a new lease
            await lock.release()

    asyncio.run(main())


# -- races between the keep-alive thread and acquires ----------------------------------------------


def test_an_acquire_that_lands_on_a_lease_the_session_gave_up_takes_a_new_one(etcd_server, monkeypatch):
    endpoint = etcd_server.endpoint
    with EtcdSession(endpoint, 5) as session:
        lock = session.lock(unique_name())
        real, abandoned = EtcdLock._try_acquire, []

        def racing(self, blocking, deadline):  # the keeper gives the lease up just as we got it
            got = real(self, blocking, deadline)
            if not abandoned:
                abandoned.append(self._lease)
                session._lease_gone(self._lease, "given up by the test")
            return got

        monkeypatch.setattr(EtcdLock, "_try_acquire", racing)
        assert lock.acquire()
        assert session.lease not in (None, abandoned[0])  # the hold is on a lease that is kept
        assert lock.owned() and not lock.lost.is_set()
        lock.release()
    etcd_post(endpoint, "/v3/lease/revoke", {"ID": abandoned[0]})


def test_a_lease_given_up_before_the_hold_counts_as_held_reports_it_lost(etcd_server, monkeypatch):
    """The sweep skips a lock not yet held; the lock then checks the lease itself."""
    endpoint = etcd_server.endpoint
    with EtcdSession(endpoint, 5) as session:
        calls = []
        name = unique_name()
        lock = session.lock(name, on_lost=calls.append)
        real, abandoned = EtcdLock._acquire_impl, []

        def late(self, blocking, deadline):
            got = real(self, blocking, deadline)
            abandoned.append(self._lease)
            session._lease_gone(self._lease, "given up by the test")  # lock._held is still False
            return got

        monkeypatch.setattr(EtcdLock, "_acquire_impl", late)
        assert lock.acquire()
        assert lock.lost.is_set() and calls == [lock]
        with pytest.raises(LockLost):
            lock.owned()
        lock.close()
        lock = session.lock(name)  # a closed lock refuses acquire: a new object for the same name
        ran = []
        with pytest.raises(LockLost, match="lost as it was acquired"):
            with lock:  # the same race under `with`: the body must not run
                ran.append(True)
        assert ran == [] and not lock._held
    for lease in abandoned:
        etcd_post(endpoint, "/v3/lease/revoke", {"ID": lease})


def test_locks_made_while_the_session_sweeps_a_lease_do_not_break_the_sweep(etcd_server):
    with EtcdSession(etcd_server.endpoint, 5) as session:
        made, stop = [], threading.Event()

        def make():
            while not stop.is_set() and len(made) < 20_000:
                made.append(session.lock("sweep"))

        threads = [threading.Thread(target=make) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(300):  # raised "Set changed size during iteration" before the fix
                session._lease_gone("0", "no such lease")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert len(session._locks) == len(made)


def test_the_gateway_keeps_its_connection_above_descriptor_1024(etcd_server):
    """select.select refuses descriptors >= 1024: the idle check must not drop every connection."""
    pipes = [os.pipe() for _ in range(540)]
    lock = EtcdLock(etcd_server.endpoint, unique_name(), 5)
    try:
        lock.acquire()
        lock.release()
        (conn,) = lock._gateway._idle
        assert conn.sock.fileno() >= 1024
        for _ in range(3):
            lock.acquire()
            lock.release()
        assert lock._gateway._idle == [conn]  # the same connection, kept alive
    finally:
        lock.close()
        for read, write in pipes:
            os.close(read)
            os.close(write)


def test_async_acquire_that_lands_on_a_lease_the_session_gave_up_takes_a_new_one(etcd_server, monkeypatch):
    from patterns.dlock.aio import AsyncEtcdLock, AsyncEtcdSession

    endpoint = etcd_server.endpoint
    abandoned = []

    async def main():
        async with AsyncEtcdSession(endpoint, 5) as session:
            lock = session.lock(unique_name())
            real = AsyncEtcdLock._try_acquire

            async def racing(self, blocking, deadline):
                got = await real(self, blocking, deadline)
                if not abandoned:
                    abandoned.append(self._lease)
                    await session._lease_gone(self._lease, "given up by the test")
                return got

            monkeypatch.setattr(AsyncEtcdLock, "_try_acquire", racing)
            assert await lock.acquire()
            assert session.lease not in (None, abandoned[0])
            assert await lock.owned() and not lock.lost.is_set()
            await lock.release()

    asyncio.run(main())
    etcd_post(endpoint, "/v3/lease/revoke", {"ID": abandoned[0]})


# -- a slow etcd and a long wait ------------------------------------------------------------------


def test_a_slow_etcd_is_not_taken_for_a_lost_lease(etcd_server):
    """Every reply 0.8 s late, ttl 2 s: each keep-alive reaches etcd in time and its reply comes
    within the lease's life, so nothing is lost (a keep-alive that gave up after ttl/3, 0.67 s,
    reported the lease lost within about 3.5 s)."""
    from servers import DelayProxy

    proxy = DelayProxy(etcd_server.host, etcd_server.port, 0.8)
    try:
        with EtcdSession(f"http://{proxy.host}:{proxy.port}", 2) as session:
            lock = session.lock(unique_name())
            assert lock.acquire(timeout=10)
            assert not lock.lost.wait(5)
            lock.release()
    finally:
        proxy.stop()


def test_a_session_waiter_watches_instead_of_polling(etcd_server):
    """A waiter sends a look every ttl/3 at most while it waits (it once spun on its txn)."""
    with EtcdSession(etcd_server.endpoint, 3) as session:
        holder, waiter = session.lock(unique_name()), None
        holder.acquire()
        waiter = session.lock(holder.name)
        requests = []
        post = waiter._post
        waiter._post = lambda path, body, **kw: (requests.append(path), post(path, body, **kw))[1]
        got = []
        thread = threading.Thread(target=lambda: got.append(waiter.acquire(timeout=10)))
        thread.start()
        time.sleep(2.5)  # more than ttl/3 of waiting
        holder.release()
        thread.join()
        assert got == [True]
        assert len(requests) <= 8, requests  # create + a look each ttl/3, not thousands
        waiter.release()


def test_async_session_behind_a_slow_etcd_keeps_its_hold(etcd_server):
    from servers import DelayProxy

    from patterns.dlock.aio import AsyncEtcdSession

    proxy = DelayProxy(etcd_server.host, etcd_server.port, 0.8)

    async def main():
        async with AsyncEtcdSession(f"http://{proxy.host}:{proxy.port}", 2) as session:
            lock = session.lock(unique_name())
            assert await lock.acquire(timeout=10)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(lock.lost.wait(), 5)
            await lock.release()

    try:
        asyncio.run(main())
    finally:
        proxy.stop()
