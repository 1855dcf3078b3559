"""Fault injection for the distributed-lock tests: a cutting/stalling/delaying TCP proxy and a
watchdog that turns a hang into a test failure with every thread's stack.

The servers themselves (tests/servers.py) freeze (SIGSTOP), thaw, kill, ``restart_empty()`` and
``restart_with_data()``.  Everything here listens on 127.0.0.1 only and every wait is bounded.

- ``FaultProxy(host, port)``: forwards a TCP port.  ``stall()`` stops forwarding in both
  directions while keeping every connection open (a partition: the peer sees silence, not a
  reset); ``cut()`` resets every connection and refuses new ones; ``delay(seconds)`` holds every
  chunk back that long; ``heal()`` forwards again.  ``close()`` ends its threads.
- ``bounded(fn, *args, limit=...)``: runs ``fn`` in a helper thread; if it has not returned
  within ``limit`` seconds, every thread's stack is written to stderr and the test fails (the
  helper is a daemon thread, left to its socket timeout).  ``abounded(awaitable, limit)`` is the
  asyncio twin.
- ``watchdog(limit)``: a context manager that, should the whole block outlive ``limit``, dumps all
  stacks and ends the process (``faulthandler``): a scenario can never hang CI.
"""

from __future__ import annotations

import asyncio
import faulthandler
import socket
import sys
import threading
import time
from typing import Any, Callable

import pytest

from conftest import hang_watchdog as watchdog
from servers import free_port

__all__ = ["FaultProxy", "abounded", "bounded", "dump_stacks", "timed", "watchdog"]


def dump_stacks(title: str) -> None:
    print(f"\n===== {title}: every thread's stack =====", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def bounded(fn: Callable[..., Any], *args: Any, limit: float = 10.0, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, failing the test (with all stacks) if it runs past ``limit`` s."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="test-bounded-call", daemon=True)
    thread.start()
    if not done.wait(limit):
        dump_stacks(f"{getattr(fn, '__qualname__', fn)} still running after {limit} s")
        pytest.fail(f"{getattr(fn, '__qualname__', fn)} hung for more than {limit} s", pytrace=False)
    thread.join(1)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def timed(fn: Callable[..., Any], *args: Any, limit: float = 10.0, **kwargs: Any) -> tuple[Any, float]:
    """(result or the exception raised, seconds taken), bounded like ``bounded``."""
    started = time.monotonic()
    try:
        value: Any = bounded(fn, *args, limit=limit, **kwargs)
    except Exception as exc:  # noqa: BLE001 - returned for the test to check
        value = exc
    return value, time.monotonic() - started


async def abounded(awaitable: Any, limit: float = 10.0) -> Any:
    try:
        return await asyncio.wait_for(awaitable, limit)
    except asyncio.TimeoutError:
        dump_stacks(f"an awaitable still running after {limit} s")
        pytest.fail(f"an awaitable hung for more than {limit} s", pytrace=False)


async def atimed(awaitable: Any, limit: float = 10.0) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        value: Any = await abounded(awaitable, limit)
    except Exception as exc:  # noqa: BLE001
        value = exc
    return value, time.monotonic() - started


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``(host, port)`` that can stall, cut or delay."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self._target = (host, port)
        self._lock = threading.Lock()
        self._mode = "forward"
        self._delay = 0.0
        self._changed = threading.Condition(self._lock)
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.05)
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stall(self) -> None:
        """Stop forwarding, keep the connections: both sides see silence."""
        self._set("stall")

    def delay(self, seconds: float) -> None:
        """Forward every chunk ``seconds`` late."""
        with self._lock:
            self._delay = seconds
        self._set("delay")

    def heal(self) -> None:
        self._set("forward")

    def cut(self) -> None:
        """Reset every connection and refuse new ones until ``heal()``."""
        self._set("cut")
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _hard_close(sock)

    def close(self) -> None:
        self._closed.set()
        self._set("closed")
        self._listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _hard_close(sock)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- machinery ----------------------------------------------------------------------------

    def _set(self, mode: str) -> None:
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="test-fault-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with self._lock:
                mode = self._mode
            if mode in ("cut", "closed"):
                _hard_close(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=2)
            except OSError:
                _hard_close(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(0.05)
            with self._lock:
                self._pairs.append((client, upstream))
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                with self._changed:
                    while self._mode == "stall":
                        self._changed.wait(0.05)
                    mode, delay = self._mode, self._delay
                if mode in ("cut", "closed"):
                    return
                try:
                    data = source.recv(65536)
                except (TimeoutError, socket.timeout):
                    continue
                if not data:
                    return
                if mode == "delay" and self._closed.wait(delay):
                    return
                with self._changed:  # stalled meanwhile: hold what was read until healed
                    while self._mode == "stall":
                        self._changed.wait(0.05)
                    if self._mode in ("cut", "closed"):
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _hard_close(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a crashed peer or a firewall reject would."""
    try:
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
