"""Redlock: one lock over N independent Redis nodes, held when a majority agrees.

The algorithm as the Redis documentation gives it: take ``SET name value NX PX ttl`` on every node
in parallel, bounded by ``node_timeout`` so a frozen node cannot stall the caller.  A round writes
its command to a connected socket of every node, then waits for the replies together until the
round's deadline (a node that has not answered by then is counted as failed and its connection
dropped, so a late reply can never be read by a later command).  A node without a connected
socket is connected in a short-lived helper thread, bounded by the same budget, so a frozen node's
connect or handshake never delays the others.  The lock keeps its own connections, made from
each client's settings (host, port, auth, TLS, db) but with no retry policy: a round is one
attempt per node.  A node that did not answer is contacted last in the next round, and that
round stops waiting for it as soon as its answer could no longer change the outcome (while a
connect to it is still in flight, a round waits for that one instead of starting another).
Every client needs a ``socket_timeout``; the lock is held when at least
``N // 2 + 1`` nodes said yes and the validity left, ``ttl - elapsed - drift`` (drift = 1% of ttl
+ 2 ms, all on the monotonic clock), is positive.  Otherwise the value is deleted from every node
that said yes (compare-and-delete, so no partial hold is left; a silent node's late SET ends
with its ttl) and, when blocking, tried again after a random delay, the last round ending by
``timeout + node_timeout``.  ``extend()`` succeeds on a quorum; ``owned()`` asks for a quorum and
for validity left; ``release()`` raises QuorumNotReached when too few nodes answer.

**No fencing token**: ``token`` is always None.  Nodes are independent, so there is no counter
that all owners share, and a holder that pauses past its ttl cannot be stopped by the resource.
Use Redlock for efficiency (avoid doing work twice); when correctness depends on the lock, use
EtcdLock (or RedisLock's token) and a resource that checks fencing tokens.

``acquire()`` raises QuorumNotReached when fewer than a quorum of nodes *answer* (as opposed to
answering "held by someone else", which is an ordinary False or wait): at once for a non-blocking
call, at the deadline for a timed one, and after ``unreachable_tries`` attempts in a row for an
untimed one, so a dead majority is reported instead of waited on forever.  ``extend()`` and
``owned()`` (and ``release()``) raise it too when too few nodes answer to tell whether the hold is still ours (they
do not guess "lost"); the renewal thread of ``auto_renew`` retries such rounds until the hold's
validity runs out, and only then marks it lost.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from typing import Any, Callable, Sequence

from . import _redlock_core as core
from ._base import DistributedLock
from ._errors import LockError
from ._redis_core import describe_client, is_cluster

__all__ = ["Redlock"]


def _failures() -> tuple[type[BaseException], ...]:
    import redis.exceptions as rex

    return (rex.ConnectionError, rex.TimeoutError, OSError)


class _Call:
    """One node's command sent from a connect thread; the round reads the outcome when woken."""

    __slots__ = ("answer", "value", "abandoned", "lock")

    def __init__(self) -> None:
        self.answer: str | None = None
        self.value: Any = None
        self.abandoned = False
        self.lock = threading.Lock()


class _Node:
    """One Redis node: its client's settings and the lock's own idle connections to it.

    A Redis Cluster client is one node too: the master that owns the lock key's slot.  When a
    reply says the slot has moved (MOVED), the node follows it: later connections go to the new
    owner and the idle ones to the old owner are dropped.
    """

    def __init__(self, client: Any, key: str) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client = client
        self.label = describe_client(client)
        if is_cluster(client):
            owner = client.get_node_from_key(key)
            pool = owner.redis_connection.connection_pool
        else:
            pool = client.connection_pool
        self._class = pool.connection_class
        self._kwargs = dict(pool.connection_kwargs)
        self._kwargs["retry"] = Retry(NoBackoff(), 0)  # one attempt per round: never retry inside it
        self.socket_timeout = self._kwargs.get("socket_timeout")
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.connecting = 0  # connect threads in flight
        self.listeners: set[int] = set()  # wake fds of rounds waiting for one of them to end
        self.suspect = False

    def take(self) -> Any:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def give(self, conn: Any) -> None:
        with self._lock:
            here = (getattr(conn, "host", None), getattr(conn, "port", None))  # None, None: a unix socket
            if here == (self._kwargs.get("host"), self._kwargs.get("port")):
                self._idle.append(conn)
                return
        conn.disconnect()  # to a cluster master that no longer owns the key's slot

    def new_connection(self) -> Any:
        with self._lock:
            return self._class(**self._kwargs)

    def redirected(self, exc: BaseException) -> str | None:
        """If ``exc`` is a cluster's redirection, why this node gave no answer (following a MOVED
        to the slot's new owner); None for an ordinary error reply, which is an answer (NO)."""
        import redis.exceptions as rex

        if isinstance(exc, rex.MovedError):
            with self._lock:
                self._kwargs["host"], self._kwargs["port"] = exc.host, exc.port
                idle, self._idle = self._idle, []
            for conn in idle:
                conn.disconnect()
            return f"the key's slot moved to {exc.host}:{exc.port}"
        if isinstance(exc, (rex.AskError, rex.TryAgainError, rex.ClusterDownError)):
            return f"the cluster could not serve the key's slot now ({exc})"
        return None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()


