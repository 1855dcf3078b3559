"""Deadlock-free lock ordering, and a detector for lock orders that can deadlock.

Two threads that take the same two locks in opposite orders can deadlock: each holds one and
waits forever for the other (the classic TransferMoney bug).  Two tools against it:

- :class:`ordered` takes any set of locks in one global order, so callers that name the same
  locks in different orders can never wait on each other in a cycle.
- :class:`CheckedLock` and :class:`CheckedRLock` are drop-in ``threading`` locks that record
  which lock was taken while holding which (a graph, as Linux's lockdep keeps) and raise
  :class:`LockOrderViolation` the first time a thread takes locks in an order that closes a
  cycle.  The report comes from the order alone: it fires on a run where the timing was lucky
  and nothing deadlocked, and before the acquire that could block forever.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import Any, NamedTuple

from atomics import AtomicInt64

from ._validate import check_timeout

__all__ = [
    "CallSite",
    "CheckedLock",
    "CheckedRLock",
    "LockOrderChecker",
    "LockOrderEdge",
    "LockOrderViolation",
    "default_checker",
    "ordered",
]

_EMPTY: dict = {}
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_get_ident = threading.get_ident


# --- ordered(): one global acquisition order ------------------------------------------------


class ordered:
    """Acquire several locks in one global order; release them in reverse on exit.

    ``with ordered(a, b):`` and ``with ordered(b, a):`` take the two locks in the same order,
    so threads locking the same set, in any argument order, never deadlock each other.  The
    order key is ``id(lock)``: unique among live objects and fixed for a lock's lifetime, which
    is all a global order needs (it is arbitrary, and the same in every thread).  Any object
    with ``acquire(blocking, timeout)`` and ``release()`` works: ``threading.Lock``/``RLock``,
    :class:`CheckedLock`, semaphores.  A lock named twice is acquired once.

    ``timeout`` (seconds, monotonic clock) bounds the whole acquisition; when it expires, the
    locks already taken are released and TimeoutError says how many of how many were held.
    Arguments are checked when ``ordered(...)`` is called, before anything is acquired.  The
    object holds no per-use state, so one ``ordered(...)`` may be entered again, by any thread.

    It orders only the locks it is given: a lock held before entering must come before all of
    them everywhere (a :class:`CheckedLock` reports it when it does not).
    """

    __slots__ = ("_locks", "_timeout")

    def __init__(self, *locks: Any, timeout: float | None = None) -> None:
        if not _KNOWN_LOCK_TYPES.issuperset(map(type, locks)):
            for position, lock in enumerate(locks, 1):
                _check_is_thread_lock(lock, position)
        timeout = check_timeout(timeout)
        unique, previous = [], None
        for lock in sorted(locks, key=id):  # a lock named twice sorts next to itself
            if lock is not previous:
                unique.append(lock)
                previous = lock
        self._locks = tuple(unique)
        self._timeout = timeout

    def __enter__(self) -> None:
        locks, timeout = self._locks, self._timeout
        taken = 0
        try:
            if timeout is None:
                for lock in locks:
                    lock.acquire()
                    taken += 1
            else:
                deadline = time.monotonic() + timeout
                for lock in locks:
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        acquired = lock.acquire(True, min(remaining, threading.TIMEOUT_MAX))
                    else:
                        acquired = lock.acquire(False)
                    if not acquired:
                        raise TimeoutError(
                            f"ordered() timed out after {timeout} s with {taken} of {len(locks)} "
                            f"locks acquired, waiting for {lock!r}; released the {taken} it held"
                        )
                    taken += 1
        except BaseException:
            _release_all(reversed(locks[:taken]))
            raise

    def __exit__(self, *exc_info: object) -> None:
        _release_all(reversed(self._locks))

    def __repr__(self) -> str:
        locks = ", ".join(map(repr, self._locks))
        timeout = "" if self._timeout is None else f", timeout={self._timeout!r}"
        return f"ordered({locks}{timeout})"


def _check_is_thread_lock(lock: object, position: int) -> None:
    """TypeError unless ``lock`` has callable acquire() and release() that are not coroutines."""
    acquire = getattr(lock, "acquire", None)
    if not (callable(acquire) and callable(getattr(lock, "release", None))):
        hint = ""
        if isinstance(lock, (list, tuple, set, frozenset)):
            hint = "; pass the locks as separate arguments: ordered(*locks)"
        raise TypeError(
            f"ordered() argument {position} must be a lock with acquire() and release(), "
            f"got {type(lock).__name__}{hint}"
        )
    code = getattr(getattr(acquire, "__func__", acquire), "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        raise TypeError(
            f"ordered() argument {position} is an asyncio lock ({type(lock).__name__}); "
            "ordered() takes thread locks"
        )


def _release_all(locks: Any) -> None:
    """Release every lock even if one release fails; then raise the first failure."""
    error = None
    for lock in locks:
        try:
            lock.release()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the rest are released
            if error is None:
                error = exc
    if error is not None:
        raise error


# Filled in below the lock classes: types ordered() accepts without looking for acquire/release.
_KNOWN_LOCK_TYPES: frozenset[type] = frozenset()


# --- The lock-order checker ---------------------------------------------------------------


class CallSite(NamedTuple):
    """A line of user code: where a lock was taken (or created)."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        function = self.function if self.function.startswith("<") else f"{self.function}()"
        return f"{os.path.basename(self.filename)}:{self.lineno} in {function}"


