"""A token bucket in front of an HTTP handler: 429 Too Many Requests with Retry-After.

Each client address gets its own ``TokenBucket`` (``KeyedLimiter`` keeps memory bounded and
forgets idle clients).  ``allow()`` is one compare-and-swap, so the check costs far less
than the request; a refused request is told when to come back.

    python examples/rate_limited_http.py [port] [rate] [burst]   # prints "listening on <port>"
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from patterns import Shutdown
from patterns.ratelimit import KeyedLimiter, TokenBucket

RATE, BURST = 5.0, 5


def make_handler(limits: KeyedLimiter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            client = self.client_address[0]
            if limits.allow(client):
                self.reply(200, b"ok\n")
                return
            wait = limits.retry_after(client)
            self.reply(429, b"slow down\n", {"Retry-After": str(max(1, math.ceil(wait)))})

        def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(port: int = 0, rate: float = RATE, burst: int = BURST) -> int:
    limits = KeyedLimiter(lambda: TokenBucket(rate, burst), max_keys=10_000, idle_timeout=600)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(limits))
    accept_loop = threading.Thread(target=server.serve_forever, name="accept-loop")
    accept_loop.start()
    shutdown = Shutdown()
    shutdown.on_stop_ingress(server.shutdown, name="stop accepting", timeout=5)
    shutdown.on_close(server.server_close, name="listening socket", timeout=5)
    print(f"listening on {server.server_address[1]}", flush=True)
    report = shutdown.run_on_signal(signal.SIGTERM, signal.SIGINT, timeout=10)
    accept_loop.join()
    return 0 if report.ok else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(int(args[0]) if args else 0, float(args[1]) if len(args) > 1 else RATE,
                  int(args[2]) if len(args) > 2 else BURST))