def _answer(value: Any) -> str:
    return core.YES if value else core.NO


class Redlock(core.RedlockHold, DistributedLock):
    """A lock over independent Redis nodes (see DistributedLock for the methods; ``token`` is None).

    ``clients``: one ``redis.Redis`` per node, distinct nodes, each with a ``socket_timeout``
    (ValueError otherwise); a ``redis.cluster.RedisCluster`` is one node, served by the master of
    the key's slot (a MOVED reply is followed within the round); ``node_timeout``: how long one round waits for the nodes (default:
    ttl/10, at least 0.05 s, at most 0.2 s), connecting included; ``retry_delay``: the most a
    blocking acquire sleeps between rounds (random, default 0.1 s).  ``close()`` closes the
    clients when the lock created them (``lock_from_url``).
    """

    quorum, node_timeout, validity = core.RedlockHold.quorum, core.RedlockHold.node_timeout, core.RedlockHold.validity

    def __init__(self, clients: Sequence[Any], name: str, ttl: float, *, timeout: float | None = None,
                 auto_renew: bool = False, on_lost: Callable[[DistributedLock], object] | None = None,
                 node_timeout: float | None = None, retry_delay: float = 0.1, unreachable_tries: int = 3,
                 owns_clients: bool = False) -> None:
        clients = core.check_options(clients, "redis.Redis", need_socket_timeout=True)
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self._set_options(len(clients), node_timeout, retry_delay, unreachable_tries, owns_clients)
        self._clients = clients
        self._nodes = [_Node(client, self._name) for client in clients]
        import hashlib

        self._scripts = {
            kind: (hashlib.sha1(source.encode()).hexdigest(), source)  # noqa: S324 - Redis names scripts by SHA-1
            for kind, source in core.SCRIPTS.items()
        }
        self._closed = False

    # -- fan-out ----------------------------------------------------------------------------

    def _on_all(self, script: str, args: list[Any], *, budget: float | None = None,
                only: list[int] | None = None) -> core.Tally:
        """Run one script on every node (or the nodes ``only``) at once, within the budget."""
        sha, source = self._scripts[script]
        keys = [self._name]
        return self._round(("EVALSHA", sha, len(keys), *keys, *args), ("EVAL", source, len(keys), *keys, *args),
                           budget=budget, only=only)

    def _round(self, command: tuple[Any, ...], fallback: tuple[Any, ...] | None = None, *,
               budget: float | None = None, only: list[int] | None = None) -> core.Tally:
        """Send ``command`` to the nodes, then collect the answers until the round may stop.

        ``fallback`` is sent instead on a connection that answers NOSCRIPT (a node that
        restarted or had its script cache flushed).
        """
        import redis.exceptions as rex

        if self._closed:
            raise LockError(f"{self._name!r}: this Redlock is closed")
        failures = _failures()
        budget = self._round_budget(budget)
        deadline = time.monotonic() + budget
        nodes = self._nodes
        count = len(nodes)
        answers: list[str | None] = [None] * count
        problems = [""] * count
        targets = range(count) if only is None else only
        for index in range(count):
            if index not in targets:
                answers[index] = core.NO
        suspects = {i for i in targets if nodes[i].suspect}
        order = [i for i in targets if i not in suspects] + sorted(suspects)
        selector = selectors.DefaultSelector()
        sent: dict[int, Any] = {}
        calls: dict[int, _Call] = {}
        parked: set[int] = set()  # silent nodes whose earlier connect is still in flight
        redirected: set[int] = set()  # cluster nodes whose key's slot moved during this round
        wake = [-1, -1]

        def wake_fd() -> int:
            if wake[0] < 0:
                wake[0], wake[1] = os.pipe()
                os.set_blocking(wake[0], False)
                selector.register(wake[0], selectors.EVENT_READ, None)
            return wake[1]

        def contact(index: int) -> None:
            node = nodes[index]
            conn = node.take()
            if conn is not None:
                try:
                    conn.send_command(*command)
                    selector.register(conn._sock, selectors.EVENT_READ, index)
                    sent[index] = conn
                except failures as exc:
                    conn.disconnect()
                    answers[index], problems[index] = core.SILENT, str(exc) or type(exc).__name__
                return
            fd = wake_fd()
            with node._lock:
                busy = node.suspect and node.connecting > 0
                if busy:  # do not pile connects on a silent node: wait for the one in flight
                    node.listeners.add(fd)
                else:
                    node.connecting += 1
            if busy:
                parked.add(index)
                return
            call = calls[index] = _Call()
            threading.Thread(
                target=self._connect_and_send, args=(node, call, command, fallback, deadline, fd),
                name=f"ftsync-redlock-connect:{node.label}", daemon=True,
            ).start()

        try:
            for index in order:
                contact(index)
            while not core.may_stop(answers, suspects, self._quorum):
                remaining = deadline - time.monotonic()
                ready = selector.select(max(0.0, remaining))
                for key, _events in ready:
                    index = key.data
                    if index is None:  # a connect thread finished
                        try:
                            os.read(wake[0], 64)
                        except BlockingIOError:
                            pass
                        for i, call in calls.items():
                            if answers[i] is None and call.answer is not None:
                                answers[i] = call.answer
                                if call.answer == core.SILENT:
                                    problems[i] = str(call.value)
                        for i in list(parked):
                            node = nodes[i]
                            if node.connecting == 0 or node._idle:
                                parked.discard(i)
                                with node._lock:
                                    node.listeners.discard(wake[1])
                                contact(i)
                        continue
                    conn = sent[index]
                    selector.unregister(key.fileobj)
                    try:
                        try:
                            value = conn.read_response()
                        except rex.NoScriptError:
                            if fallback is None:
                                raise
                            conn.send_command(*fallback)
                            value = _read_within(conn, deadline - time.monotonic())
                        answers[index] = _answer(value)
                    except rex.ResponseError as exc:
                        moved = nodes[index].redirected(exc)
                        if moved is None:
                            answers[index] = core.NO
                        elif index not in redirected and time.monotonic() < deadline:
                            redirected.add(index)  # ask the slot's new owner, once per round
                            sent.pop(index)
                            nodes[index].give(conn)
                            contact(index)
                        else:
                            answers[index], problems[index] = core.SILENT, moved
                    except failures as exc:
                        conn.disconnect()
                        sent.pop(index)
                        answers[index], problems[index] = core.SILENT, str(exc) or type(exc).__name__
                if not ready and remaining <= 0:
                    break
        finally:
            selector.close()
            for index, conn in sent.items():
                if answers[index] is None:
                    conn.disconnect()  # a late reply must never be read by a later command
                else:
                    nodes[index].give(conn)
            for index in parked:
                with nodes[index]._lock:
                    nodes[index].listeners.discard(wake[1])
                if answers[index] is None:
                    problems[index] = "its earlier connect is still in flight"
            for index, call in calls.items():
                with call.lock:
                    if answers[index] is None and call.answer is not None:
                        answers[index] = call.answer
                    call.abandoned = True
            if wake[0] >= 0:
                os.close(wake[0])
                os.close(wake[1])
        tally = core.tally_of(answers, problems, [node.label for node in nodes], budget)
        for index in targets:
            nodes[index].suspect = tally.answers[index] == core.SILENT
        return tally

    def _connect_and_send(self, node: _Node, call: _Call, command: tuple[Any, ...],
                          fallback: tuple[Any, ...] | None, deadline: float, wake: int) -> None:
        """A helper thread: connect to ``node``, then, if the round's budget is not spent, send and
        read the answer within it.  The connect itself may take up to the client's socket_timeout
        (the round does not wait for it past its budget): a slow node's late connection is kept
        for the next round, with nothing sent late on it."""
        import redis.exceptions as rex

        conn = node.new_connection()
        answer, value, keep = core.SILENT, "no answer", False
        try:
            left = max(0.001, deadline - time.monotonic())
            patience = max(left, min(node.socket_timeout or left, 2.0))
            conn.socket_connect_timeout = patience
            conn.socket_timeout = patience
            conn.connect()
            conn.socket_timeout = node.socket_timeout
            if conn._sock is not None:
                conn._sock.settimeout(node.socket_timeout)
            if time.monotonic() >= deadline:
                keep, value = True, "connected only after the round's budget"
            else:
                conn.send_command(*command)
                try:
                    value = _read_within(conn, deadline - time.monotonic())
                except rex.NoScriptError:
                    if fallback is None:
                        raise
                    conn.send_command(*fallback)
                    value = _read_within(conn, deadline - time.monotonic())
                answer = _answer(value)
        except rex.ResponseError as exc:
            moved = node.redirected(exc)
            if moved is None:
                answer = core.NO
            else:  # the next round asks the slot's new owner
                answer, value, keep = core.SILENT, moved, True
        except Exception as exc:  # noqa: BLE001 - reported as this node's failure
            conn.disconnect()
            answer, value = core.SILENT, str(exc) or type(exc).__name__
        with call.lock:  # the round closes its wake fd only after marking the call abandoned
            call.answer, call.value = answer, value
            if answer != core.SILENT or keep:
                node.give(conn)
                if call.abandoned:
                    node.suspect = False  # it answered after all: wait for it again next round
            if not call.abandoned:
                try:
                    os.write(wake, b"x")
                except OSError:
                    pass
        with node._lock:
            node.connecting -= 1
            for fd in node.listeners:  # rounds waiting for this connect: they may go on now
                try:
                    os.write(fd, b"x")
                except OSError:
                    pass

    # -- backend hooks ----------------------------------------------------------------------

    def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        retries = core.Retries(self, deadline)
        while True:
            args, budget = self._acquire_try(deadline)
            tally = self._on_all("acquire", args, budget=budget)
            if self._acquire_answered(tally):
                return True
            yes = tally.said_yes()
            if yes:  # no partial hold is left behind (a silent node's late SET expires with the ttl)
                self._on_all("release", args[:1], only=yes,
                             budget=core.round_budget(self._node_timeout, deadline, time.monotonic()))
            pause = retries.pause(tally)
            if pause is None:
                return False
            time.sleep(pause)

    def _release_impl(self) -> bool:
        value, self._value = self._value, None
        valid = time.monotonic() < self._valid_until
        return self._release_answered(self._on_all("release", [value]), valid)

    def _extend_impl(self, ttl: float, budget: float | None = None) -> bool:
        started = time.monotonic()
        tally = self._on_all("extend", [self._value, max(1, int(round(ttl * 1000)))], budget=budget)
        return self._extend_answered(tally, ttl, started)

    def _renew_impl(self, ttl: float, budget: float) -> bool:
        return self._extend_impl(ttl, budget)

    def _owned_impl(self) -> bool:
        return self._still_valid() and self._owned_answered(self._on_all("owned", [self._value]))

    def _locked_impl(self) -> bool:
        return self._round(("EXISTS", self._name)).agreed

    def _forget_impl(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            try:
                self._on_all("release", [value])
            except LockError:
                pass

    def _close_impl(self) -> None:
        self._closed = True
        for node in self._nodes:
            node.close()
        if self._owns_clients:
            for client in self._clients:
                client.close()


def _read_within(conn: Any, seconds: float) -> Any:
    """Read one reply, waiting at most ``seconds`` (the connection's own timeout is restored)."""
    sock = conn._sock
    if sock is None:
        return conn.read_response()
    sock.settimeout(max(0.001, seconds))
    try:
        return conn.read_response()
    finally:
        if conn._sock is sock:
            sock.settimeout(conn.socket_timeout)