def _call_site() -> CallSite:
    """The innermost frame outside this module: the user's line that took or made the lock."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - only when called from this module alone
        return CallSite("<unknown>", 0, "<unknown>")
    return CallSite(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


_THIS_FILE = _call_site.__code__.co_filename


class LockOrderEdge(NamedTuple):
    """One recorded order: lock ``taken`` was acquired while holding lock ``held``, first at ``site``."""

    held: str
    taken: str
    site: CallSite

    def __str__(self) -> str:
        return f"{self.taken!r} taken while holding {self.held!r} at {self.site}"


class LockOrderViolation(RuntimeError):
    """Locks were taken in an order that closes a cycle, so some interleaving deadlocks.

    Raised by the acquire that would close the cycle, before it blocks; that lock is not
    acquired.  Attributes: ``lock`` (name of the lock being acquired), ``held`` (name of the
    held lock that, by the recorded orders, must come after it), ``site`` (this acquire),
    ``chain`` (the recorded edges ``lock`` -> ... -> ``held``, one for a plain inversion of two
    locks) and ``recorded_site`` (where the opposite order was first recorded: the site of
    ``chain[0]``).
    """

    def __init__(self, lock: str, held: str, site: CallSite, chain: tuple[LockOrderEdge, ...]) -> None:
        self.lock = lock
        self.held = held
        self.site = site
        self.chain = tuple(chain)
        self.recorded_site = self.chain[0].site
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"lock order inversion: {self.lock!r} taken while holding {self.held!r} at {self.site}, but "
        if len(self.chain) == 1:
            return head + f"{self.held!r} was taken while holding {self.lock!r} at {self.recorded_site}"
        path = " -> ".join([repr(self.lock)] + [repr(edge.taken) for edge in self.chain])
        return head + f"the opposite order {path} was recorded: " + "; ".join(map(str, self.chain))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.lock, self.held, self.site, self.chain))


class LockOrderChecker:
    """The graph of lock orders seen so far, and each thread's stack of held checked locks.

    An edge A -> B means "B was acquired while holding A", kept with the call site where it was
    first seen.  Before a blocking acquire of B by a thread holding A1..An, a path B -> ... -> Ai
    in the graph means the new order closes a cycle: :class:`LockOrderViolation` is raised,
    whether or not this run would have deadlocked.  Otherwise the new edges are recorded, so
    the graph stays acyclic.  Non-blocking acquires (``blocking=False``) cannot deadlock and are
    neither checked nor recorded (as in lockdep), but the lock counts as held afterwards.

    The hot path is cheap: an acquire whose edges are all known reads two dicts and takes no
    lock; the graph's own plain lock and a look at the caller's frame are needed only to record
    a new edge or report a violation.  A lock's edges are forgotten once it is garbage-collected.
    :data:`default_checker` serves every checked lock created without ``checker=``.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._after: dict[int, dict[int, LockOrderEdge]] = {}  # held serial -> {taken serial: edge}
        self._before: dict[int, set[int]] = {}  # taken serial -> held serials (to forget a lock)
        self._watched: dict[int, weakref.ref] = {}  # serial -> weak reference to its lock
        self._collected: list[int] = []  # serials of collected locks, forgotten at the next update
        self._threads = threading.local()  # .stack: the checked locks this thread holds, in order
        self._updating_thread: int | None = None  # ident of the thread holding the guard to update

    def edges(self) -> list[LockOrderEdge]:
        """Every recorded order, with the site where it was first seen."""
        return self._guarded(self._snapshot_edges)

    def held_locks(self) -> tuple[CheckedLock | CheckedRLock, ...]:
        """The checked locks the calling thread holds, oldest first."""
        return tuple(self._held_stack())

    def reset(self) -> None:
        """Forget every recorded order (locks held right now stay held and tracked)."""
        self._guarded(self._clear)

    def __repr__(self) -> str:
        return f"<LockOrderChecker with {len(self.edges())} recorded orders>"

    def _guarded(self, update: Any, *args: Any) -> Any:
        """Run ``update(*args)`` holding the guard, noting which thread holds it."""
        with self._guard:
            self._updating_thread = _get_ident()
            try:
                return update(*args)
            finally:
                self._updating_thread = None

    def _snapshot_edges(self) -> list[LockOrderEdge]:
        self._forget_collected()
        return [edge for taken in self._after.values() for edge in taken.values()]

    def _clear(self) -> None:
        self._after.clear()
        self._before.clear()
        self._watched.clear()
        self._collected.clear()

    def _held_before(self, lock: Any, blocking: bool) -> list:
        """This thread's stack of held checked locks; first, for a blocking acquire of ``lock``,
        raise LockOrderViolation if taking it now would invert a recorded order."""
        try:
            held = self._threads.stack
        except AttributeError:
            held = self._held_stack()
        if blocking and held:
            self._before_blocking_acquire(lock, held)
        return held

    def _held_stack(self) -> list:
        try:
            return self._threads.stack
        except AttributeError:
            stack = self._threads.stack = []
            return stack

    def _before_blocking_acquire(self, lock: _CheckedBase, held: list) -> None:
        """Raise if acquiring ``lock`` while holding ``held`` inverts a recorded order, else record it."""
        serial, after = lock._serial, self._after
        for holding in held:
            if holding is not lock and serial not in after.get(holding._serial, _EMPTY):
                break
        else:
            return  # every edge already known: the graph is acyclic, so no inversion either
        if self._updating_thread == _get_ident():
            return  # re-entered by garbage collection (a __del__) while this thread holds the guard
        site = _call_site()
        chain = self._guarded(self._record_or_find_chain, lock, held, site)
        if chain is not None:
            raise LockOrderViolation(lock.name, chain[-1].taken, site, tuple(chain))

    def _record_or_find_chain(
        self, lock: _CheckedBase, held: list, site: CallSite
    ) -> list[LockOrderEdge] | None:
        """Under the guard: the chain an acquire would invert, or None after recording its edges."""
        serial, after = lock._serial, self._after
        self._forget_collected()
        new = {
            holding._serial: holding
            for holding in held
            if holding is not lock and serial not in after.get(holding._serial, _EMPTY)
        }
        chain = self._find_chain(serial, new) if new else None
        if chain is None:
            self._watch(lock)
            for holding_serial, holding in new.items():
                self._watch(holding)
                after.setdefault(holding_serial, {})[serial] = LockOrderEdge(holding.name, lock.name, site)
                self._before.setdefault(serial, set()).add(holding_serial)
        return chain

    def _find_chain(self, start: int, targets: dict[int, Any]) -> list[LockOrderEdge] | None:
        """The shortest recorded path of edges from ``start`` to any of ``targets``, or None."""
        came_by: dict[int, tuple[int, LockOrderEdge] | None] = {start: None}
        frontier = [start]
        while frontier:
            reached = []
            for node in frontier:
                for taken, edge in self._after.get(node, _EMPTY).items():
                    if taken in came_by:
                        continue
                    came_by[taken] = (node, edge)
                    if taken in targets:
                        chain = []
                        while taken != start:
                            taken, edge = came_by[taken]  # type: ignore[misc]
                            chain.append(edge)
                        return chain[::-1]
                    reached.append(taken)
            frontier = reached
        return None

    def _watch(self, lock: _CheckedBase) -> None:
        """Arrange for ``lock``'s edges to be forgotten once it is collected (guard held)."""
        serial = lock._serial
        if serial not in self._watched:
            collected = self._collected
            # The callback may run inside garbage collection while this thread holds the guard,
            # so it only notes the serial (list.append is atomic); the next update forgets it.
            self._watched[serial] = weakref.ref(lock, lambda _ref: collected.append(serial))

    def _forget_collected(self) -> None:
        """Drop the edges of locks that were garbage-collected (guard held)."""
        after, before = self._after, self._before
        while self._collected:
            serial = self._collected.pop()
            self._watched.pop(serial, None)
            for taken in after.pop(serial, _EMPTY):
                before.get(taken, set()).discard(serial)
            for holding in before.pop(serial, ()):
                taken_after = after.get(holding)
                if taken_after is not None:
                    taken_after.pop(serial, None)
                    if not taken_after:
                        del after[holding]


