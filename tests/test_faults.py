"""The fault-injection layer does what the fault tests rely on (tests/faults.py, tests/servers.py)."""

import socket
import time

import pytest

from faults import bounded, timed


def _ask(host, port, payload=b"PING\r\n", timeout=1.0):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(64)


def test_proxy_forwards_stalls_and_heals(redis_servers, fault_proxy):
    (server,) = redis_servers(1)
    proxy = fault_proxy(server.host, server.port)
    sock = socket.create_connection((proxy.host, proxy.port), timeout=1.0)
    try:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"
        proxy.stall()
        sock.sendall(b"PING\r\n")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(64)  # silence, not a reset
        proxy.heal()
        sock.settimeout(1.0)
        assert sock.recv(64) == b"+PONG\r\n"  # held back, then delivered
    finally:
        sock.close()


def test_proxy_cut_resets_and_refuses(redis_servers, fault_proxy):
    (server,) = redis_servers(1)
    proxy = fault_proxy(server.host, server.port)
    sock = socket.create_connection((proxy.host, proxy.port), timeout=1.0)
    try:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"
        proxy.cut()
        with pytest.raises(OSError):
            for _ in range(3):
                sock.sendall(b"PING\r\n")
                if not sock.recv(64):
                    raise ConnectionResetError("closed")
                time.sleep(0.05)
    finally:
        sock.close()
    with pytest.raises(OSError):
        reply = _ask(proxy.host, proxy.port)
        if not reply:
            raise ConnectionResetError("closed")
    proxy.heal()
    assert _ask(proxy.host, proxy.port) == b"+PONG\r\n"


def test_proxy_delays(redis_servers, fault_proxy):
    (server,) = redis_servers(1)
    proxy = fault_proxy(server.host, server.port)
    proxy.delay(0.3)
    started = time.monotonic()
    assert _ask(proxy.host, proxy.port, timeout=3) == b"+PONG\r\n"
    assert time.monotonic() - started >= 0.5  # held back both ways


def test_redis_restart_with_data_keeps_keys_and_restart_empty_drops_them(redis_servers):
    (server,) = redis_servers(1, persist=True)
    assert _ask(server.host, server.port, b"SET k v\r\n") == b"+OK\r\n"
    server.restart_with_data()
    assert _ask(server.host, server.port, b"GET k\r\n") == b"$1\r\nv\r\n"
    server.restart_empty()
    assert _ask(server.host, server.port, b"EXISTS k\r\n") == b":0\r\n"


def test_frozen_server_is_silent_until_thawed(redis_servers):
    (server,) = redis_servers(1)
    server.freeze()
    try:
        with pytest.raises(socket.timeout):
            _ask(server.host, server.port, timeout=0.3)
    finally:
        server.thaw()
    assert _ask(server.host, server.port) == b"+PONG\r\n"


def test_etcd_restart_empty_and_with_data(etcd_servers):
    from dlock_support import b64, etcd_post

    (server,) = etcd_servers(1)
    etcd_post(server.endpoint, "/v3/kv/put", {"key": b64("k"), "value": b64("v")})
    server.restart_with_data()
    assert etcd_post(server.endpoint, "/v3/kv/range", {"key": b64("k")}).get("kvs")
    server.restart_empty()
    assert not etcd_post(server.endpoint, "/v3/kv/range", {"key": b64("k")}).get("kvs")


def test_bounded_fails_a_hanging_call_and_passes_results_and_errors():
    assert bounded(lambda: 7, limit=1) == 7
    with pytest.raises(KeyError):
        bounded(lambda: {}["x"], limit=1)
    with pytest.raises(pytest.fail.Exception, match="hung"):
        bounded(time.sleep, 0.5, limit=0.1)
    value, took = timed(lambda: 1 / 0, limit=1)
    assert isinstance(value, ZeroDivisionError) and took < 1
    time.sleep(0.5)  # the abandoned sleeper ends before the thread-leak check
