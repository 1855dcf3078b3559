"""Shared helpers: interpreter facts, a runner that starts threads together, stress scaling."""

import contextlib
import faulthandler
import os
import signal
import sys
import sysconfig
import threading
import time

import pytest

# The Ctrl-C tests need SIGINT to raise KeyboardInterrupt, here and in the interpreters they
# start.  A shell that runs `make test &` without job control starts it with SIGINT ignored,
# and Python then installs no handler (CPython keeps an inherited SIG_IGN); every Ctrl-C test
# failed that way once.  Installing the default handler here also gives child processes the
# default disposition again (exec resets handled signals, not ignored ones).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: True on a free-threaded build (3.13t, 3.14t), whether or not the GIL was re-enabled.
FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
#: True when threads really run Python in parallel right now.
GIL_DISABLED = FREE_THREADED_BUILD and not sys._is_gil_enabled()

#: True under ThreadSanitizer (`make tsan`): everything runs 5-20 times slower there.
TSAN_BUILD = "-fsanitize=thread" in (sysconfig.get_config_var("PY_CFLAGS") or "")
#: Loop counts of the stress tests are multiplied by this (FTSYNC_STRESS_SCALE; `make tsan`
#: sets it below 1 so the slow, instrumented run keeps its time bound).  Never below one round.
STRESS_SCALE = float(os.environ.get("FTSYNC_STRESS_SCALE", "1"))


def stress_rounds(n: int) -> int:
    """``n`` scaled by FTSYNC_STRESS_SCALE, at least 1: how many times a stress loop runs."""
    return max(1, round(n * STRESS_SCALE))


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def wrap64(value: int) -> int:
    """Two's-complement wrap to int64, the model of the C arithmetic."""
    return (value - INT64_MIN) % 2**64 + INT64_MIN


def run_threads(count, target, *args):
    """Run ``target(index, *args)`` in ``count`` threads released together; re-raise a failure."""
    barrier = threading.Barrier(count)
    errors = []

    def body(index):
        try:
            barrier.wait()
            target(index, *args)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def pytest_report_header(config):
    return f"free-threaded build: {FREE_THREADED_BUILD}, GIL enabled: {sys._is_gil_enabled() if hasattr(sys, '_is_gil_enabled') else True}"


_real_stderr_fd = 2


def pytest_configure(config):
    """Keep a handle on the real stderr (pytest captures fd 2 while tests run): the watchdog's
    stack dump must reach the CI log, not a capture file that dies with the process."""
    global _real_stderr_fd
    _real_stderr_fd = os.dup(2)


def arm_watchdog(seconds: float) -> None:
    """A hang detector: if still running ``seconds`` from now, dump every thread's stack to the
    real stderr and end the process, so a deadlock fails the run (with the evidence) instead of
    hanging CI.  Under TSan, where everything is slower, the bound is ten times longer.
    ``faulthandler.cancel_dump_traceback_later()`` disarms it."""
    faulthandler.dump_traceback_later(seconds * (10 if TSAN_BUILD else 1), exit=True, file=_real_stderr_fd)


@contextlib.contextmanager
def hang_watchdog(seconds: float):
    """``arm_watchdog(seconds)`` for the block."""
    arm_watchdog(seconds)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def watchdog():
    """``watchdog(seconds)`` arms :func:`arm_watchdog` for the rest of the test."""
    yield arm_watchdog
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Every test leaves the threads as it found them.

    Short-lived helpers (an after_func thread, a signal's cancel thread) get a few seconds to
    end; the shared deadline thread of patterns.context is a service that lives while any
    deadline is pending, and has its own test.
    """
    before = set(threading.enumerate())
    yield
    give_up = time.monotonic() + 5
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.name != "ftsync-deadlines"]
        if not extra or time.monotonic() > give_up:
            break
        extra[0].join(0.05)
    assert not extra, f"threads left running: {extra}"


def pytest_collection_modifyitems(items):
    """Mark the tests that start real servers, so wheel builders can deselect them (-m "not servers")."""
    for item in items:
        if any(name.startswith(("redis_server", "etcd_server", "redis_cluster", "redlock_nodes")) for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session; tests use distinct key names."""
    from servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_servers(tmp_path_factory):
    """Start fresh redis-servers on demand (``redis_servers(3)``), for fault tests; all stopped after."""
    from servers import RedisServer

    started = []

    def start(count=1, persist=False):
        servers = [RedisServer(tmp_path_factory.mktemp("redis-node"), persist=persist) for _ in range(count)]
        for server in servers:
            server.start()
            started.append(server)
        return servers

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    """One single-member etcd for the session."""
    from servers import EtcdServer

    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_servers(tmp_path_factory):
    """Start fresh single-member etcds on demand (``etcd_servers(1)``), for fault tests."""
    from servers import EtcdServer

    started = []

    def start(count=1):
        servers = [EtcdServer(tmp_path_factory.mktemp("etcd-node")) for _ in range(count)]
        for server in servers:
            server.start()
            started.append(server)
        return servers

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A Redis Cluster of three masters (``cluster-enabled yes``, ``redis-cli --cluster create``)."""
    from servers import RedisCluster

    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fault_proxy():
    """``fault_proxy(host, port)``: a tests/faults.FaultProxy in front of a server; all closed after."""
    from faults import FaultProxy

    made = []

    def make(host, port):
        proxy = FaultProxy(host, port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture(scope="session")
def redlock_nodes(tmp_path_factory):
    """Three independent redis-servers for the Redlock tests that do not kill nodes."""
    from servers import RedisServer

    servers = [RedisServer(tmp_path_factory.mktemp("redlock-node")) for _ in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def dlock_env(request):
    """A lock backend by kind (parametrize indirectly): .url, .new(name, ttl, **kw) and
    .delete(name) (remove a hold by hand).  Locks made by .new are closed after the test."""
    from dlock_support import DlockEnv

    env = DlockEnv(request.param, request)
    yield env
    env.close()
