"""Real redis-server and etcd processes for tests, on free loopback ports in a temp dir.

The servers are the Debian packages `redis-server` and `etcd-server` (`make servers` installs
them). A missing binary fails the test with that hint rather than skipping it. Each server
object can also be paused (SIGSTOP), resumed, killed and restarted, for the fault tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

INSTALL_HINT = "install it with `make servers` (Debian packages redis-server and etcd-server)"
START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


class _ServerProcess:
    """A server child process with the fault-injection verbs the tests need."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None

    # subclasses provide these
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.workdir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            self._command(), cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT
        )
        give_up = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > give_up:
                log = (self.workdir / f"{self.name}.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"{self.name} on port {self.port} did not start:\n{log}")
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it holds its connections but answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash; the data directory stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """Kill and start again on the same port (with whatever data the server kept on disk)."""
        self.kill()
        self.start()

    # the fault verbs under the names the fault tests use
    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered (a long GC pause, a stuck VM)."""
        self.pause()

    def thaw(self) -> None:
        """SIGCONT after ``freeze()``."""
        self.resume()

    def restart_with_data(self) -> None:
        """Crash (SIGKILL) and start again on the same port, keeping the data directory."""
        self.restart()

    def restart_empty(self) -> None:
        """Crash (SIGKILL) and start again on the same port with no data at all."""
        self.kill()
        self._wipe()
        self.start()

    def _wipe(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


class RedisServer(_ServerProcess):
    """redis-server, by default without persistence: a restart comes back empty, as the Redlock
    tests need.  ``persist=True`` writes every command to an append-only file (fsync always), so
    ``restart_with_data()`` comes back with everything acknowledged before the crash."""

    name = "redis"

    def __init__(self, workdir: Path, persist: bool = False) -> None:
        super().__init__(workdir)
        self.persist = persist

    def _wipe(self) -> None:
        for pattern in ("appendonly*", "*.rdb"):
            for path in self.workdir.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            _binary("redis-server"),
            "--bind", self.host, "--port", str(self.port),
            "--save", "",
            *(["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]),
            "--dir", str(self.workdir), "--protected-mode", "yes",
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class RedisClusterNode(RedisServer):
    """A redis-server started with ``cluster-enabled yes`` (its cluster config in its workdir)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.cluster_bus_port = self.port + 10000
        if self.cluster_bus_port > 65535:  # the bus port is always port + 10000: pick again
            while self.port + 10000 > 65535:
                self.port = free_port()

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "--cluster-enabled", "yes", "--cluster-config-file", str(self.workdir / "nodes.conf"),
            "--cluster-node-timeout", "2000",
        ]

    def _wipe(self) -> None:
        super()._wipe()
        (self.workdir / "nodes.conf").unlink(missing_ok=True)


class RedisCluster:
    """Three cluster-enabled masters joined with ``redis-cli --cluster create`` (no replicas)."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.nodes = [RedisClusterNode(workdir / f"node{i}") for i in range(masters)]
        self.host = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = _binary("redis-cli")
        addresses = [f"{n.host}:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=START_TIMEOUT,
        )
        give_up = time.monotonic() + START_TIMEOUT
        while not all(b"cluster_state:ok" in self.command(n, "CLUSTER", "INFO") for n in self.nodes):
            if time.monotonic() > give_up:
                raise RuntimeError("the redis cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @staticmethod
    def command(node: RedisServer, *words: object) -> bytes:
        """One command to one node over a plain socket; the raw reply."""
        parts = [str(w).encode() if not isinstance(w, bytes) else w for w in words]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection((node.host, node.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(5)
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data


class EtcdServer(_ServerProcess):
    """A single-member etcd whose v3 JSON gateway is at ``endpoint``."""

    name = "etcd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.peer_port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _wipe(self) -> None:
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def _command(self) -> list[str]:
        client = f"http://{self.host}:{self.port}"
        peer = f"http://{self.host}:{self.peer_port}"
        return [
            _binary("etcd"),
            "--name", "ftsync-test",
            "--data-dir", str(self.workdir / "data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"ftsync-test={peer}",
            "--log-level", "error", "--logger", "zap",
        ]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=0.5) as reply:
                return json.loads(reply.read()).get("health") == "true"
        except (OSError, ValueError):
            return False


class DelayProxy:
    """A TCP proxy on a free loopback port that holds every reply back ``delay`` seconds: a slow
    server (a loaded etcd, a long GC) that still answers.  Requests pass at once; the first bytes
    of the reply to each request wait ``delay``, the rest follows.  ``stop()`` ends its threads."""

    def __init__(self, target_host: str, target_port: int, delay: float) -> None:
        import threading

        self.host, self.port = "127.0.0.1", free_port()
        self._target = (target_host, target_port)
        self._delay = delay
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.1)
        self._stopped = threading.Event()
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        import threading

        thread = threading.Thread(target=target, args=args, name="test-delay-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            asked = [False]  # a request went up since the last reply came down
            self._spawn(self._pipe, client, upstream, asked, False)
            self._spawn(self._pipe, upstream, client, asked, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, asked: list, replies: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not replies:
                    asked[0] = True
                elif asked[0]:  # the first bytes of a reply: hold them back
                    asked[0] = False
                    if self._stopped.wait(self._delay):
                        break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)
