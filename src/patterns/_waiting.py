"""How patterns blocks: any timeout the caller can write, and Ctrl-C that still lands.

Two limits of the platform's waits are handled here, once for every blocking call:

- A lock or event wait refuses a timeout above ``threading.TIMEOUT_MAX`` (about 292 years on
  Linux) with OverflowError.  A caller's ``timeout=1e10`` means "that long", so it is waited
  in pieces of at most TIMEOUT_MAX until its deadline.
- On free-threaded 3.13 a signal does not always cut a lock wait short, so a wait in the main
  thread can be cut into SLICE-second pieces: between two pieces pending signal handlers
  (KeyboardInterrupt among them) run.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["SLICE", "TIMEOUT_MAX", "in_main_thread", "join_thread", "sleep", "wait_until"]

SLICE = 0.1  # the longest main-thread wait in one piece, when a wait asks to be interruptible
TIMEOUT_MAX = threading.TIMEOUT_MAX
_MAIN_THREAD_ID = threading.main_thread().ident
_monotonic = time.monotonic


def in_main_thread() -> bool:
    """Whether the calling thread is the main thread (where Python runs signal handlers)."""
    return threading.get_ident() == _MAIN_THREAD_ID


def wait_until(wait: Callable[[float | None], bool], timeout: float | None, *,
               interruptible: bool = False) -> bool:
    """Call ``wait(piece)`` until it returns True or ``timeout`` seconds have passed.

    ``wait`` blocks for at most ``piece`` seconds (None: until it succeeds) and says whether it
    succeeded: ``event.wait``, ``lambda t: lock.acquire(True, -1 if t is None else t)``,
    ``thread.join`` followed by a check.  ``timeout`` None waits forever; 0 is one non-blocking
    try.  No piece exceeds TIMEOUT_MAX, and with ``interruptible`` in the main thread none
    exceeds SLICE.  Returns whether ``wait`` succeeded.
    """
    sliced = interruptible and in_main_thread()
    longest = SLICE if sliced else TIMEOUT_MAX
    if timeout is None:
        if not sliced:
            return wait(None)
    elif timeout <= longest:
        return wait(timeout)  # one piece: the common case, no clock read
    deadline = None if timeout is None else _monotonic() + timeout
    while True:
        if deadline is None:
            piece = longest
        else:
            piece = min(longest, deadline - _monotonic())
            if piece <= 0:
                return wait(0)  # the deadline passed: one last look, never a negative wait
        if wait(piece):
            return True


def join_thread(thread: threading.Thread, timeout: float | None) -> bool:
    """``thread.join(timeout)`` that Ctrl-C can interrupt in the main thread; True once the
    thread is not alive (also when it never started: a start() cut short by Ctrl-C)."""

    def piece(seconds: float | None) -> bool:
        if thread.is_alive():
            thread.join(seconds)
        return not thread.is_alive()

    return wait_until(piece, timeout, interruptible=True)


def _sleep_piece(seconds: float | None) -> bool:
    time.sleep(seconds)  # a signal handler runs in it (EINTR), so no slicing is needed
    return False


def sleep(seconds: float, ctx: Any = None) -> bool:
    """Sleep ``seconds`` (any length), or until ``ctx`` is done: True if ``ctx`` ended first."""
    if ctx is not None:
        return ctx.done().wait(max(seconds, 0.0))
    if seconds > 0:
        wait_until(_sleep_piece, seconds)
    return False
