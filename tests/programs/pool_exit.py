"""How a WorkerPool ends with its program: for tests/test_pool_process.py.

Modes (argv[1]):
  imap     workers run context-aware jobs; the main thread waits in imap until Ctrl-C.
  sleep    the main thread sleeps after submitting; Ctrl-C arrives outside any pool call.
  stubborn the jobs ignore their context and take 1 s each; Ctrl-C while they run.
  finish   no Ctrl-C and no shutdown: the queued jobs still run at exit (as ThreadPoolExecutor).
  memory   10 million items through imap; prints the growth of peak RSS in KiB.
Each job start prints "started <i>"; "ready" means the main thread is about to wait.
"""

import resource
import signal
import sys
import time

from patterns import WorkerPool


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def careful(i, ctx):
    say(f"started {i}")
    while not ctx.done().wait(0.01):
        pass
    return i


def stubborn(i):
    say(f"started {i}")
    time.sleep(1.0)
    return i


def quick(i):
    time.sleep(0.002)
    say(f"finished {i}")


def main(mode):
    # Python leaves SIGINT ignored if it started ignored (as under a background job): restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = WorkerPool(4)
    if mode == "imap":
        say("ready")
        for _ in pool.imap(careful, range(1000)):
            pass
    elif mode == "sleep":
        for i in range(100):
            pool.submit(careful, i)
        say("ready")
        time.sleep(60)
    elif mode == "stubborn":
        for i in range(100):
            pool.submit(stubborn, i)
        say("ready")
        time.sleep(60)
    elif mode == "finish":
        for i in range(50):
            pool.submit(quick, i)
        say("ready")
    elif mode == "memory":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = sum(1 for _ in pool.imap(int, range(10_000_000)))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        pool.shutdown()
        say(f"count {count} growth_kib {after - before}")


if __name__ == "__main__":
    main(sys.argv[1])
