"""A small job server for tests/test_shutdown.py: it serves until SIGTERM, then shuts down gracefully.

A producer thread accepts jobs (ids 0, 1, 2, ...) into a bounded queue as fast as the workers,
a Group, take them; each job takes a few milliseconds.  Shutdown: stop ingress (stop and join
the producer), drain (let the workers empty the queue, then wait for the Group), close three
resources.  Every event is one flushed stdout line, log records included ("log ..."):
"accepted <id>", "completed <id>", "ingress stopped", "drain started", "closed <resource>",
"exit ok=<bool>".  Exit code 0 when every step was ok.

Options: --slow-drain blocks the drain for a minute (so a second signal must force the exit);
--force-exit-code sets Shutdown.run_on_signal's force_exit_code.
"""

import argparse
import logging
import queue
import sys
import threading
import time

from patterns import Group, Shutdown

RESOURCES = ("database", "cache", "log")  # opened in this order, so closed log, cache, database

_out_lock = threading.Lock()


def emit(line: str) -> None:
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class EmitHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        emit("log " + record.getMessage())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--job-ms", type=float, default=3.0)
    parser.add_argument("--slow-drain", action="store_true")
    parser.add_argument("--force-exit-code", type=int, default=None)
    args = parser.parse_args()

    logger = logging.getLogger("shutdown_server")
    logger.setLevel(logging.INFO)
    logger.addHandler(EmitHandler())
    logger.propagate = False

    jobs: queue.Queue = queue.Queue(maxsize=16)
    accepting = threading.Event()
    accepting.set()
    stop_worker = object()

    def produce() -> None:
        next_id = 0
        while accepting.is_set():
            try:
                jobs.put(next_id, timeout=0.05)
            except queue.Full:
                continue
            emit(f"accepted {next_id}")  # in the queue now: it must be completed
            next_id += 1

    def work() -> None:
        while True:
            job = jobs.get(timeout=30)
            if job is stop_worker:
                return
            time.sleep(args.job_ms / 1000)
            emit(f"completed {job}")

    producer = threading.Thread(target=produce, name="producer")
    producer.start()
    workers = Group()
    for _ in range(args.workers):
        workers.go(work)

    shutdown = Shutdown(logger=logger)

    @shutdown.on_stop_ingress(name="producer", timeout=5)
    def stop_accepting() -> None:
        accepting.clear()
        producer.join(5)
        emit("ingress stopped")

    @shutdown.on_drain(name="queue", timeout=60)
    def finish_queue() -> None:
        emit("drain started")
        if args.slow_drain:
            threading.Event().wait(60)  # a second signal must cut this short
        for _ in range(args.workers):
            jobs.put(stop_worker, timeout=5)  # behind every accepted job: FIFO

    shutdown.on_drain(workers, name="workers", timeout=10)
    for resource in RESOURCES:
        shutdown.on_close(lambda resource=resource: emit(f"closed {resource}"), name=resource)

    report = shutdown.run_on_signal(force_exit_code=args.force_exit_code)
    emit(f"exit ok={report.ok}")
    print(report, file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
