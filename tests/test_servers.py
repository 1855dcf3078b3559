"""The server fixtures start real servers on loopback and the fault verbs act on them."""

import json
import socket
import urllib.request


def _redis_command(server, *words, timeout=2.0):
    payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(payload.encode())
        return sock.recv(256)


def test_redis_server_answers_on_loopback(redis_server):
    assert redis_server.host == "127.0.0.1"
    assert _redis_command(redis_server, "SET", "ftsync:servers", "1") == b"+OK\r\n"
    assert _redis_command(redis_server, "GET", "ftsync:servers") == b"$1\r\n1\r\n"


def test_redis_restart_comes_back_empty(redis_servers):
    (server,) = redis_servers(1)
    _redis_command(server, "SET", "k", "v")
    server.restart()
    assert _redis_command(server, "EXISTS", "k") == b":0\r\n"


def test_paused_redis_answers_nothing_until_resumed(redis_servers):
    (server,) = redis_servers(1)
    server.pause()
    try:
        try:
            _redis_command(server, "PING", timeout=0.3)
        except socket.timeout:
            pass
        else:
            raise AssertionError("a SIGSTOPped server answered")
    finally:
        server.resume()
    assert _redis_command(server, "PING") == b"+PONG\r\n"


def test_etcd_gateway_puts_and_reads_a_key(etcd_server):
    import base64

    def post(path, body):
        request = urllib.request.Request(
            f"{etcd_server.endpoint}{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            return json.loads(reply.read())

    key = base64.b64encode(b"ftsync/servers").decode()
    post("/v3/kv/put", {"key": key, "value": base64.b64encode(b"1").decode()})
    got = post("/v3/kv/range", {"key": key})
    assert base64.b64decode(got["kvs"][0]["value"]) == b"1"
