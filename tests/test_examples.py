"""The programs in examples/ run and do what they say (servers driven over loopback HTTP)."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, timeout=120):
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name, expected", [
    ("worker_pool.py", r"hashed 200 blobs; first [0-9a-f]{16}; completed 201, failed 0"),
    ("fan_out_fan_in.py", r"300 readings from 3 sensors, calibrated total 15150\.0"),
    ("pipeline.py", r"1000 records through <Pipeline parsex1 -> enrichx4 -> renderx1>"),
    ("semaphore_db.py", r"50 requests, at most [1-5] connections open at once \(limit 5\)"),
    ("transfer_money.py", r"total still 8000\ncaught: lock order inversion"),
])
def test_batch_examples(name, expected):
    assert re.search(expected, run_example(name))


class Server:
    """An example server started on a free port; stopped with SIGTERM."""

    def __init__(self, name, *args):
        env = dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / name), "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        match = re.match(r"listening on (\d+)", line)
        assert match, line + self.proc.stderr.read()
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path="/"):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as reply:
                return reply.status, reply.read().decode(), dict(reply.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


def test_graceful_http_server_finishes_the_request_in_flight_on_sigterm():
    server = Server("graceful_http_server.py")
    assert server.get()[0] == 200
    slow = []
    request = threading.Thread(target=lambda: slow.append(server.get("/?delay=0.5")))
    request.start()
    time.sleep(0.15)  # the slow request is being served
    code, out, err = server.stop()
    request.join()
    assert code == 0, err
    assert slow == [(200, "done after 0.5s\n", slow[0][2])]  # not cut off
    assert "stop accepting" in out and "requests in flight" in out and "listening socket" in out


def test_rate_limited_http_answers_429_with_retry_after():
    server = Server("rate_limited_http.py", "2", "3")  # 2 per second, bursts of 3
    try:
        codes = [server.get() for _ in range(8)]
        assert [c[0] for c in codes[:3]] == [200, 200, 200]
        refused = [c for c in codes if c[0] == 429]
        assert len(refused) >= 4
        assert all(int(c[2]["Retry-After"]) >= 1 for c in refused)
        time.sleep(1.1)  # two tokens came back
        assert server.get()[0] == 200
    finally:
        code, _, err = server.stop()
    assert code == 0, err


def test_examples_pass_mypy_strict():
    mypy = pytest.importorskip("mypy.api", reason="mypy is in the test extra")
    out, err, status = mypy.run(["--strict", "--no-incremental", str(EXAMPLES),
                                 str(Path(__file__).parent / "typing")])
    assert status == 0, out + err


@pytest.mark.parametrize("kind", ["redis", "etcd"])
def test_distributed_lock_example_counts_exactly(kind, redis_server, etcd_server):
    lock_url = redis_server.url if kind == "redis" else f"etcd://127.0.0.1:{etcd_server.port}"
    out = run_example("distributed_lock.py", redis_server.url, lock_url, timeout=300)
    assert re.search(rf"{kind} lock: 4 workers x 25 increments = 100, last fencing token \d+", out), out
    if kind == "redis":  # nothing of the run is left in Redis
        import redis

        client = redis.Redis.from_url(redis_server.url)
        try:
            assert not [k for k in client.scan_iter("*example:*")], "the example left keys behind"
        finally:
            client.close()
