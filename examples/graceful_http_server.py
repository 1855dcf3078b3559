"""Graceful shutdown of an HTTP server on SIGTERM: stop accepting, finish requests, close.

``Shutdown.run_on_signal()`` waits for SIGTERM (or Ctrl-C), then runs three phases, each
bounded by a timeout: stop ingress (the accept loop ends), drain (requests in flight finish),
close (the listening socket).  A request that was being served when the signal came still
gets its full answer.  A second signal forces the exit.

    python examples/graceful_http_server.py [port]     # prints "listening on <port>"
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from atomics import AtomicInt64
from patterns import Shutdown

IN_FLIGHT = AtomicInt64(0)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        IN_FLIGHT.inc()
        try:
            delay = float(self.path.rsplit("=", 1)[1]) if "delay=" in self.path else 0.0
            time.sleep(delay)  # a slow request, to show that it is not cut off
            body = f"done after {delay:.1f}s\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            IN_FLIGHT.dec()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep stdout for the program's own lines


def wait_for_requests(timeout: float | None = None) -> bool:
    """The drain step: True once no request is in flight."""
    deadline = time.monotonic() + (timeout if timeout is not None else 30.0)
    while IN_FLIGHT.load() and time.monotonic() < deadline:
        time.sleep(0.01)
    return IN_FLIGHT.load() == 0


def main(port: int = 0) -> int:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = False  # server_close() joins the request threads
    accept_loop = threading.Thread(target=server.serve_forever, name="accept-loop")
    accept_loop.start()

    shutdown = Shutdown()
    shutdown.on_stop_ingress(server.shutdown, name="stop accepting", timeout=5)
    shutdown.on_drain(wait_for_requests, name="requests in flight", timeout=10)
    shutdown.on_close(server.server_close, name="listening socket", timeout=5)
    print(f"listening on {server.server_address[1]}", flush=True)
    report = shutdown.run_on_signal(signal.SIGTERM, signal.SIGINT, timeout=20)
    accept_loop.join()
    print(report, flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