#: The checker of every CheckedLock and CheckedRLock created without ``checker=``.
default_checker = LockOrderChecker()

_serials = AtomicInt64()  # lock serials: graph keys that, unlike id(), are never reused


def _remove_held(stack: list, lock: object) -> None:
    """Take ``lock`` off a thread's held stack (locks may be released in any order)."""
    try:
        stack.remove(lock)  # one atomic list operation: the stack may belong to another thread
    except ValueError:  # pragma: no cover - only after racing releases of one lock
        pass


class _CheckedBase:
    """What CheckedLock and CheckedRLock share: name, serial, checker, ``with``."""

    __slots__ = ("__weakref__", "_checker", "_holders", "_lock", "_name", "_serial")

    def __init__(self, name: str | None = None, checker: LockOrderChecker | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        if checker is None:
            checker = default_checker
        elif not isinstance(checker, LockOrderChecker):
            raise TypeError(f"checker must be a LockOrderChecker or None, got {type(checker).__name__}")
        self._serial = _serials.inc()
        if name is None:
            site = _call_site()
            name = f"{type(self).__name__}@{os.path.basename(site.filename)}:{site.lineno}#{self._serial}"
        self._name = name
        self._checker = checker
        self._holders: list | None = None  # the held stack of the thread holding this lock

    @property
    def name(self) -> str:
        """The name reports use: given, or the type and creation site with a serial number."""
        return self._name

    @property
    def checker(self) -> LockOrderChecker:
        """The checker that records this lock's orders."""
        return self._checker

    def __enter__(self) -> bool:
        return self.acquire()  # type: ignore[attr-defined, no-any-return]

    def __exit__(self, *exc_info: object) -> None:
        self.release()  # type: ignore[attr-defined]


def _refuse_acquire_arguments(blocking: bool, timeout: float) -> None:
    """The ValueError threading raises for these arguments, before any state changes."""
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    raise ValueError("timeout value must be a non-negative number")


class CheckedLock(_CheckedBase):
    """A ``threading.Lock`` that reports lock-order inversions (see :class:`LockOrderChecker`).

    Same API: ``acquire(blocking=True, timeout=-1) -> bool``, ``release()``, ``locked()``,
    ``with``.  ``name`` appears in reports; by default it is the creation site, e.g.
    ``"CheckedLock@bank.py:40#7"``.  Like ``threading.Lock``, another thread may release it.
    """

    __slots__ = ()

    def __init__(self, name: str | None = None, checker: LockOrderChecker | None = None) -> None:
        super().__init__(name, checker)
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock as ``threading.Lock.acquire`` does; raise LockOrderViolation first
        if a blocking acquire here inverts a recorded order."""
        if timeout != -1 and (not blocking or timeout < 0):
            _refuse_acquire_arguments(blocking, timeout)
        held = self._checker._held_before(self, blocking)
        if not self._lock.acquire(blocking, timeout):
            return False
        self._holders = held
        held.append(self)
        return True

    def release(self) -> None:
        """Release the lock (RuntimeError if it is not locked)."""
        holders = self._holders
        if holders is not None:
            self._holders = None
            _remove_held(holders, self)
        self._lock.release()

    def locked(self) -> bool:
        """True if the lock is held by some thread."""
        return self._lock.locked()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {'locked' if self._lock.locked() else 'unlocked'}>"


class CheckedRLock(_CheckedBase):
    """A ``threading.RLock`` that reports lock-order inversions (see :class:`LockOrderChecker`).

    Same API as ``threading.RLock``, and it works under ``threading.Condition``.  Re-acquiring
    it in the thread that holds it records nothing: only the first acquire orders it.
    """

    __slots__ = ("_count", "_owner")

    def __init__(self, name: str | None = None, checker: LockOrderChecker | None = None) -> None:
        super().__init__(name, checker)
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock as ``threading.RLock.acquire`` does; raise LockOrderViolation first
        if a blocking first acquire here inverts a recorded order."""
        if timeout != -1 and (not blocking or timeout < 0):
            _refuse_acquire_arguments(blocking, timeout)
        me = _get_ident()
        if self._owner == me:
            self._lock.acquire()
            self._count += 1
            return True
        held = self._checker._held_before(self, blocking)
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        self._holders = held
        held.append(self)
        return True

    def release(self) -> None:
        """Release one level (RuntimeError if the calling thread does not hold it)."""
        if self._owner == _get_ident():
            self._count -= 1
            if self._count == 0:
                self._owner = None
                holders, self._holders = self._holders, None
                if holders is not None:
                    _remove_held(holders, self)
        self._lock.release()

    if hasattr(threading.RLock(), "locked"):  # Python 3.14+

        def locked(self) -> bool:
            """True if the lock is held by some thread."""
            return self._lock.locked()

    # threading.Condition uses these when the lock has them (as threading.RLock does).
    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> int:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count
        for _ in range(count):
            self.release()
        return count

    def _acquire_restore(self, count: int) -> None:
        for _ in range(count):
            self.acquire()

    def __repr__(self) -> str:
        owner, count = self._owner, self._count
        state = "unlocked" if owner is None else f"locked by thread {owner} (count {count})"
        return f"<{type(self).__name__} {self._name!r} {state}>"


_KNOWN_LOCK_TYPES = frozenset(
    {type(threading.Lock()), type(threading.RLock()), threading.Semaphore, threading.BoundedSemaphore}
    | {CheckedLock, CheckedRLock}
)
